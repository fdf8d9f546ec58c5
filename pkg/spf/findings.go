package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go4.org/netipx"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// The static findings: what the record tree shows without a client.

func staticFindings(t *Tree, cov *Coverage) []report.Finding {
	root := t.Root
	var out []report.Finding
	if f, ok := presentFinding(root); ok {
		out = append(out, f)
	}
	if root.Record == nil && root.Result != PermError {
		return out // no record (or no answer): nothing more to judge
	}
	walkNodes(root, func(n *Node) { out = append(out, nodeFindings(t, n)...) })
	if root.Record == nil {
		return out
	}
	out = append(out, lookupLimitFinding(t, cov))
	out = append(out, voidLimitFinding(t))
	out = append(out, allPolicyFindings(t, cov)...)
	out = append(out, sizeFindings(t)...)
	return out
}

// walkNodes visits n and the records below it in evaluation order.
func walkNodes(n *Node, fn func(*Node)) {
	fn(n)
	if n.Record == nil {
		return
	}
	var redirect *Node
	for _, ti := range n.Terms {
		switch {
		case ti.Child == nil:
		case ti.Term == n.Record.Redirect:
			redirect = ti.Child
		default:
			walkNodes(ti.Child, fn)
		}
	}
	if redirect != nil {
		walkNodes(redirect, fn)
	}
}

// where names a node for messages: the domain, and for a target the term
// that leads to it ("spf.example, reached by include:spf.example of
// contoso.com").
func where(n *Node) string {
	if n.Parent == nil {
		return n.Domain
	}
	return fmt.Sprintf("%s (%s of %s)", n.Domain, n.Via.Text, n.Parent.Domain)
}

// termName is "term 3 `a:mail.contoso.com` of contoso.com".
func termName(n *Node, ti *TermInfo) string {
	return fmt.Sprintf("term %d `%s` of %s", ti.Term.Index, ti.Term.Text, n.Domain)
}

func presentFinding(root *Node) (report.Finding, bool) {
	f := report.Finding{ID: IDPresent, Subject: root.Domain}
	switch {
	case root.Err == nil || errors.As(root.Err, new(*SyntaxError)):
		f.Status = report.StatusPass
		f.Message = "SPF record published: " + abbreviate(root.Text, 400)
		f.Evidence = map[string]any{"record": root.Text, "txt_records": len(root.TXT)}
	case errors.Is(root.Err, ErrMultipleRecords):
		return f, false // spf.multiple says it
	case root.Result == TempError || errors.Is(root.Err, ErrNotExpanded):
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("Could not look up the SPF record: %v", root.Err)
	default:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("No SPF record: %v; receivers get none and DMARC cannot pass on SPF", trimClass(root.Err))
		f.Remediation = fmt.Sprintf("Publish one TXT record at %s that starts with v=spf1 and lists every host that sends its mail, ending in -all or ~all (RFC 7208 §3).", root.Domain)
		f.Evidence = map[string]any{"txt_records": txtTexts(root)}
	}
	return f, true
}

// nodeFindings are the findings about one record of the tree.
func nodeFindings(t *Tree, n *Node) []report.Finding {
	var out []report.Finding
	var syn *SyntaxError
	switch {
	case errors.Is(n.Err, ErrMultipleRecords):
		var recs []string
		for _, s := range txtTexts(n) {
			if IsSPF(s) {
				recs = append(recs, s)
			}
		}
		out = append(out, report.Finding{ID: IDMultiple, Status: report.StatusFail, Subject: n.Domain,
			Message:     fmt.Sprintf("%s publishes %d SPF records; every evaluation that reaches it is a permerror (RFC 7208 §4.5)", where(n), len(recs)),
			Remediation: "Merge them into one v=spf1 record and delete the others.",
			Evidence:    map[string]any{"records": recs}})
	case errors.As(n.Err, &syn):
		out = append(out, report.Finding{ID: IDSyntax, Status: report.StatusFail, Subject: n.Domain,
			Message:     fmt.Sprintf("%s: %s; receivers return permerror", where(n), syn.Error()),
			Remediation: "Correct the term as RFC 7208 §12 describes; mfcheck spf re-checks it.",
			Evidence:    map[string]any{"record": n.Text, "term": syn.Term, "offset": syn.Offset, "text": syn.Text}})
	case errors.Is(n.Err, ErrLoop):
		out = append(out, report.Finding{ID: IDLoop, Status: report.StatusFail, Subject: n.Domain,
			Message:     fmt.Sprintf("%s leads back to a record being evaluated: %v; receivers return permerror (RFC 7208 §4.6.4)", n.Via.Text, trimClass(n.Err)),
			Remediation: fmt.Sprintf("Remove %s from %s, or break the chain elsewhere.", n.Via.Text, n.Parent.Domain),
			Evidence:    map[string]any{"chain": trimClass(n.Err)}})
	case n.Parent != nil && n.Result == None:
		rule := "§5.2"
		if n.Via.Modifier != nil {
			rule = "§6.1"
		}
		out = append(out, report.Finding{ID: IDIncludeWithoutSPF, Status: report.StatusFail, Subject: n.Domain,
			Message:     fmt.Sprintf("%s of %s leads to %s, which has no SPF record (%v): every evaluation that gets there is a permerror (RFC 7208 %s)", n.Via.Text, n.Parent.Domain, n.Domain, trimClass(n.Err), rule),
			Remediation: fmt.Sprintf("Remove %s, or correct the name (the vendor's documentation gives it).", n.Via.Text),
			Evidence:    map[string]any{"txt_records": txtTexts(n)}})
	}
	if n.Record == nil {
		return out
	}
	if n.Record.Redirect != nil && n.Record.HasAll() {
		out = append(out, report.Finding{ID: IDRedirectWithAll, Status: report.StatusWarn, Subject: n.Domain,
			Message:     fmt.Sprintf("%s: %s is never used because the record has an all term (RFC 7208 §6.1)", where(n), n.Record.Redirect.Text),
			Remediation: "Remove the all term to use the redirect, or remove the redirect.",
			Evidence:    map[string]any{"record": n.Text}})
	}
	for _, ti := range n.Terms {
		m := ti.Term.Mechanism
		switch {
		case m != nil && m.Kind == MechPTR && ti.Skip != SkipAfterAll,
			ti.Term.Mechanism != nil && strings.Contains(m.Domain.Letters(), "p"),
			ti.Term.Modifier != nil && ti.Term == n.Record.Redirect && strings.Contains(ti.Term.Modifier.Value.Letters(), "p"):
			out = append(out, report.Finding{ID: IDPTR, Status: report.StatusWarn, Subject: n.Domain,
				Message:     fmt.Sprintf("%s needs reverse DNS (ptr or %%{p}): slow and unreliable, and RFC 7208 §5.5 says it SHOULD NOT be used; some receivers skip it", termName(n, ti)),
				Remediation: "Replace it by the ip4:/ip6: ranges of the hosts it stands for."})
		}
		if ti.Invalid != nil {
			out = append(out, report.Finding{ID: IDSyntax, Status: report.StatusWarn, Subject: n.Domain,
				Message:     fmt.Sprintf("%s names an invalid domain (%v): it never matches", termName(n, ti), trimClass(ti.Invalid)),
				Remediation: "Correct the name or remove the term."})
		}
		if ti.MX != nil && ti.MX.TooMany {
			out = append(out, report.Finding{ID: IDMXLimit, Status: report.StatusFail, Subject: n.Domain,
				Message:     fmt.Sprintf("%s: %s has %d MX records, over the limit of %d: the term is a permerror for every client that reaches it (RFC 7208 §4.6.4)", termName(n, ti), ti.Target, ti.MX.Count, t.Limits.MX),
				Remediation: "Replace the mx term by the ip4:/ip6: ranges of the mail hosts, or by a: terms for a few of them.",
				Evidence:    map[string]any{"mx_records": ti.MX.Count, "limit": t.Limits.MX}})
		}
	}
	return out
}

// costliest lists the root's top-level terms that cost lookups, most first.
func costliest(t *Tree) []map[string]any {
	type cost struct {
		term  string
		n     int
		index int
	}
	var cs []cost
	if t.Root.Record == nil {
		return nil
	}
	for _, ti := range t.Root.Terms {
		if ti.Cost > 0 {
			cs = append(cs, cost{ti.Term.Text, ti.Cost, ti.Term.Index})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].n > cs[j].n })
	out := make([]map[string]any, len(cs))
	for i, c := range cs {
		out[i] = map[string]any{"term": c.term, "lookups": c.n}
	}
	return out
}

func costliestText(t *Tree, n int) string {
	var parts []string
	for i, c := range costliest(t) {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", c["term"], c["lookups"]))
	}
	return strings.Join(parts, ", ")
}

// firstOverLimit is the first term, in evaluation order, reached after the
// lookup limit is used up.
func firstOverLimit(t *Tree) (*Node, *TermInfo) {
	var visit func(n *Node) (*Node, *TermInfo)
	visit = func(n *Node) (*Node, *TermInfo) {
		if n == nil || n.Record == nil {
			return nil, nil
		}
		var redirect *TermInfo
		for _, ti := range n.Terms {
			if ti.Term == n.Record.Redirect {
				redirect = ti // evaluated after every mechanism
				continue
			}
			if ti.OverLimit {
				return n, ti
			}
			if found, term := visit(ti.Child); term != nil {
				return found, term
			}
		}
		if redirect == nil {
			return nil, nil
		}
		if redirect.OverLimit {
			return n, redirect
		}
		return visit(redirect.Child)
	}
	return visit(t.Root)
}

func lookupLimitFinding(t *Tree, cov *Coverage) report.Finding {
	lim := t.Limits.Lookups
	f := report.Finding{ID: IDLookupLimit, Subject: t.Root.Domain}
	f.Evidence = map[string]any{"lookups": t.Lookups, "limit": lim, "terms": costliest(t), "complete": t.CountsExact}
	switch {
	case t.Lookups > lim:
		f.Status = report.StatusFail
		atLeast := ""
		if !t.CountsExact {
			atLeast = "at least "
		}
		f.Message = fmt.Sprintf("SPF needs %s%d DNS lookups for a client no term matches; the limit is %d (RFC 7208 §4.6.4)", atLeast, t.Lookups, lim)
		if n, ti := firstOverLimit(t); ti != nil {
			f.Message += fmt.Sprintf(": receivers return permerror from %s on", termName(n, ti))
			f.Evidence["first_over_limit"] = map[string]any{"domain": n.Domain, "term": ti.Term.Text, "index": ti.Term.Index}
		}
		// What the limit costs: addresses the record means to authorize
		// that get permerror instead.
		intended := t.Coverage(noLimits)
		var lost netipx.IPSetBuilder
		lost.AddSet(intended.Pass)
		lost.RemoveSet(cov.Pass)
		lost.RemoveSet(cov.Maybe)
		if ps := build(&lost).Prefixes(); len(ps) > 0 {
			f.Message += fmt.Sprintf("; %s that the record means to authorize fail SPF", describeRanges(ps))
			f.Evidence["lost_ranges"] = prefixStrings(ps[:min(len(ps), 50)])
		}
		f.Remediation = fmt.Sprintf("Cut the count to %d or fewer: remove includes of services no longer used, replace a/mx terms by ip4/ip6, or flatten the costliest (mfcheck spf %s --flatten). Costliest: %s.", lim, t.Root.Domain, costliestText(t, 3))
	case !t.CountsExact:
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("Could not count every DNS lookup (%s); at least %d of %d", firstOf(t.Incomplete), t.Lookups, lim)
		f.Evidence["incomplete"] = t.Incomplete
	default:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("SPF needs %d of %d DNS lookups (worst case: a client no term matches)", t.Lookups, lim)
		if left := lim - t.Lookups; left <= 1 {
			f.Message += fmt.Sprintf("; %d left for a new sender", left)
		}
	}
	return f
}

// describeRanges summarises address ranges for a message: "185.58.84.0/22
// and 2 more ranges".
func describeRanges(ps []netip.Prefix) string {
	strs := prefixStrings(ps[:min(3, len(ps))])
	s := strings.Join(strs, ", ")
	if len(ps) > 3 {
		s += fmt.Sprintf(" and %d more ranges", len(ps)-3)
	}
	return s
}

func voidLimitFinding(t *Tree) report.Finding {
	lim := t.Limits.Voids
	f := report.Finding{ID: IDVoidLimit, Subject: t.Root.Domain}
	var voids []string
	walkNodes(t.Root, func(n *Node) {
		for _, ti := range n.Terms {
			if fam := voidFamilies(ti); fam != "" {
				voids = append(voids, fmt.Sprintf("%s (%s)", termName(n, ti), fam))
			}
		}
	})
	worst := max(t.Voids4, t.Voids6)
	f.Evidence = map[string]any{"void_lookups_ipv4": t.Voids4, "void_lookups_ipv6": t.Voids6, "limit": lim, "terms": voids}
	switch {
	case worst > lim:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("SPF makes %d void lookups (NXDOMAIN or NODATA) for %s clients; over the limit of %d receivers return permerror (RFC 7208 §4.6.4): %s", worst, worseFamily(t), lim, firstOf(voids))
		f.Remediation = "Remove the terms that name hosts without addresses, or publish the missing records."
	case worst > 0:
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("%d of %d allowed void lookups: %s; such terms match nothing and bring the record closer to permerror", worst, lim, firstOf(voids))
		f.Remediation = "Remove the terms that name hosts without addresses, or publish the missing records."
	default:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("No void lookups (the limit is %d)", lim)
	}
	return f
}

func voidFamilies(ti *TermInfo) string {
	switch {
	case ti.Void4 && ti.Void6:
		return "void for every client"
	case ti.Void4:
		return "void for IPv4 clients"
	case ti.Void6:
		return "void for IPv6 clients"
	}
	return ""
}

func worseFamily(t *Tree) string {
	if t.Voids6 > t.Voids4 {
		return "IPv6"
	}
	return "IPv4"
}

// effectiveAll finds the "all" that ends the root's evaluation: the root's,
// or that of the record its redirect chain ends in.
func effectiveAll(n *Node) (*Node, *TermInfo) {
	for n != nil && n.Record != nil {
		for _, ti := range n.Terms {
			if m := ti.Term.Mechanism; m != nil && m.Kind == MechAll {
				return n, ti
			}
		}
		var next *Node
		for _, ti := range n.Terms {
			if ti.Term == n.Record.Redirect {
				next = ti.Child
			}
		}
		if next == nil {
			return n, nil
		}
		n = next
	}
	return n, nil
}

func allPolicyFindings(t *Tree, cov *Coverage) []report.Finding {
	root := t.Root
	f := report.Finding{ID: IDAllPolicy, Subject: root.Domain}
	n, all := effectiveAll(root)
	var everyone netipx.IPSetBuilder
	everyone.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
	everyone.RemoveSet(cov.Pass)
	passAll := len(build(&everyone).Ranges()) == 0
	switch {
	case all != nil && all.Term.Mechanism.Qualifier == QualifierPass:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("%s ends in %s: every host on the internet may send as %s", n.Domain, all.Term.Text, root.Domain)
		f.Remediation = "End the record in -all (or ~all while you check the reports)."
	case passAll:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("The record authorizes every IPv4 address: an included record ends in +all or authorizes 0.0.0.0/0, so anyone may send as %s", root.Domain)
		f.Remediation = "Find the include that authorizes everything (mfcheck spf shows the tree) and remove it."
	case all != nil && all.Term.Mechanism.Qualifier == QualifierNeutral:
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("%s ends in ?all: other hosts get neutral, as if there were no SPF record", n.Domain)
		f.Remediation = "End the record in -all or ~all."
	case all == nil && n != nil && n.Record != nil:
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("%s has no all term: other hosts get the default neutral (RFC 7208 §4.7), as if there were no SPF record", n.Domain)
		f.Remediation = "End the record in -all or ~all."
	case all != nil:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("%s ends in %s: other hosts get %s", n.Domain, all.Term.Text, all.Term.Mechanism.Qualifier.Result())
	default:
		return nil // the redirect target has no record: spf.include-without-spf says it
	}
	out := []report.Finding{f}
	walkNodes(root, func(n *Node) {
		var after []string
		for _, ti := range n.Terms {
			if ti.Skip == SkipAfterAll {
				after = append(after, ti.Term.Text)
			}
		}
		if len(after) > 0 {
			out = append(out, report.Finding{ID: IDAllPolicy, Status: report.StatusWarn, Subject: n.Domain,
				Message:     fmt.Sprintf("%s: %s come after all and are never evaluated (RFC 7208 §5.1)", where(n), strings.Join(after, " ")),
				Remediation: "Move them before the all term, or remove them."})
		}
	})
	return out
}

// sizeFindings check the root's TXT answer against RFC 7208 §3.4 and look
// for an SPF record published in pieces; include targets over 512 octets
// are noted as information (the vendor's, not yours to fix).
func sizeFindings(t *Tree) []report.Finding {
	root := t.Root
	var out []report.Finding
	ev := map[string]any{"record_octets": len(root.Text), "answer_octets": root.AnswerOctets, "strings": stringLengths(root)}
	f := report.Finding{ID: IDSize, Subject: root.Domain, Evidence: ev}
	if root.AnswerOctets > maxAnswerOctets {
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("The TXT answer for %s is %d octets, over the 512 that fit a DNS message without EDNS (RFC 7208 §3.4): receivers must retry over TCP or with EDNS0, and some fail with temperror", root.Domain, root.AnswerOctets)
		f.Remediation = "Shorten the record (fewer terms, merged ranges), move other TXT records such as verification tokens to subdomains where the vendor allows, or move ranges into an included record."
	} else {
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("The SPF record is %d octets in %s; the TXT answer is %d octets, within 512 (RFC 7208 §3.4)", len(root.Text), plural(countSPFStrings(root), "string"), root.AnswerOctets)
	}
	out = append(out, f)
	walkNodes(root, func(n *Node) {
		if n.Parent != nil && n.AnswerOctets > maxAnswerOctets {
			out = append(out, report.Finding{ID: IDSize, Status: report.StatusInfo, Subject: n.Domain,
				Message:  fmt.Sprintf("%s: its TXT answer is %d octets, over 512, so receivers fetch it over TCP or EDNS0", where(n), n.AnswerOctets),
				Evidence: map[string]any{"answer_octets": n.AnswerOctets}})
		}
	})
	for _, txt := range txtTexts(root) {
		if looksLikeSPFPiece(txt) {
			out = append(out, report.Finding{ID: IDSplitRecord, Status: report.StatusWarn, Subject: root.Domain,
				Message:     fmt.Sprintf("A TXT record of %s reads like the rest of the SPF record but is a record of its own (%q): receivers ignore it, so its terms authorize nothing", root.Domain, abbreviate(txt, 60)),
				Remediation: "Publish the SPF record as one TXT record; a long one is split into several strings of that one record, not into several records (RFC 7208 §3.3).",
				Evidence:    map[string]any{"txt": txt, "spf": root.Text}})
		}
	}
	return out
}

// looksLikeSPFPiece reports whether a TXT record that is not SPF starts
// with an SPF term: the second half of a record split into two records.
func looksLikeSPFPiece(txt string) bool {
	if IsSPF(txt) {
		return false
	}
	first, _, _ := strings.Cut(strings.TrimSpace(txt), " ")
	if first == "" {
		return false
	}
	r, err := Parse("v=spf1 " + first)
	if err != nil || len(r.Terms) != 1 {
		return false
	}
	return r.Terms[0].Mechanism != nil || r.Terms[0].Modifier.Known()
}

func stringLengths(n *Node) []int {
	for _, strs := range n.TXT {
		if IsSPF(strings.Join(strs, "")) {
			out := make([]int, len(strs))
			for i, s := range strs {
				out[i] = len(s)
			}
			return out
		}
	}
	return nil
}

func countSPFStrings(n *Node) int { return len(stringLengths(n)) }

func plural(n int, word string) string {
	switch {
	case n == 1:
		return "1 " + word
	case strings.HasSuffix(word, "s"):
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func txtTexts(n *Node) []string {
	out := make([]string, 0, len(n.TXT))
	for _, strs := range n.TXT {
		out = append(out, strings.Join(strs, ""))
	}
	return out
}

// messageItems is how many items of a list a message names; the evidence
// holds them all.
const messageItems = 5

// firstOf joins the first few items of a list for a message, saying how many
// more there are: a hostile tree can have hundreds of void terms or
// unfetched parts.
func firstOf(items []string) string {
	if len(items) <= messageItems {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:messageItems], "; ") + fmt.Sprintf("; and %d more", len(items)-messageItems)
}

// trimClass drops the package's sentinel prefix ("spf: no SPF record: ")
// from an error for a message that already says what kind of problem it is.
func trimClass(err error) string {
	s := err.Error()
	for _, class := range []error{ErrNoRecord, ErrLoop, ErrInvalidDomain, ErrDNS} {
		s = strings.TrimPrefix(s, class.Error()+": ")
	}
	return s
}
