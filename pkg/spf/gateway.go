package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"go4.org/netipx"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// The gateway questions of a cutover: is the gateway's include there (or an
// equivalent), is there room for it under the lookup limit, do given
// clients and the gateway's whole ranges pass.

// gatewayRanges expands the profile's live range names (trees fetched by
// Analyze) into the addresses their records authorize, falling back to the
// profile's stored snapshot when none of them could be evaluated.
func gatewayRanges(p *profile.Profile, trees map[string]*Tree) *GatewayRanges {
	g := &GatewayRanges{Name: p.Name}
	var set netipx.IPSetBuilder
	var live, failed []string
	for _, name := range p.IPRangesLive {
		t := trees[strings.ToLower(strings.TrimSuffix(name, "."))]
		if t == nil || t.Root.Record == nil {
			reason := "not fetched"
			if t != nil {
				reason = trimClass(t.Root.Err)
			}
			failed = append(failed, fmt.Sprintf("%s: %s", name, reason))
			continue
		}
		cov := t.Coverage(Limits{})
		if len(cov.Pass.Ranges()) == 0 {
			failed = append(failed, name+": authorizes no address")
			continue
		}
		set.AddSet(cov.Pass)
		live = append(live, name)
		g.Unverified = g.Unverified || p.ValueUncertain(profile.KeyIPRangesLive, name)
	}
	if len(live) > 0 {
		g.Ranges, g.Live = build(&set).Prefixes(), true
		g.Source = "live SPF of " + strings.Join(live, ", ")
		if len(failed) > 0 {
			g.Source += " (not " + strings.Join(failed, "; ") + ")"
		}
		return g
	}
	if len(p.IPRanges) > 0 {
		g.Ranges = p.IPRanges
		g.Unverified = true
		g.Source = fmt.Sprintf("stored snapshot (%s) of profile %s", p.IPRangesSnapshot, p.ID)
		if len(failed) > 0 {
			g.Source += ", because the live lookup failed: " + strings.Join(failed, "; ")
		}
		return g
	}
	g.Source = "profile " + p.ID + " names no sending ranges"
	if len(failed) > 0 {
		g.Source = "the live lookup failed (" + strings.Join(failed, "; ") + ") and profile " + p.ID + " stores no ranges"
	}
	g.Err = errors.New(g.Source)
	return g
}

func gatewayFindings(a *Analysis, opt Options, trees map[string]*Tree) []report.Finding {
	t := a.Tree
	if t.Root.Record == nil {
		return nil // spf.present or spf.multiple already fails
	}
	p := opt.Profile
	found, foundNode, foundTerm := findGatewayTerm(t, p)
	var out []report.Finding
	f := report.Finding{ID: IDGatewayInclude, Subject: t.Root.Domain}
	want := gatewayWant(p)
	switch {
	case want == "":
		f.Status = report.StatusInfo
		f.Message = fmt.Sprintf("Profile %s lists no SPF include, so its presence cannot be checked", p.ID)
	case found != "" && foundTerm.OverLimit:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("%s is in the record (%s) but comes after the 10th DNS lookup, so mail from %s gets permerror", found, termName(foundNode, foundTerm), p.Name)
		f.Remediation = fmt.Sprintf("Move %s to the front of the record, or cut the lookups before it (see spf.lookup-limit).", found)
	case found != "":
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("The record includes %s: %s", p.Name, termName(foundNode, foundTerm))
	default:
		gw := a.Gateway
		if gw != nil && gw.Live && len(gw.Ranges) > 0 {
			if uncovered, _ := a.Coverage.Authorized(gw.Ranges); len(uncovered) == 0 {
				f.Status = report.StatusPass
				f.Message = fmt.Sprintf("The record has no %s, but authorizes every range it does today (%s): equivalent for now, but it will not follow the gateway's changes", want, gw.Source)
				f.Remediation = fmt.Sprintf("Prefer %s to copied ranges, so new gateway ranges are authorized the day they are used.", want)
				break
			}
		}
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("The record does not include %s (%s): mail the gateway sends for %s fails SPF", p.Name, want, t.Root.Domain)
		f.Remediation = "Add the gateway's include before the all term: " + withInclude(t.Root, want)
	}
	if p.FieldUncertain(profile.KeySPFIncludes) {
		f.Message += " (the profile's SPF include is unverified)"
	}
	f.Evidence = map[string]any{"profile": p.ID, "want": want, "record": t.Root.Text}
	out = append(out, f)
	if h, ok := headroomFinding(t, p, found != "", trees); ok {
		out = append(out, h)
	}
	return out
}

// gatewayWant is the term a customer of the profile publishes: its first
// SPF include, or its first other SPF term.
func gatewayWant(p *profile.Profile) string {
	switch {
	case len(p.SPFIncludes) > 0:
		return "include:" + p.SPFIncludes[0]
	case len(p.SPFTerms) > 0:
		return p.SPFTerms[0]
	}
	return ""
}

// findGatewayTerm looks through the evaluated tree for one of the
// profile's includes (any of them: they are alternatives) or SPF terms.
func findGatewayTerm(t *Tree, p *profile.Profile) (string, *Node, *TermInfo) {
	var found string
	var node *Node
	var term *TermInfo
	patterns := make([]*regexp.Regexp, 0, len(p.SPFTerms))
	for _, pt := range p.SPFTerms {
		patterns = append(patterns, termPattern(pt))
	}
	walkNodes(t.Root, func(n *Node) {
		if found != "" || n.Record == nil {
			return
		}
		for _, ti := range n.Terms {
			if ti.Skip == SkipAfterAll || ti.Skip == SkipRedirectWithAll {
				continue
			}
			if m := ti.Term.Mechanism; m != nil && m.Kind == MechInclude && ti.Target != "" {
				for _, inc := range p.SPFIncludes {
					if strings.EqualFold(strings.TrimSuffix(inc, "."), ti.Target) {
						found, node, term = "include:"+inc, n, ti
						return
					}
				}
			}
			for i, re := range patterns {
				if re.MatchString(strings.ToLower(ti.Term.String())) {
					found, node, term = p.SPFTerms[i], n, ti
					return
				}
			}
		}
	})
	return found, node, term
}

// termPattern compiles a profile SPF term, where "<name>" is a
// customer-specific part within one label, into a case-insensitive match.
func termPattern(term string) *regexp.Regexp {
	parts := strings.Split(strings.ToLower(term), "<name>")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^[+]?" + strings.Join(parts, "[^.]+") + "$")
}

// withInclude is the root record with term added before its all (or at its
// end), as a ready-to-publish suggestion.
func withInclude(root *Node, term string) string {
	var words []string
	added := false
	for _, t := range root.Record.Terms {
		if m := t.Mechanism; !added && m != nil && m.Kind == MechAll {
			words = append(words, term)
			added = true
		}
		words = append(words, t.Text)
	}
	if !added {
		// Before a redirect, which is evaluated last anyway, or at the end.
		words = append(words, term)
	}
	return "v=spf1 " + strings.Join(words, " ")
}

// headroomFinding answers "is there room for the gateway's include": the
// lookups used now, and after adding the include when it is not there.
func headroomFinding(t *Tree, p *profile.Profile, present bool, trees map[string]*Tree) (report.Finding, bool) {
	if len(p.SPFIncludes) == 0 {
		return report.Finding{}, false
	}
	lim := t.Limits.Lookups
	inc := p.SPFIncludes[0]
	f := report.Finding{ID: IDHeadroom, Subject: t.Root.Domain}
	f.Evidence = map[string]any{"lookups": t.Lookups, "limit": lim, "include": "include:" + inc, "terms": costliest(t)}
	if present {
		left := lim - t.Lookups
		switch {
		case left < 0:
			f.Status = report.StatusFail
			f.Message = fmt.Sprintf("With the gateway include the record needs %d DNS lookups, %d over the limit of %d; costliest: %s", t.Lookups, -left, lim, costliestText(t, 3))
			f.Remediation = "Remove or flatten other includes (see spf.lookup-limit); keep the gateway's include live."
		case left == 0:
			f.Status = report.StatusWarn
			f.Message = fmt.Sprintf("The record uses all %d DNS lookups with the gateway include: the next sender added breaks SPF", lim)
			f.Remediation = "Make room now: flatten or remove the costliest includes: " + costliestText(t, 3) + "."
		default:
			f.Status = report.StatusPass
			f.Message = fmt.Sprintf("The record needs %d of %d DNS lookups with the gateway include; %d left for other senders", t.Lookups, lim, left)
		}
		if !t.CountsExact {
			f.Status, f.Message = report.StatusError, "Could not count every lookup: "+firstOf(t.Incomplete)
			f.Evidence["incomplete"] = t.Incomplete
		}
		return f, true
	}
	gt := trees[strings.ToLower(strings.TrimSuffix(inc, "."))]
	if gt == nil || gt.Root.Record == nil || !gt.CountsExact || !t.CountsExact {
		f.Status = report.StatusError
		var why []string
		if gt == nil || gt.Root.Record == nil || !gt.CountsExact {
			why = append(why, "the gateway's include could not be evaluated")
			if gt != nil && gt.Root.Err != nil {
				why = append(why, trimClass(gt.Root.Err))
			}
		}
		if !t.CountsExact {
			why = append(why, t.Incomplete...)
		}
		f.Message = "Could not tell whether the gateway's include fits: " + firstOf(why)
		f.Evidence["incomplete"] = why
		return f, true
	}
	cost := 1 + gt.Lookups
	after := t.Lookups + cost
	f.Evidence["include_cost"] = cost
	f.Evidence["after"] = after
	if after > lim {
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("The record needs %s now; adding include:%s (%d) makes %d, over the limit of %d; costliest now: %s", lookups(t.Lookups), inc, cost, after, lim, costliestText(t, 3))
		f.Remediation = fmt.Sprintf("Before adding the gateway's include, free %d lookups: remove includes no longer used or flatten the costliest (mfcheck spf %s --flatten --profile %s keeps the gateway's include live).", after-lim, t.Root.Domain, p.ID)
	} else {
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("The record needs %s now; adding include:%s (%d) makes %d of %d, leaving %d", lookups(t.Lookups), inc, cost, after, lim, lim-after)
	}
	return f, true
}

// ipFindings run check_host() for each given client address, answered from
// what the expansion fetched where it can.
func ipFindings(ctx context.Context, a *Analysis, m *memo, opt Options) []report.Finding {
	var out []report.Finding
	sender := opt.Sender
	if sender == "" {
		sender = "postmaster@" + a.Domain
	}
	helo := opt.Helo
	if helo == "" {
		helo = a.Domain
	}
	c := &Checker{Resolver: m, LookupLimit: a.Tree.Limits.Lookups, VoidLimit: a.Tree.Limits.Voids, MXLimit: a.Tree.Limits.MX, Trace: true}
	for _, ip := range opt.IPs {
		o := c.CheckHost(ctx, Query{IP: ip, Sender: sender, Helo: helo, Domain: a.Domain})
		f := report.Finding{ID: IDIPAuthorized, Subject: fmt.Sprintf("%s [%s]", a.Domain, ip)}
		f.Evidence = map[string]any{"result": string(o.Result), "sender": sender, "helo": helo, "lookups": o.Lookups, "void_lookups": o.Voids, "trace": traceLines(o.Trace)}
		if o.Mechanism != "" {
			f.Evidence["term"] = o.Mechanism
			f.Evidence["term_domain"] = o.Domain
		}
		decided := ""
		if o.Mechanism != "" && o.Mechanism != "default" {
			decided = fmt.Sprintf(" from `%s` of %s", o.Mechanism, o.Domain)
		}
		switch o.Result {
		case Pass:
			f.Status = report.StatusPass
			f.Message = fmt.Sprintf("%s gets pass%s", ip, decided)
		case TempError:
			f.Status = report.StatusError
			f.Message = fmt.Sprintf("Could not evaluate %s: temperror (%v)", ip, o.Err)
		default:
			f.Status = report.StatusFail
			f.Message = fmt.Sprintf("%s gets %s%s: mail it sends as %s fails SPF", ip, o.Result, decided, sender)
			if o.Err != nil {
				f.Message += fmt.Sprintf(" (%v)", o.Err)
			}
			term := ipTerms([]string{ip.Unmap().String()})[0]
			switch {
			case a.Tree.Root.Record == nil && o.Result == None:
				f.Remediation = fmt.Sprintf("Publish an SPF record that authorizes it, e.g. v=spf1 %s -all", term)
			case a.Tree.Root.Record != nil && o.Result != PermError:
				f.Remediation = "Authorize it, e.g. add " + term + " before the all term: " + withInclude(a.Tree.Root, term)
			}
		}
		out = append(out, f)
	}
	return out
}

// traceLines condenses a check_host() trace for evidence.
func traceLines(steps []Step) []string {
	out := make([]string, 0, len(steps))
	for _, s := range steps {
		line := fmt.Sprintf("%s%s: %s", strings.Repeat("  ", s.Depth), s.Domain, s.Text)
		if s.Match {
			line += " matched"
		}
		if s.Result != "" {
			line += " -> " + string(s.Result)
		}
		if s.Detail != "" && s.Detail != "record" {
			line += " (" + s.Detail + ")"
		}
		out = append(out, line)
	}
	return out
}

// rangeFindings check whole ranges: those given, and the gateway's.
func rangeFindings(a *Analysis, opt Options) []report.Finding {
	var out []report.Finding
	if len(opt.Ranges) > 0 {
		f := rangeFinding(a, opt.Ranges, "the given ranges", false)
		if f.Status == report.StatusFail {
			f.Remediation = "Add the sender's include, or its ranges, before the all term: " + withInclude(a.Tree.Root, strings.Join(ipTerms(f.Evidence["uncovered"].([]string)), " "))
		}
		out = append(out, f)
	}
	if g := a.Gateway; g != nil {
		if g.Err != nil {
			out = append(out, report.Finding{ID: IDRangesAuthorized, Status: report.StatusError, Subject: a.Domain,
				Message: fmt.Sprintf("The sending ranges of %s are unknown: %v", g.Name, g.Err)})
		} else {
			f := rangeFinding(a, g.Ranges, fmt.Sprintf("the sending ranges of %s (%s)", g.Name, g.Source), g.Unverified)
			if f.Status == report.StatusFail {
				f.Remediation = fmt.Sprintf("Add %s before the all term (see spf.gateway-include).", gatewayWant(opt.Profile))
			}
			out = append(out, f)
		}
	}
	return out
}

func rangeFinding(a *Analysis, ranges []netip.Prefix, what string, unverified bool) report.Finding {
	f := report.Finding{ID: IDRangesAuthorized, Subject: a.Domain}
	f.Evidence = map[string]any{"ranges": prefixStrings(ranges)}
	if a.Tree.Root.Record == nil {
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("Cannot check %s: the domain has no usable SPF record", what)
		return f
	}
	uncovered, maybe := a.Coverage.Authorized(ranges)
	if unverified {
		what += " (unverified)"
	}
	f.Evidence["uncovered"] = prefixStrings(uncovered)
	switch {
	case len(uncovered) == 0:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("Every address of %s gets pass", what)
		f.Message = strings.ToUpper(f.Message[:1]) + f.Message[1:]
	case slices.Equal(maybe, uncovered):
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("Of %s, %s might get pass, depending on terms that need the client or the sender (%s)", what, describeRanges(uncovered), firstOf(a.Tree.Unknown))
		f.Evidence["depends_on"] = a.Tree.Unknown
	default:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("Of %s, %s do not get pass, so mail sent from there fails SPF", what, describeRanges(uncovered))
		var lostToLimit netipx.IPSetBuilder
		for _, p := range uncovered {
			lostToLimit.AddPrefix(p)
		}
		if perm := a.Coverage.Results[PermError]; perm != nil {
			lostToLimit.Intersect(perm)
			if ps := build(&lostToLimit).Prefixes(); len(ps) > 0 {
				f.Message += fmt.Sprintf("; %s get permerror (see spf.lookup-limit and spf.void-limit)", describeRanges(ps))
			}
		}
		if len(maybe) > 0 {
			f.Evidence["maybe"] = prefixStrings(maybe)
		}
	}
	if !a.Tree.CountsExact || len(a.Tree.Incomplete) > 0 {
		if f.Status != report.StatusPass {
			f.Status = report.StatusError
			f.Message = fmt.Sprintf("Could not check all of %s: %s", what, firstOf(a.Tree.Incomplete))
			f.Evidence["incomplete"] = a.Tree.Incomplete
		}
	}
	return f
}

// ipTerms turns ranges into ip4:/ip6: terms.
func ipTerms(ranges []string) []string {
	out := make([]string, len(ranges))
	for i, r := range ranges {
		kind := "ip4:"
		if strings.Contains(r, ":") {
			kind = "ip6:"
		}
		out[i] = kind + r
	}
	return out
}

// lookups is "1 DNS lookup" or "n DNS lookups".
func lookups(n int) string {
	if n == 1 {
		return "1 DNS lookup"
	}
	return fmt.Sprintf("%d DNS lookups", n)
}
