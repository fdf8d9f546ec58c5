package spf

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"net/netip"

	"github.com/miekg/dns"
	"go4.org/netipx"
)

// Flattening replaces lookup terms of the domain's own record by the
// addresses they authorize today, until the record needs at most
// MaxLookups DNS lookups, so that it stays within RFC 7208's limit of 10.
//
// The result is equivalent to the record as its author meant it: every
// client gets the result it would get if there were no processing limits
// (so addresses a record over the limit loses to permerror are authorized
// again). Terms that depend on the client or the sender (macros, ptr) and
// terms whose lookups failed are kept as they are. Terms are replaced most
// expensive first; names in Prefer (the gateway's include) are replaced
// last, because a replaced include no longer follows the vendor's changes.
//
// The record is split into strings of at most 255 octets (RFC 7208 §3.3),
// and when the domain's TXT answer would exceed 512 octets (§3.4), runs of
// ranges move into chained records "_spfN.<domain>" that the domain's
// record includes; each such include costs a lookup of its own.

// DefaultFlattenLookups is the lookup budget of a flattened record when none
// is given: the RFC 7208 §4.6.4 limit.
const DefaultFlattenLookups = DefaultLookupLimit

// maxAnswerOctets is the size RFC 7208 §3.4 asks a TXT answer to stay
// within, so it fits a DNS message over UDP without EDNS.
const maxAnswerOctets = 512

// maxStringOctets is the longest TXT character-string (RFC 1035 §3.3).
const maxStringOctets = 255

// FlattenOptions tune Flatten.
type FlattenOptions struct {
	// MaxLookups is the lookup budget: terms are replaced until the set
	// needs at most this many (0: replace everything that can be). Callers
	// usually pass DefaultFlattenLookups.
	MaxLookups int
	// Prefer names include targets to keep live as long as possible.
	Prefer []string
	// Add are includes to add to the set, before its all term (the
	// gateway's, during a readiness check); they stay live.
	Add []*Tree
}

// Flattened is a flattened record set.
type Flattened struct {
	// Records are the TXT records to publish, the domain's own first.
	Records []Published
	// Lookups is the worst-case lookup count of the set.
	Lookups    int
	MaxLookups int
	// Kept are the root's lookup terms left live; Replaced those replaced
	// by addresses; Added the includes added (FlattenOptions.Add).
	Kept, Replaced, Added []string
	Warnings              []string
}

// Published is one TXT record of a flattened set.
type Published struct {
	Name    string
	Text    string
	Strings []string
	// AnswerOctets is the DNS answer size for the name's TXT records, with
	// the other TXT records already at the name for the domain's own.
	AnswerOctets int
}

// ErrCannotFlatten is returned when the domain has no usable record.
var ErrCannotFlatten = errors.New("spf: cannot flatten")

// flatItem is one evaluated term of the root record.
type flatItem struct {
	ti   *TermInfo
	cost int // lookups while live
	// replacement is what the term becomes when replaced, nil when it
	// cannot be (unknown, failed lookups); why says why not.
	replacement []flatTerm
	why         string
	replaced    bool
	preferred   bool
	added       bool // not in the record: added by FlattenOptions.Add
}

// flatTerm is one term of the output: a qualified address set, "all" with a
// qualifier (set nil, all true), or a term kept as written.
type flatTerm struct {
	qual    Qualifier
	set     *netipx.IPSet
	all     bool
	literal string
	item    int // the flatItem it comes from
}

// Flatten computes a flattened record set for the tree's root.
func (t *Tree) Flatten(opt FlattenOptions) (*Flattened, error) {
	root := t.Root
	if root.Record == nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCannotFlatten, root.Domain, root.Err)
	}
	budget := max(opt.MaxLookups, 0)
	items := t.flatItems(opt.Prefer, opt.Add)
	for _, it := range items {
		// A void lookup is dead weight that counts against the void
		// limit: replace it whatever the budget.
		if (it.ti.Void4 || it.ti.Void6) && it.replacement != nil {
			it.replaced = true
		}
	}
	f := &Flattened{MaxLookups: budget}
	var out []Published
	for {
		terms, reached := emitTerms(items)
		out = t.publish(terms)
		f.Lookups = len(out) - 1
		voids4, voids6 := 0, 0
		for _, it := range items[:reached] {
			if !it.replaced {
				f.Lookups += it.cost
				voids4 += it.ti.VoidCost4
				voids6 += it.ti.VoidCost6
			}
		}
		items = items[:reached] // terms after an "all" are gone
		// The void lookups left in live includes count too: over the
		// limit they would turn the set into a permerror.
		voidsOver := max(voids4, voids6) > t.Limits.Voids
		if f.Lookups <= budget && !voidsOver {
			break
		}
		var next *flatItem
		if voidsOver {
			next = pickReplacement(items, true)
		}
		if next == nil && f.Lookups > budget {
			next = pickReplacement(items, false)
		}
		if next == nil {
			f.Warnings = append(f.Warnings, fmt.Sprintf("The set still needs %d DNS lookups (%d void) for a budget of %d lookups and %d void lookups: the terms left depend on the client or the sender, or their lookups failed.", f.Lookups, max(voids4, voids6), budget, t.Limits.Voids))
			break
		}
		next.replaced = true
	}
	f.Records = out
	for _, it := range items {
		if it.cost == 0 {
			continue
		}
		switch {
		case it.replaced:
			f.Replaced = append(f.Replaced, it.ti.Term.Text)
		case it.added:
			f.Added = append(f.Added, it.ti.Term.Text)
			f.Warnings = append(f.Warnings, fmt.Sprintf("%s is %s.", it.ti.Term.Text, it.why))
		default:
			f.Kept = append(f.Kept, it.ti.Term.Text)
			if it.why != "" {
				f.Warnings = append(f.Warnings, fmt.Sprintf("%s is kept live: %s.", it.ti.Term.Text, it.why))
			}
		}
	}
	if len(f.Replaced) == 0 {
		f.Warnings = append(f.Warnings, fmt.Sprintf("The record already needs no more than %d lookups; nothing was replaced (a budget of 0 replaces every term that can be).", budget))
	} else {
		f.Warnings = append(f.Warnings, fmt.Sprintf("Flattening freezes today's addresses of %s: when a vendor or your own hosts change them, mail from the new addresses fails SPF until the records are flattened again. Re-run this regularly, or keep vendor includes live.", strings.Join(f.Replaced, ", ")))
	}
	if t.Lookups > t.Limits.Lookups {
		f.Warnings = append(f.Warnings, fmt.Sprintf("The current record needs %d lookups, over the limit of %d, so receivers give permerror to the clients its later terms authorize; the flattened set authorizes them as the record intends.", t.Lookups, t.Limits.Lookups))
	}
	if len(out) > 1 {
		f.Warnings = append(f.Warnings, fmt.Sprintf("Publish all %d records; the names %s must not already hold other TXT records.", len(out), chainNames(out)))
	}
	return f, nil
}

// flatItems lists the root's evaluated mechanisms in order and the
// effective redirect, each with its replacement when one exists, with the
// includes of add inserted before the all term.
func (t *Tree) flatItems(prefer []string, add []*Tree) []*flatItem {
	var items, tail []*flatItem
	root := t.Root
	insert := func() {
		for _, at := range add {
			items = append(items, addedInclude(at))
		}
		add = nil
	}
	for _, ti := range root.Terms {
		if m := ti.Term.Mechanism; m != nil && m.Kind == MechAll && ti.Skip == NotSkipped {
			insert()
		}
		m := ti.Term.Mechanism
		if ti.Term == root.Record.Redirect && ti.Skip == NotSkipped {
			it := &flatItem{ti: ti, cost: ti.Cost}
			it.replacement, it.why = redirectReplacement(ti)
			tail = append(tail, it)
			continue
		}
		if m == nil || ti.Skip == SkipAfterAll {
			continue
		}
		it := &flatItem{ti: ti, cost: ti.Cost}
		if ti.Child != nil {
			for _, p := range prefer {
				it.preferred = it.preferred || strings.EqualFold(strings.TrimSuffix(p, "."), ti.Target)
			}
		}
		if m.Kind.CountsLookup() {
			it.replacement, it.why = mechanismReplacement(ti)
		}
		items = append(items, it)
	}
	insert() // no all: before the redirect, or at the end
	// The redirect is evaluated last, wherever it is written.
	return append(items, tail...)
}

// addedInclude is a live include of tree's domain that the set gains.
func addedInclude(tree *Tree) *flatItem {
	rec, _ := Parse("v=spf1 include:" + tree.Root.Domain)
	ti := &TermInfo{Term: &rec.Terms[0], Target: tree.Root.Domain, Child: tree.Root,
		Cost: 1 + tree.Lookups, VoidCost4: tree.Voids4, VoidCost6: tree.Voids6}
	return &flatItem{ti: ti, cost: ti.Cost, why: "added for the gateway, and kept live so it follows the gateway's changes", added: true}
}

// mechanismReplacement is what a lookup mechanism becomes when replaced by
// addresses, or why it cannot be.
func mechanismReplacement(ti *TermInfo) ([]flatTerm, string) {
	m := ti.Term.Mechanism
	switch {
	case ti.Unknown != "":
		return nil, ti.Unknown
	case ti.Skip == SkipBound:
		return nil, ti.Skip.String()
	case ti.Invalid != nil:
		return []flatTerm{}, "" // never matches: replaced by nothing
	}
	var b netipx.IPSetBuilder
	switch m.Kind {
	case MechInclude:
		set, why := includeMatches(ti.Child)
		if why != "" {
			return nil, why
		}
		return []flatTerm{{qual: m.Qualifier, set: set}}, ""
	case MechA:
		for _, v6 := range []bool{false, true} {
			l := ti.Addr.family(v6)
			if l.Err != nil && !errors.Is(l.Err, ErrInvalidDomain) {
				return nil, fmt.Sprintf("its lookup failed: %v", l.Err)
			}
			b.AddSet(addrSet(l.Addrs, m, v6))
		}
	case MechMX:
		if ti.MX.Err != nil && !errors.Is(ti.MX.Err, ErrInvalidDomain) {
			return nil, fmt.Sprintf("its lookup failed: %v", ti.MX.Err)
		}
		if ti.MX.TooMany {
			return nil, fmt.Sprintf("it names %d MX hosts, over the limit of 10, so it is a permerror", ti.MX.Count)
		}
		for _, v6 := range []bool{false, true} {
			_, set, hostErr := mxMatch(ti.MX, m, v6)
			if hostErr != nil {
				return nil, fmt.Sprintf("an MX host's lookup failed: %v", hostErr)
			}
			b.AddSet(set)
		}
	case MechExists:
		l := ti.Addr.V4
		switch {
		case l.Err != nil && !errors.Is(l.Err, ErrInvalidDomain):
			return nil, fmt.Sprintf("its lookup failed: %v", l.Err)
		case len(l.Addrs) > 0:
			return []flatTerm{{qual: m.Qualifier, all: true}}, "" // §5.7: matches every client
		}
		return []flatTerm{}, ""
	default: // ptr
		return nil, "ptr depends on the client's reverse DNS"
	}
	return []flatTerm{{qual: m.Qualifier, set: build(&b)}}, ""
}

// redirectReplacement inlines an effective redirect's target: its pass set,
// its other results as explicit ranges, and the result most of the IPv4
// space gets as "all".
func redirectReplacement(ti *TermInfo) ([]flatTerm, string) {
	if ti.Unknown != "" {
		return nil, ti.Unknown
	}
	if ti.Skip == SkipBound {
		return nil, ti.Skip.String()
	}
	cov, why := exactCoverage(ti.Child)
	if why != "" {
		return nil, why
	}
	out := []flatTerm{{qual: QualifierPass, set: cov.Pass}}
	classes := []struct {
		r Result
		q Qualifier
	}{{Fail, QualifierFail}, {SoftFail, QualifierSoftFail}, {Neutral, QualifierNeutral}}
	def, defSize := 0, -1.0
	for i, c := range classes {
		if s := ipv4Share(cov.Results[c.r]); s > defSize {
			def, defSize = i, s
		}
	}
	for i, c := range classes {
		if i != def && cov.Results[c.r] != nil {
			out = append(out, flatTerm{qual: c.q, set: cov.Results[c.r]})
		}
	}
	return append(out, flatTerm{qual: classes[def].q, all: true}), ""
}

// ipv4Share is the fraction of the IPv4 space in s.
func ipv4Share(s *netipx.IPSet) float64 {
	if s == nil {
		return 0
	}
	total := 0.0
	for _, p := range s.Prefixes() {
		if p.Addr().Is4() {
			total += 1 / float64(uint64(1)<<p.Bits())
		}
	}
	return total
}

// includeMatches is the set of clients an include of n matches when there
// are no processing limits, if that set is certain: n's certain pass set,
// with no client that might pass or might get an error. Which other result
// n gives does not matter to the include.
func includeMatches(n *Node) (*netipx.IPSet, string) {
	if n == nil {
		return nil, "its target is unknown"
	}
	cov := (&walker{lim: noLimits}).coverage(n)
	if len(cov.Maybe.Ranges()) > 0 || len(cov.MayError.Ranges()) > 0 {
		return nil, "its result depends on the client or the sender (macros, ptr) or on records that were not fetched"
	}
	if why := errorResults(cov); why != "" {
		return nil, why
	}
	return cov.Pass, ""
}

func errorResults(cov *Coverage) string {
	for _, r := range []Result{None, PermError, TempError} {
		if s := cov.Results[r]; s != nil && len(s.Ranges()) > 0 {
			return fmt.Sprintf("it gives %s for some clients (%s)", r, firstPrefixes(s, 3))
		}
	}
	return ""
}

// exactCoverage evaluates n alone with no processing limits and returns its
// coverage when every address gets a known pass, fail, softfail or neutral;
// otherwise it says why the record cannot be replaced by addresses.
func exactCoverage(n *Node) (*Coverage, string) {
	if n == nil {
		return nil, "its target is unknown"
	}
	cov := (&walker{lim: noLimits}).coverage(n)
	if !cov.Exact() {
		return nil, "its result depends on the client or the sender (macros, ptr) or on records that were not fetched"
	}
	if why := errorResults(cov); why != "" {
		return nil, why
	}
	return cov, ""
}

func firstPrefixes(s *netipx.IPSet, n int) string {
	ps := s.Prefixes()
	strs := prefixStrings(ps[:min(n, len(ps))])
	if len(ps) > n {
		strs = append(strs, fmt.Sprintf("and %d more", len(ps)-n))
	}
	return strings.Join(strs, ", ")
}

// pickReplacement chooses the next live term to replace: the costliest in
// lookups (in void lookups when those are over their limit), preferred
// names last, later terms before earlier ones on a tie.
func pickReplacement(items []*flatItem, byVoids bool) *flatItem {
	cost := func(it *flatItem) int {
		if byVoids {
			return max(it.ti.VoidCost4, it.ti.VoidCost6)
		}
		return it.cost
	}
	var best *flatItem
	for _, it := range items {
		if it.replaced || it.replacement == nil || cost(it) == 0 {
			continue
		}
		if best == nil || cmp.Or(
			-cmpBool(it.preferred, best.preferred), // false before true
			cmp.Compare(cost(it), cost(best)),
		) >= 0 {
			best = it
		}
	}
	return best
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// emitTerms renders the root record's terms with the replaced items
// expanded, adjacent address sets of one qualifier merged, and addresses an
// earlier term already decided left out. Nothing after an "all" (one
// written, or an exists that matches everyone) is ever evaluated, so the
// items after it are dropped; reached is the number of items kept.
func emitTerms(items []*flatItem) (out []flatTerm, reached int) {
	var terms []flatTerm
	for k, it := range items {
		start := len(terms)
		switch {
		case it.replaced:
			terms = append(terms, it.replacement...)
		case it.ti.Term.Mechanism != nil && (it.ti.Term.Mechanism.Kind == MechIP4 || it.ti.Term.Mechanism.Kind == MechIP6):
			var b netipx.IPSetBuilder
			b.AddPrefix(it.ti.Term.Mechanism.Network.Masked())
			terms = append(terms, flatTerm{qual: it.ti.Term.Mechanism.Qualifier, set: build(&b)})
		case it.ti.Term.Mechanism != nil && it.ti.Term.Mechanism.Kind == MechAll:
			terms = append(terms, flatTerm{qual: it.ti.Term.Mechanism.Qualifier, all: true})
		default:
			terms = append(terms, flatTerm{literal: it.ti.Term.String()})
		}
		for i := start; i < len(terms); i++ {
			terms[i].item = k
		}
	}
	// Merge runs and drop what is already decided; stop after "all".
	var decided netipx.IPSetBuilder
	for i := 0; i < len(terms); i++ {
		ft := terms[i]
		if ft.all || ft.literal != "" {
			out = append(out, ft)
			if ft.all {
				return out, ft.item + 1
			}
			continue
		}
		var run netipx.IPSetBuilder
		j := i
		for ; j < len(terms) && terms[j].set != nil && terms[j].qual == ft.qual; j++ {
			run.AddSet(terms[j].set)
		}
		i = j - 1
		run.RemoveSet(build(&decided))
		set := build(&run)
		if len(set.Ranges()) == 0 {
			continue
		}
		decided.AddSet(set)
		if isUniverse(build(&decided)) {
			// Every client still undecided matches: that is "all",
			// and nothing after it is reached.
			return append(out, flatTerm{qual: ft.qual, all: true}), terms[j-1].item + 1
		}
		out = append(out, flatTerm{qual: ft.qual, set: set, item: terms[j-1].item})
	}
	return out, len(items)
}

// mappedV6 is the IPv4-mapped IPv6 block: check_host() evaluates such
// clients as IPv4 (RFC 7208 §5.6), so no ip6 term can ever match there, and
// a set may include it or not at will.
var mappedV6 = netip.MustParsePrefix("::ffff:0:0/96")

// isUniverse reports whether s holds every address a client can have.
func isUniverse(s *netipx.IPSet) bool {
	var b netipx.IPSetBuilder
	for _, c := range startCohorts() {
		b.AddSet(c.set)
	}
	b.RemoveSet(s)
	return len(build(&b).Ranges()) == 0
}

// publish renders the terms as the domain's record, moving runs of ranges
// into chained records while the domain's TXT answer is over 512 octets.
func (t *Tree) publish(terms []flatTerm) []Published {
	root := t.Root
	others := otherTXT(root)
	exp := root.Record.Exp
	// Runs that may move, largest first.
	var runs []int
	for i, ft := range terms {
		if ft.set != nil {
			runs = append(runs, i)
		}
	}
	slices.SortStableFunc(runs, func(a, b int) int { return cmp.Compare(len(terms[b].words()), len(terms[a].words())) })
	moved := map[int][]string{} // term index -> chained names
	var chained []Published
	for {
		var ws []string
		for i, ft := range terms {
			if names, ok := moved[i]; ok {
				for _, n := range names {
					ws = append(ws, ft.qual.prefix()+"include:"+n)
				}
				continue
			}
			ws = append(ws, ft.words()...)
		}
		if exp != nil {
			ws = append(ws, exp.String())
		}
		rec := newPublished(root.Domain, "v=spf1 "+strings.Join(ws, " "), others)
		if rec.AnswerOctets <= maxAnswerOctets || len(runs) == 0 {
			return append([]Published{rec}, chained...)
		}
		i := runs[0]
		runs = runs[1:]
		for _, chunk := range packChunks(root.Domain, terms[i].setWords(), len(chained)) {
			chained = append(chained, chunk)
			moved[i] = append(moved[i], chunk.Name)
		}
	}
}

// packChunks packs range terms into chained records "_spfN.<domain>" of at
// most 512 octets each; each ends with -all so that the include matches
// exactly its ranges.
func packChunks(domain string, ranges []string, already int) []Published {
	var out []Published
	for len(ranges) > 0 {
		name := fmt.Sprintf("_spf%d.%s", already+len(out)+1, domain)
		n := len(ranges)
		for n > 1 && newPublished(name, "v=spf1 "+strings.Join(ranges[:n], " ")+" -all", nil).AnswerOctets > maxAnswerOctets {
			n--
		}
		out = append(out, newPublished(name, "v=spf1 "+strings.Join(ranges[:n], " ")+" -all", nil))
		ranges = ranges[n:]
	}
	return out
}

// words renders a flat term.
func (ft flatTerm) words() []string {
	switch {
	case ft.literal != "":
		return []string{ft.literal}
	case ft.all:
		return []string{ft.qual.prefix() + "all"}
	}
	ws := ft.setWords()
	for i := range ws {
		ws[i] = ft.qual.prefix() + ws[i]
	}
	return ws
}

// setWords renders the set as unqualified ip4: and ip6: terms, IPv4 first,
// with the IPv4-mapped block filled in where that makes fewer terms.
func (ft flatTerm) setWords() []string {
	ps := ft.set.Prefixes()
	var b netipx.IPSetBuilder
	b.AddSet(ft.set)
	b.AddPrefix(mappedV6)
	if filled := build(&b).Prefixes(); len(filled) < len(ps) {
		ps = filled
	}
	var out []string
	for _, p := range ps {
		kind, bits := "ip4:", 32
		if p.Addr().Is6() {
			kind, bits = "ip6:", 128
		}
		s := kind + p.Addr().String()
		if p.Bits() != bits {
			s += fmt.Sprintf("/%d", p.Bits())
		}
		out = append(out, s)
	}
	return out
}

// prefix is the qualifier as written: nothing for pass.
func (q Qualifier) prefix() string {
	if q == QualifierPass || q == 0 {
		return ""
	}
	return string(q)
}

// newPublished splits text into strings and measures the answer.
func newPublished(name, text string, others []dns.RR) Published {
	p := Published{Name: name, Text: text, Strings: splitStrings(text)}
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600}}
	for _, s := range p.Strings {
		txt.Txt = append(txt.Txt, escapeTXT(s))
	}
	p.AnswerOctets = answerOctets(name, append([]dns.RR{txt}, others...))
	return p
}

// splitStrings cuts text into character-strings of at most 255 octets,
// after a space where one is near, so each string ends on a whole term
// (receivers join them with nothing in between, RFC 7208 §3.3).
func splitStrings(text string) []string {
	var out []string
	for len(text) > maxStringOctets {
		cut := strings.LastIndexByte(text[:maxStringOctets], ' ') + 1
		if cut <= 0 {
			cut = maxStringOctets
		}
		out = append(out, text[:cut])
		text = text[cut:]
	}
	return append(out, text)
}

// escapeTXT writes a string in miekg's presentation form.
func escapeTXT(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// otherTXT are the root's TXT records that are not SPF: they share the
// answer with the flattened record.
func otherTXT(n *Node) []dns.RR {
	var out []dns.RR
	for _, strs := range n.TXT {
		if IsSPF(strings.Join(strs, "")) {
			continue
		}
		txt := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(n.Domain), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600}}
		for _, s := range strs {
			txt.Txt = append(txt.Txt, escapeTXT(s))
		}
		out = append(out, txt)
	}
	return out
}

func chainNames(ps []Published) string {
	names := make([]string, 0, len(ps)-1)
	for _, p := range ps[1:] {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}
