package spf

import (
	"errors"
	"net/netip"

	"go4.org/netipx"
)

// Coverage is what a record tree gives every client address, computed
// without a client: the whole address space is evaluated at once.
//
// The evaluation follows check_host() term by term over sets of addresses
// ("cohorts") instead of one address. A cohort is the set of addresses that
// reached the same point with the same lookup and void counts, so the
// §4.6.4 limits apply exactly as they would for each address: an address
// that a later term authorizes, but that only reaches it after the 10th
// lookup, gets permerror here too.
//
// Terms whose outcome depends on the client or the sender (macros, ptr, a
// target that was not fetched) cannot be evaluated this way; the walk
// continues past them as if they did not match and remembers that an
// earlier term might have decided otherwise. Addresses whose result such a
// term could change are in Maybe, never in Pass or Results.
type Coverage struct {
	// Pass holds the addresses that get pass whatever the unknown terms do.
	Pass *netipx.IPSet
	// Maybe holds the addresses that might get pass, depending on terms
	// that cannot be evaluated in advance (disjoint from Pass).
	Maybe *netipx.IPSet
	// Results holds, per result, the addresses that certainly get it;
	// Results[Pass] is Pass.
	Results map[Result]*netipx.IPSet
	// Unsure holds the addresses that certainly do not get pass, but whose
	// result an unknown term might change (neutral or permerror, say).
	Unsure *netipx.IPSet
	// MayError holds the addresses for which an unknown term might cause a
	// permerror (they are also in Maybe or Unsure).
	MayError *netipx.IPSet
}

// Exact reports whether every address has a known result.
func (c *Coverage) Exact() bool {
	return len(c.Maybe.Ranges()) == 0 && len(c.Unsure.Ranges()) == 0
}

// resultUnknown is a walk result for addresses whose outcome depends on an
// unknown term (a macro redirect, a target that was not fetched).
const resultUnknown Result = "unknown"

// taint records that an earlier unknown term might have decided a cohort
// differently from the path the walk follows.
type taint uint8

const (
	mayPass    taint = 1 << iota // ... with pass
	mayNotPass                   // ... with another result
	// mayErr: an unknown term might have ended the evaluation with a
	// permerror (an include target without a record, a limit its unknown
	// lookups could push over). Unlike another non-pass result, an error
	// inside an include is the include's error, so it survives the
	// include boundary.
	mayErr
	taintBits = 3
)

// cohort is a set of addresses of one family at the same point of the
// evaluation with the same counts.
type cohort struct {
	set            *netipx.IPSet
	v6             bool
	lookups, voids int
	// maybeLookups and maybeVoids are what unknown terms on the way might
	// have added (an unknown include's own lookups, a macro exists that
	// answered NXDOMAIN): a limit they could push over is a possible
	// permerror.
	maybeLookups, maybeVoids int
	taint                    taint
	// outer stacks the taints of the enclosing records while a cohort is
	// inside an include, taintBits per level: the include's own result
	// decides how the inner taints carry over (see include).
	outer uint64
}

// settled is a cohort whose result is decided.
type settled struct {
	cohort
	result Result
}

// Coverage evaluates the tree for every address under lim (the tree's own
// limits when lim is zero).
func (t *Tree) Coverage(lim Limits) *Coverage {
	if lim == (Limits{}) {
		lim = t.Limits
	}
	return (&walker{lim: lim.withDefaults()}).coverage(t.Root)
}

// coverage evaluates n for every address.
func (w *walker) coverage(n *Node) *Coverage {
	return classify(w.node(n, startCohorts()))
}

// startCohorts is every address: IPv4, and IPv6 without the IPv4-mapped
// range, which check_host() evaluates as IPv4 (RFC 7208 §5.6).
func startCohorts() []cohort {
	var v4, v6 netipx.IPSetBuilder
	v4.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
	v6.AddPrefix(netip.MustParsePrefix("::/0"))
	v6.RemovePrefix(netip.MustParsePrefix("::ffff:0:0/96"))
	return []cohort{{set: build(&v4)}, {set: build(&v6), v6: true}}
}

// classify turns the walk's settled cohorts into a Coverage.
func classify(out []settled) *Coverage {
	var pass, maybe, unsure, mayError netipx.IPSetBuilder
	definite := map[Result]*netipx.IPSetBuilder{}
	for _, s := range out {
		if s.taint&mayErr != 0 {
			mayError.AddSet(s.set)
		}
		switch {
		case s.result == Pass && s.taint&(mayNotPass|mayErr) == 0:
			pass.AddSet(s.set)
		case s.result != Pass && s.result != resultUnknown && s.taint&mayPass == 0:
			// Certainly not pass; which other result is certain only
			// when no unknown term could have decided instead.
			if s.taint != 0 {
				unsure.AddSet(s.set)
				continue
			}
		default:
			maybe.AddSet(s.set)
			continue
		}
		b := definite[s.result]
		if b == nil {
			b = new(netipx.IPSetBuilder)
			definite[s.result] = b
		}
		b.AddSet(s.set)
	}
	c := &Coverage{Pass: build(&pass), Results: map[Result]*netipx.IPSet{}}
	maybe.RemoveSet(c.Pass)
	c.Maybe = build(&maybe)
	c.Unsure = build(&unsure)
	c.MayError = build(&mayError)
	for r, b := range definite {
		c.Results[r] = build(b)
	}
	c.Results[Pass] = c.Pass
	return c
}

type walker struct {
	lim Limits
}

// node evaluates n's record for the live cohorts and returns them settled.
func (w *walker) node(n *Node, live []cohort) []settled {
	if n.Record == nil {
		r := n.Result
		if errors.Is(n.Err, ErrNotExpanded) {
			r = resultUnknown
		}
		return settle(nil, live, r)
	}
	var out []settled
	var redirect *TermInfo
	terms := n.Terms
	for i := 0; i < len(terms) && len(live) > 0; i++ {
		ti := terms[i]
		if ti.Term == n.Record.Redirect {
			redirect = ti
			continue
		}
		m := ti.Term.Mechanism
		if m == nil || ti.Skip == SkipAfterAll {
			continue
		}
		if m.Kind == MechIP4 || m.Kind == MechIP6 {
			// A run of ip4/ip6 terms with one qualifier decides the same
			// result whatever their order, and costs nothing: match
			// them at once (a 64 KiB record of ranges stays cheap).
			var b netipx.IPSetBuilder
			j := i
			for ; j < len(terms); j++ {
				mj := terms[j].Term.Mechanism
				if mj == nil || (mj.Kind != MechIP4 && mj.Kind != MechIP6) || mj.Qualifier != m.Qualifier {
					break
				}
				b.AddPrefix(mj.Network.Masked())
			}
			i = j - 1
			live, out = match(live, out, build(&b), m.Qualifier.Result())
			continue
		}
		live, out = w.mechanism(ti, live, out)
	}
	if len(live) == 0 {
		return out
	}
	if redirect == nil || redirect.Skip == SkipRedirectWithAll {
		return settle(out, live, Neutral) // §4.7
	}
	live, out = w.countLookup(live, out)
	switch {
	case len(live) == 0:
	case redirect.Child == nil: // a macro target or a bound
		out = settle(out, live, resultUnknown)
	default:
		for _, s := range w.node(redirect.Child, live) {
			if s.result == None {
				s.result = PermError // §6.1: a redirect to no record is a permerror
			}
			out = append(out, s)
		}
	}
	return out
}

// mechanism evaluates one mechanism other than ip4 and ip6.
func (w *walker) mechanism(ti *TermInfo, live []cohort, out []settled) ([]cohort, []settled) {
	m := ti.Term.Mechanism
	q := m.Qualifier.Result()
	if m.Kind.CountsLookup() {
		if live, out = w.countLookup(live, out); len(live) == 0 {
			return live, out
		}
	}
	switch {
	case m.Kind == MechAll:
		return nil, settle(out, live, q)
	case ti.Skip == SkipBound || ti.Unknown != "":
		return w.unknown(live, q, m.Kind), out
	case ti.Invalid != nil:
		return live, out // no match, no lookup (checkTargetName)
	case m.Kind == MechInclude:
		return w.include(ti, live, out)
	}
	var next []cohort
	for _, c := range live {
		var l *AddrLookup
		var set *netipx.IPSet
		switch m.Kind {
		case MechA:
			l = ti.Addr.family(c.v6)
			set = addrSet(l.Addrs, m, c.v6)
		case MechExists:
			l = &ti.Addr.V4
			if len(l.Addrs) > 0 {
				set = c.set // §5.7: any A record is a match for every client
			}
		case MechMX:
			var hostErr error
			l, set, hostErr = mxMatch(ti.MX, m, c.v6)
			if l.Err == nil && hostErr != nil {
				// Addresses of hosts that answered still match; the
				// rest is a temperror (eval.go, mx).
				matched, rest := split(c, set)
				out = settleOne(out, matched, q)
				out = settleOne(out, rest, lookupResult(hostErr))
				continue
			}
		}
		switch {
		case l.Err != nil && errors.Is(l.Err, ErrInvalidDomain):
			next = append(next, c)
		case l.Err != nil && errors.Is(l.Err, ErrNotExpanded):
			next = append(next, w.unknown([]cohort{c}, q, m.Kind)...)
		case l.Err != nil:
			out = settleOne(out, c, TempError)
		case m.Kind == MechMX && ti.MX.TooMany:
			out = settleOne(out, c, PermError)
		case l.Void:
			if c.voids++; c.voids > w.lim.Voids {
				out = settleOne(out, c, PermError)
				continue
			}
			if c.voids+c.maybeVoids > w.lim.Voids {
				c.taint |= mayErr
			}
			next = append(next, c)
		default:
			var rest []cohort
			rest, out = match([]cohort{c}, out, set, q)
			next = append(next, rest...)
		}
	}
	return merge(next), out
}

// include evaluates an include whose target was fetched (RFC 7208 §5.2).
// The target's record is walked for the live cohorts; its pass matches,
// its fail, softfail and neutral go on, its errors are the include's.
//
// Taints from unknown terms inside the target are about the target's
// result, so they carry over according to what the include then does: if
// the target might not have passed, a matched include might not have
// matched; if it might have passed, an include that did not match might
// have.
func (w *walker) include(ti *TermInfo, live []cohort, out []settled) ([]cohort, []settled) {
	q := ti.Term.Mechanism.Qualifier.Result()
	in := make([]cohort, len(live))
	for i, c := range live {
		c.outer, c.taint = c.outer<<taintBits|uint64(c.taint), 0
		in[i] = c
	}
	// If the include's qualifier is pass, an include that might have
	// matched might have given pass; otherwise another result.
	onMatch := mayNotPass
	if q == Pass {
		onMatch = mayPass
	}
	var next []cohort
	for _, s := range w.node(ti.Child, in) {
		c, inner := s.cohort, s.taint
		c.taint, c.outer = taint(c.outer&(1<<taintBits-1)), c.outer>>taintBits
		c.taint |= inner & mayErr // an error inside is the include's error
		switch s.result {
		case Pass:
			if inner&(mayNotPass|mayErr) != 0 {
				// Had the include not matched, a later term would
				// decide: a result other than q.
				c.taint |= opposite(onMatch)
			}
			out = settleOne(out, c, q)
		case Fail, SoftFail, Neutral:
			if inner&mayPass != 0 {
				c.taint |= onMatch
			}
			next = append(next, c)
		case resultUnknown:
			next = append(next, w.unknown([]cohort{c}, q, MechInclude)...)
		default: // none, permerror, temperror
			if inner != 0 {
				c.taint |= mayPass
			}
			r := s.result
			if r == None {
				r = PermError // §5.2: an include target without a record
			}
			out = settleOne(out, c, r)
		}
	}
	return merge(next), out
}

// opposite turns "might have given pass" into "might have given another
// result" and back.
func opposite(t taint) taint { return t ^ (mayPass | mayNotPass) }

// unknown passes the live cohorts over a term whose outcome is unknown: the
// walk goes on as if it did not match, and remembers that it might have
// matched with result q, and that it might have ended the evaluation with
// a permerror (mayErr): an include whose target has no record, an mx over
// the MX limit, or a void lookup one too many. An unknown include may also have
// made any number of lookups and void lookups of its own.
func (w *walker) unknown(live []cohort, q Result, kind MechanismKind) []cohort {
	t := mayNotPass
	if q == Pass {
		t = mayPass
	}
	out := make([]cohort, len(live))
	for i, c := range live {
		c.taint |= t
		switch kind {
		case MechInclude:
			c.taint |= mayErr
			c.maybeLookups, c.maybeVoids = w.lim.Lookups+1, w.lim.Voids+1
		case MechMX:
			c.taint |= mayErr
			c.maybeVoids = min(c.maybeVoids+1, w.lim.Voids+1)
		default: // a, exists, ptr: at most one void lookup
			if c.voids+c.maybeVoids+1 > w.lim.Voids {
				c.taint |= mayErr
			}
			c.maybeVoids = min(c.maybeVoids+1, w.lim.Voids+1)
		}
		out[i] = c
	}
	return merge(out)
}

// countLookup counts one DNS-querying term for every live cohort; cohorts
// over the limit get permerror (§4.6.4).
func (w *walker) countLookup(live []cohort, out []settled) ([]cohort, []settled) {
	next := live[:0:0]
	for _, c := range live {
		if c.lookups++; c.lookups > w.lim.Lookups {
			out = settleOne(out, c, PermError)
			continue
		}
		if c.lookups+c.maybeLookups > w.lim.Lookups {
			c.taint |= mayErr
		}
		next = append(next, c)
	}
	return next, out
}

// match settles the addresses of the live cohorts that are in set with
// result q and returns the rest still live.
func match(live []cohort, out []settled, set *netipx.IPSet, q Result) ([]cohort, []settled) {
	var next []cohort
	for _, c := range live {
		matched, rest := split(c, set)
		out = settleOne(out, matched, q)
		if rest.set != nil {
			next = append(next, rest)
		}
	}
	return next, out
}

// split divides c into its addresses in set and the others; an empty part
// has a nil set.
func split(c cohort, set *netipx.IPSet) (in, out cohort) {
	in, out = c, c
	in.set, out.set = nil, nil
	if set == nil || len(set.Ranges()) == 0 {
		out.set = c.set
		return in, out
	}
	var bi, bo netipx.IPSetBuilder
	bi.AddSet(c.set)
	bi.Intersect(set)
	bo.AddSet(c.set)
	bo.RemoveSet(set)
	if s := build(&bi); len(s.Ranges()) > 0 {
		in.set = s
	}
	if s := build(&bo); len(s.Ranges()) > 0 {
		out.set = s
	}
	return in, out
}

func settleOne(out []settled, c cohort, r Result) []settled {
	if c.set == nil {
		return out
	}
	return append(out, settled{c, r})
}

func settle(out []settled, live []cohort, r Result) []settled {
	for _, c := range live {
		out = settleOne(out, c, r)
	}
	return out
}

// merge joins cohorts that differ only in their addresses, so the number of
// cohorts stays bounded by the distinct (family, counts, taints) states.
func merge(live []cohort) []cohort {
	if len(live) < 2 {
		return live
	}
	type key struct {
		v6                       bool
		lookups, voids           int
		maybeLookups, maybeVoids int
		taint                    taint
		outer                    uint64
	}
	idx := map[key]int{}
	var out []cohort
	var builders []*netipx.IPSetBuilder
	for _, c := range live {
		k := key{c.v6, c.lookups, c.voids, c.maybeLookups, c.maybeVoids, c.taint, c.outer}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, c)
			builders = append(builders, nil)
			continue
		}
		if builders[i] == nil {
			builders[i] = new(netipx.IPSetBuilder)
			builders[i].AddSet(out[i].set)
		}
		builders[i].AddSet(c.set)
	}
	for i, b := range builders {
		if b != nil {
			out[i].set = build(b)
		}
	}
	return out
}

// addrSet is the set an a mechanism (or one MX host) matches for a client
// family: each address widened to the mechanism's prefix length (§5.3).
func addrSet(addrs []netip.Addr, m *Mechanism, v6 bool) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, a := range addrs {
		if a.Is6() != v6 {
			continue
		}
		bits := m.CIDR4
		if v6 {
			bits = m.CIDR6
		}
		b.AddPrefix(netip.PrefixFrom(a, bits).Masked())
	}
	return build(&b)
}

// mxMatch returns the MX lookup (as an AddrLookup for its error and void),
// the addresses the mechanism matches for a client family, and the first
// failure among the hosts' address lookups.
func mxMatch(mx *MXLookup, m *Mechanism, v6 bool) (*AddrLookup, *netipx.IPSet, error) {
	l := &AddrLookup{Void: mx.Void, Err: mx.Err}
	var b netipx.IPSetBuilder
	var hostErr error
	for _, h := range mx.Hosts {
		a := h.Addr.family(v6)
		switch {
		case a.Err != nil && errors.Is(a.Err, ErrInvalidDomain):
		case a.Err != nil:
			if hostErr == nil {
				hostErr = a.Err
			}
		default:
			b.AddSet(addrSet(a.Addrs, m, v6))
		}
	}
	return l, build(&b), hostErr
}

// lookupResult is what a failed lookup makes of the clients that reach it:
// unknown when the lookup was not made (a bound), else a temperror.
func lookupResult(err error) Result {
	if errors.Is(err, ErrNotExpanded) {
		return resultUnknown
	}
	return TempError
}

// build returns the builder's set. Builders here only ever get valid
// prefixes and sets, the only source of an error.
func build(b *netipx.IPSetBuilder) *netipx.IPSet {
	s, _ := b.IPSet()
	if s == nil {
		s = new(netipx.IPSet)
	}
	return s
}

// Authorized reports how the coverage treats each range: the parts that do
// not get pass, and, of those, the parts that might (unknown terms).
func (c *Coverage) Authorized(ranges []netip.Prefix) (uncovered, maybe []netip.Prefix) {
	var want netipx.IPSetBuilder
	for _, p := range ranges {
		want.AddPrefix(unmapPrefix(p))
	}
	want.RemoveSet(c.Pass)
	missing := build(&want)
	var m netipx.IPSetBuilder
	m.AddSet(missing)
	m.Intersect(c.Maybe)
	return missing.Prefixes(), build(&m).Prefixes()
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix into its IPv4 prefix, the way
// check_host() treats such clients.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// prefixStrings renders prefixes for messages and evidence.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
