package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// The static analysis of a record tree: Expand fetches the domain's record,
// the records its include and redirect terms lead to, and what its a, mx and
// exists terms name, without a client address. From that tree the package
// computes the worst-case lookup count (count.go), the set of addresses the
// record authorizes (coverage.go) and an equivalent flattened record
// (flatten.go).
//
// Expansion is concurrent: every lookup a record needs starts the moment the
// record arrives, so the wall time is the depth of the tree in round trips,
// not the number of lookups, and each (name, type) is asked once however
// many terms name it.

// Limits are the processing limits of RFC 7208 §4.6.4. Zero fields mean the
// RFC's defaults.
type Limits struct {
	Lookups int // DNS-querying terms per evaluation (10)
	Voids   int // lookups that answer NXDOMAIN or NODATA (2)
	MX      int // MX names per mx mechanism (10)
}

func (l Limits) withDefaults() Limits {
	return Limits{
		Lookups: positiveOr(l.Lookups, DefaultLookupLimit),
		Voids:   positiveOr(l.Voids, DefaultVoidLimit),
		MX:      positiveOr(l.MX, DefaultMXLimit),
	}
}

// noLimits evaluates a record as its author meant it, with no processing
// limit: what a flattened record must reproduce.
var noLimits = Limits{Lookups: 1 << 30, Voids: 1 << 30, MX: 1 << 30}

// ExpandOptions bound the expansion of hostile or broken trees. Zero fields
// take the defaults noted.
type ExpandOptions struct {
	Limits Limits
	// MaxDepth is the deepest include/redirect level expanded (default twice
	// the lookup limit: a record that deep already needs more lookups than
	// any evaluation may make, so deeper levels change no verdict).
	MaxDepth int
	// MaxNodes bounds the records fetched in all (default 200).
	MaxNodes int
	// MaxQueries bounds the distinct DNS questions asked (default 1000).
	MaxQueries int
	// MaxTermLookups bounds the DNS-querying terms looked up per record
	// (default three times the lookup limit): a record with more can never
	// be evaluated to its end anyway.
	MaxTermLookups int
	// Parallel bounds the questions in flight at once (default 32).
	Parallel int
}

func (o ExpandOptions) withDefaults() ExpandOptions {
	o.Limits = o.Limits.withDefaults()
	// The coverage walk stacks taintBits per level in a uint64
	// (cohort.outer): 21 levels fit.
	o.MaxDepth = min(positiveOr(o.MaxDepth, 2*o.Limits.Lookups), 64/taintBits-1)
	o.MaxNodes = positiveOr(o.MaxNodes, 200)
	o.MaxQueries = positiveOr(o.MaxQueries, 1000)
	o.MaxTermLookups = positiveOr(o.MaxTermLookups, 3*o.Limits.Lookups)
	o.Parallel = positiveOr(o.Parallel, 32)
	return o
}

// ErrNotExpanded marks a part of the tree that was not fetched because an
// ExpandOptions bound was reached: its content is unknown, which is neither
// a misconfiguration nor a DNS failure.
var ErrNotExpanded = errors.New("spf: not expanded")

// Tree is the static expansion of one domain's SPF record.
type Tree struct {
	Root   *Node
	Limits Limits
	// Lookups is the worst-case count of DNS-querying terms (every term
	// evaluated, as for a client nothing matches); Voids4 and Voids6 the
	// worst-case void lookups for IPv4 and IPv6 clients.
	Lookups, Voids4, Voids6 int
	// CountsExact is false when an include or redirect target could not be
	// fetched, so Lookups and the void counts are lower bounds.
	CountsExact bool
	// Incomplete says what could not be fetched (DNS failures, bounds).
	Incomplete []string
	// Unknown says which terms depend on the client or the sender.
	Unknown []string
	// Queries is the number of distinct DNS questions the expansion asked.
	Queries int
}

// Node is one record of the tree: the root's, or an include or redirect
// target's.
type Node struct {
	// Domain is the <domain> of the record, as named (macros expanded).
	Domain string
	Depth  int
	Parent *Node
	// Via is the parent's include or redirect term that leads here.
	Via *Term
	// TXT are the TXT records of Domain (the strings of each, decoded);
	// AnswerOctets is the size of the DNS answer that carried them.
	TXT          [][]string
	AnswerOctets int
	// Text and Record are the selected SPF record, when there is one.
	Text   string
	Record *Record
	// Err says why the node has no usable record, and Result what
	// check_host() gives for it then: none (no record, invalid name),
	// permerror (several records, a syntax error, a loop), temperror (a
	// DNS failure). Err wraps ErrNotExpanded, with an empty Result, when
	// the node was not fetched.
	Err    error
	Result Result
	// Terms describe Record.Terms, index for index.
	Terms []*TermInfo
}

// TermInfo is what the expansion learned about one term.
type TermInfo struct {
	Term *Term
	// Target is the name the term queries, macros expanded; empty for
	// terms without a target and when Unknown is set.
	Target string
	// Unknown says why the term's outcome cannot be known in advance: its
	// target needs the client address, the sender or the HELO name, or it
	// is ptr. Such terms are counted, but not expanded.
	Unknown string
	// Skip says why the term is never evaluated or was not looked up.
	Skip Skip
	// Invalid is set when the target is not a valid domain name: the
	// mechanism then does not match, without a query (see checkTargetName).
	Invalid error
	// Child is the record an include or redirect leads to.
	Child *Node
	// Addr holds the A and AAAA lookups of an a mechanism's target, or the
	// A lookup of an exists mechanism's (in V4).
	Addr *AddrLookups
	// MX holds an mx mechanism's lookups.
	MX *MXLookup

	// Filled in by Tree.count: the lookups the term costs with its
	// subtree, the running total after it, whether it is reached over the
	// limit, whether its own lookup is void for IPv4 and IPv6 clients, and
	// the void lookups of its subtree per family.
	Cost, Total          int
	OverLimit            bool
	Void4, Void6         bool
	VoidCost4, VoidCost6 int
}

// Skip says why the expansion passed over a term.
type Skip int

const (
	NotSkipped Skip = iota
	// SkipAfterAll: a mechanism after "all" is never evaluated (RFC 7208
	// §5.1).
	SkipAfterAll
	// SkipRedirectWithAll: redirect= in a record with "all" is never used
	// (§6.1).
	SkipRedirectWithAll
	// SkipBound: the term was not looked up because the record has more
	// DNS-querying terms than ExpandOptions.MaxTermLookups; it still costs
	// a lookup.
	SkipBound
)

func (s Skip) String() string {
	switch s {
	case SkipAfterAll:
		return "never evaluated: after all (RFC 7208 §5.1)"
	case SkipRedirectWithAll:
		return "ignored: the record has all (RFC 7208 §6.1)"
	case SkipBound:
		return "not looked up: too many DNS-querying terms in one record"
	}
	return ""
}

// AddrLookup is the outcome of one address lookup.
type AddrLookup struct {
	Addrs []netip.Addr
	Void  bool  // NXDOMAIN or NODATA
	Err   error // wraps ErrDNS, ErrInvalidDomain or ErrNotExpanded
}

// AddrLookups are the A (V4) and AAAA (V6) lookups of one name.
type AddrLookups struct{ V4, V6 AddrLookup }

// family returns the lookup a client of that family makes.
func (a *AddrLookups) family(v6 bool) *AddrLookup {
	if v6 {
		return &a.V6
	}
	return &a.V4
}

// MXLookup is an mx mechanism's MX lookup and its hosts' addresses.
type MXLookup struct {
	Void  bool
	Err   error
	Count int // MX records found
	// TooMany is set when Count is over the MX limit: the mechanism is a
	// permerror and no host address is looked up (RFC 7208 §4.6.4).
	TooMany bool
	Hosts   []MXHost
}

// MXHost is one MX target and its addresses.
type MXHost struct {
	Name string
	Addr AddrLookups
}

// Expand fetches the SPF record tree of domain through r. It never fails:
// what could not be fetched is recorded in the nodes and in Incomplete.
func Expand(ctx context.Context, r Resolver, domain string, opt ExpandOptions) *Tree {
	opt = opt.withDefaults()
	return expandWith(ctx, newMemo(r, opt.Parallel, opt.MaxQueries), domain, opt)
}

type expander struct {
	ctx context.Context
	opt ExpandOptions
	dns *memo
	// senderDomain is %{o}: the static analysis assumes the MAIL FROM
	// domain is the domain analysed.
	senderDomain string
	wg           sync.WaitGroup
	nodes        atomic.Int64
}

// spawn runs f in its own goroutine, counted by x.wg.
func (x *expander) spawn(f func()) {
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		f()
	}()
}

// expandNode fetches n's record and starts the lookups of its terms.
func (x *expander) expandNode(n *Node) {
	// §4.3: a malformed <domain> gives none (as include and redirect
	// targets: permerror in the parent).
	if err := checkDomain(n.Domain); err != nil {
		n.Err, n.Result = err, None
		return
	}
	if chain, loop := n.loop(); loop {
		n.Err, n.Result = fmt.Errorf("%w: %s", ErrLoop, chain), PermError
		return
	}
	if n.Depth > x.opt.MaxDepth {
		n.Err = fmt.Errorf("%w: deeper than %d levels", ErrNotExpanded, x.opt.MaxDepth)
		return
	}
	if x.nodes.Add(1) > int64(x.opt.MaxNodes) {
		n.Err = fmt.Errorf("%w: more than %d records in the tree", ErrNotExpanded, x.opt.MaxNodes)
		return
	}
	x.spawn(func() {
		rrs, void, err := queryRRs(x.ctx, x.dns, n.Domain, dns.TypeTXT)
		n.TXT, n.AnswerOctets = txtStrings(rrs), answerOctets(n.Domain, rrs)
		text, result, err := selectRecord(n.Domain, rrs, void, err)
		if err != nil {
			if errors.Is(err, ErrNotExpanded) {
				result = ""
			}
			n.Err, n.Result = err, result
			return
		}
		n.Text = text
		rec, err := Parse(text)
		if err != nil {
			n.Err, n.Result = err, PermError
			return
		}
		n.Record = rec
		x.expandTerms(n)
	})
}

// loop reports whether n's domain is already being evaluated above it, as
// check_host() would find (RFC 7208 §4.6.4 requires loops to be detected),
// and the chain of domains that shows it.
func (n *Node) loop() (string, bool) {
	key := strings.ToLower(n.Domain)
	chain := []string{key}
	for p := n.Parent; p != nil; p = p.Parent {
		d := strings.ToLower(p.Domain)
		chain = append(chain, d)
		if d == key {
			for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
				chain[i], chain[j] = chain[j], chain[i]
			}
			return strings.Join(chain, " -> "), true
		}
	}
	return "", false
}

// expandTerms starts the lookups of n's terms, in the order check_host()
// would make them, skipping the terms it never evaluates.
func (x *expander) expandTerms(n *Node) {
	rec := n.Record
	n.Terms = make([]*TermInfo, len(rec.Terms))
	hasAll := rec.HasAll()
	afterAll := false
	lookupTerms := 0
	for i := range rec.Terms {
		t := &rec.Terms[i]
		ti := &TermInfo{Term: t}
		n.Terms[i] = ti
		var spec *MacroString
		switch {
		case t == rec.Redirect:
			if hasAll {
				ti.Skip = SkipRedirectWithAll
				continue
			}
			spec = t.Modifier.Value
		case t.Mechanism == nil:
			continue // exp= and unknown modifiers cost no lookup
		case afterAll:
			ti.Skip = SkipAfterAll
			continue
		case t.Mechanism.Kind == MechAll:
			afterAll = true
			continue
		case !t.Mechanism.Kind.CountsLookup():
			continue
		default:
			spec = t.Mechanism.Domain
		}
		lookupTerms++
		if lookupTerms > x.opt.MaxTermLookups {
			ti.Skip = SkipBound
			continue
		}
		if t.Mechanism != nil && t.Mechanism.Kind == MechPTR {
			ti.Unknown = "ptr depends on the client's reverse DNS"
			continue
		}
		name, unknown := x.staticTarget(spec, n.Domain)
		if unknown != "" {
			ti.Unknown = unknown
			continue
		}
		ti.Target = name
		if t.Modifier != nil {
			x.expandChild(n, ti)
			continue
		}
		switch t.Mechanism.Kind {
		case MechInclude:
			x.expandChild(n, ti)
		case MechA:
			if ti.Invalid = checkTargetName(name); ti.Invalid == nil {
				ti.Addr = x.addrs(name)
			}
		case MechExists:
			if ti.Invalid = checkTargetName(name); ti.Invalid == nil {
				// §5.7: exists asks for A records whatever the client.
				ti.Addr = &AddrLookups{}
				x.spawn(func() { ti.Addr.V4 = x.addr(name, dns.TypeA) })
			}
		case MechMX:
			if ti.Invalid = checkTargetName(name); ti.Invalid == nil {
				ti.MX = &MXLookup{}
				x.spawn(func() { x.mx(name, ti.MX) })
			}
		}
	}
}

// expandChild starts the expansion of an include or redirect target.
func (x *expander) expandChild(n *Node, ti *TermInfo) {
	ti.Child = &Node{Domain: ti.Target, Depth: n.Depth + 1, Parent: n, Via: ti.Term}
	x.expandNode(ti.Child)
}

// staticTarget expands a domain-spec for <domain> when its value is the
// same for every client: no macro, or only %{d} (the current domain) and
// %{o} (the sender's domain, taken to be the analysed domain). Otherwise it
// says which macros make it unknown.
func (x *expander) staticTarget(spec *MacroString, domain string) (name, unknown string) {
	if spec == nil {
		return domain, ""
	}
	letters := spec.Letters()
	if strings.Trim(letters, "do") != "" {
		var named []string
		for _, l := range letters {
			named = append(named, "%{"+string(l)+"}")
		}
		return "", fmt.Sprintf("%s depends on %s", spec.String(), strings.Join(named, ", "))
	}
	env := macroEnv{domain: domain, senderD: x.senderDomain}
	return truncateDomain(spec.expand(&env)), ""
}

// addrs starts the A and AAAA lookups of name: an a mechanism asks one or
// the other depending on the client, and the analysis covers both.
func (x *expander) addrs(name string) *AddrLookups {
	a := &AddrLookups{}
	x.spawn(func() { a.V4 = x.addr(name, dns.TypeA) })
	x.spawn(func() { a.V6 = x.addr(name, dns.TypeAAAA) })
	return a
}

func (x *expander) addr(name string, qtype uint16) AddrLookup {
	rrs, void, err := queryRRs(x.ctx, x.dns, name, qtype)
	l := AddrLookup{Void: void, Err: err}
	for _, rr := range rrs {
		if a, ok := resolver.RRAddr(rr); ok {
			l.Addrs = append(l.Addrs, a)
		}
	}
	return l
}

// mx looks up name's MX set and then its hosts' addresses, as §5.4 does,
// refusing a set over the MX limit as a whole, as check_host() does.
func (x *expander) mx(name string, out *MXLookup) {
	rrs, void, err := queryRRs(x.ctx, x.dns, name, dns.TypeMX)
	out.Void, out.Err = void, err
	if err != nil || void {
		return
	}
	out.Count = len(rrs)
	if out.Count > x.opt.Limits.MX {
		out.TooMany = true
		return
	}
	for _, rr := range rrs {
		m, ok := rr.(*dns.MX)
		if !ok {
			continue
		}
		host := strings.TrimSuffix(m.Mx, ".")
		if host == "" || checkTargetName(host) != nil {
			continue // null MX (RFC 7505) or a name no lookup can be made for
		}
		out.Hosts = append(out.Hosts, MXHost{Name: host})
	}
	for i := range out.Hosts {
		h := &out.Hosts[i]
		x.spawn(func() { h.Addr.V4 = x.addr(h.Name, dns.TypeA) })
		x.spawn(func() { h.Addr.V6 = x.addr(h.Name, dns.TypeAAAA) })
	}
}

// txtStrings decodes the strings of each TXT record.
func txtStrings(rrs []dns.RR) [][]string {
	var out [][]string
	for _, rr := range rrs {
		t, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		strs := make([]string, len(t.Txt))
		for i, s := range t.Txt {
			strs[i] = txtString([]string{s})
		}
		out = append(out, strs)
	}
	return out
}

// answerOctets is the size of a DNS response carrying rrs as the answer to
// a TXT question for name, with name compression and no EDNS: the figure
// RFC 7208 §3.4 compares with 512.
func answerOctets(name string, rrs []dns.RR) int {
	if len(rrs) == 0 {
		return 0
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.Response = true
	m.Answer = rrs
	m.Compress = true
	// Pack, not Len: miekg's Len counts a TXT string in its presentation
	// form, so each \DDD escape (a non-ASCII or control byte) counted 4
	// octets and a 64 KiB answer with such bytes was reported as 255 KB.
	if buf, err := m.Pack(); err == nil {
		return len(buf)
	}
	return m.Len()
}

// memo is the expansion's resolver: each (name, type) is asked once, with at
// most Parallel questions in flight and MaxQueries in all. It also answers
// the check_host() evaluations of the same run from what it holds.
type memo struct {
	res   Resolver
	sem   chan struct{}
	max   int
	mu    sync.Mutex
	calls map[memoKey]*memoCall
}

type memoKey struct {
	name  string
	qtype uint16
}

type memoCall struct {
	done chan struct{}
	ans  *resolver.Answer
	err  error
}

func newMemo(r Resolver, parallel, max int) *memo {
	return &memo{res: r, sem: make(chan struct{}, parallel), max: max, calls: map[memoKey]*memoCall{}}
}

// Lookup implements Resolver.
func (m *memo) Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error) {
	key := memoKey{strings.ToLower(dns.Fqdn(name)), qtype}
	m.mu.Lock()
	c, ok := m.calls[key]
	if !ok {
		if len(m.calls) >= m.max {
			m.mu.Unlock()
			return nil, fmt.Errorf("%w: more than %d DNS questions", ErrNotExpanded, m.max)
		}
		c = &memoCall{done: make(chan struct{})}
		m.calls[key] = c
	}
	m.mu.Unlock()
	if ok {
		select {
		case <-c.done:
			return c.ans, c.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s %s: %w", resolver.ErrTimeout, name, dns.TypeToString[qtype], ctx.Err())
		}
	}
	select {
	case m.sem <- struct{}{}:
		c.ans, c.err = m.res.Lookup(ctx, name, qtype)
		<-m.sem
	case <-ctx.Done():
		c.err = fmt.Errorf("%w: %s %s: %w", resolver.ErrTimeout, name, dns.TypeToString[qtype], ctx.Err())
	}
	close(c.done)
	return c.ans, c.err
}

// asked is the number of distinct questions asked so far.
func (m *memo) asked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}
