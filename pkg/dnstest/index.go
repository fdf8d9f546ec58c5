package dnstest

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// node is the data at one owner name: its RRsets, and the order in which the
// types first appeared in the file (so ANY answers are deterministic).
type node struct {
	sets  map[uint16][]dns.RR
	order []uint16
}

// zoneIndex is the immutable, query-ready form of a Zone. It is built once
// by AddZone and then read concurrently without locks.
type zoneIndex struct {
	origin string
	soa    *dns.SOA
	nodes  map[string]*node // canonical owner name -> data
	// ents holds the empty non-terminals: names with no records of their own
	// but with a descendant that has some. They exist (RFC 8020 §2), so a
	// query for them is NODATA, never NXDOMAIN.
	ents map[string]bool
}

func newZoneIndex(z *Zone) (*zoneIndex, error) {
	if z == nil {
		return nil, errors.New("dnstest: nil zone")
	}
	origin := dns.CanonicalName(z.Origin)
	if _, ok := dns.IsDomainName(origin); !ok || z.Origin == "" {
		return nil, fmt.Errorf("dnstest: invalid zone origin %q", z.Origin)
	}
	zi := &zoneIndex{origin: origin, nodes: map[string]*node{}, ents: map[string]bool{}}
	for _, rr := range z.Records {
		if rr == nil || rr.Header() == nil {
			return nil, fmt.Errorf("dnstest: zone %s: nil record", origin)
		}
		rr = dns.Copy(rr) // the caller may go on using z.Records
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		if !dns.IsSubDomain(origin, owner) {
			return nil, fmt.Errorf("dnstest: zone %s: out of zone record %s", origin, h.Name)
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if owner != origin {
				return nil, fmt.Errorf("dnstest: zone %s: SOA for %s is not at the apex", origin, h.Name)
			}
			if zi.soa != nil {
				return nil, fmt.Errorf("%w in zone %s", ErrTwoSOA, origin)
			}
			zi.soa = soa
		}
		n := zi.nodes[owner]
		if n == nil {
			n = &node{sets: map[uint16][]dns.RR{}}
			zi.nodes[owner] = n
		}
		if _, seen := n.sets[h.Rrtype]; !seen {
			n.order = append(n.order, h.Rrtype)
		}
		n.sets[h.Rrtype] = append(n.sets[h.Rrtype], rr)
	}
	if zi.soa == nil {
		return nil, fmt.Errorf("%w %s", ErrNoSOA, origin)
	}
	for owner := range zi.nodes {
		for _, a := range ancestors(owner, origin) {
			if _, has := zi.nodes[a]; !has {
				zi.ents[a] = true
			}
		}
	}
	return zi, nil
}

// ancestors lists the names strictly between name and origin, the closest
// to name first. name must be canonical and at or below origin.
func ancestors(name, origin string) []string {
	var out []string
	idx := dns.Split(name)
	for i := 1; i < len(idx); i++ {
		a := name[idx[i]:]
		if len(a) <= len(origin) {
			break
		}
		out = append(out, a)
	}
	return out
}

func (zi *zoneIndex) exists(name string) bool {
	_, ok := zi.nodes[name]
	return ok || zi.ents[name]
}

// findCut returns the highest zone cut at or above name (but below the
// apex): a name that owns NS records. Everything at or below it belongs to
// the delegated child (RFC 1034 §4.2.1), the NS records there are not
// authoritative and the addresses are only glue.
func (zi *zoneIndex) findCut(name string) string {
	path := ancestors(name, zi.origin)
	if len(name) > len(zi.origin) {
		path = append([]string{name}, path...)
	}
	for i := len(path) - 1; i >= 0; i-- { // from the apex down
		if n := zi.nodes[path[i]]; n != nil && len(n.sets[dns.TypeNS]) > 0 {
			return path[i]
		}
	}
	return ""
}

// apexNS returns copies of the NS set at the apex.
func (zi *zoneIndex) apexNS() []dns.RR {
	return copyRRs(zi.nodes[zi.origin].sets[dns.TypeNS], "")
}

// negativeSOA is the SOA for the authority section of a negative answer.
// Its TTL is the minimum of its own TTL and its MINIMUM field, which is what
// resolvers use as the negative caching TTL (RFC 2308 §3).
func (zi *zoneIndex) negativeSOA() dns.RR {
	soa := dns.Copy(zi.soa).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}

type resultKind int

const (
	resAnswer   resultKind = iota // records of the asked type
	resCNAME                      // a CNAME to follow (rrs[0])
	resNoData                     // the name exists, not with this type (RFC 2308 §2.2)
	resNXDomain                   // the name does not exist (RFC 2308 §2.1)
	resReferral                   // below a zone cut: rrs are the NS set at cut
)

type result struct {
	kind resultKind
	rrs  []dns.RR // copies, safe to modify
	cut  string   // for resReferral
}

// lookup answers one name within the zone, without following CNAMEs.
// qname is the name as asked (its case is kept in the answer owner names,
// as NSD's name compression does); qtype may be ANY.
func (zi *zoneIndex) lookup(qname string, qtype uint16) result {
	name := dns.CanonicalName(qname)
	// The parent side answers a DS query at the cut itself: DS records live
	// in the parent zone (RFC 4035 §3.1.4.1). Any other query at or below a
	// cut gets a referral.
	if cut := zi.findCut(name); cut != "" && (cut != name || qtype != dns.TypeDS) {
		return result{kind: resReferral, cut: cut, rrs: copyRRs(zi.nodes[cut].sets[dns.TypeNS], "")}
	}
	if n := zi.nodes[name]; n != nil {
		return n.lookup(qname, qtype, false)
	}
	if zi.ents[name] {
		return result{kind: resNoData}
	}
	// RFC 4592 §3.3.1: a wildcard at "*.<closest encloser>" answers for a
	// name that does not exist. The closest encloser is the longest existing
	// ancestor; the apex always exists.
	ce := zi.origin
	for _, a := range ancestors(name, zi.origin) {
		if zi.exists(a) {
			ce = a
			break
		}
	}
	wild := "*." + ce
	if ce == "." {
		wild = "*."
	}
	if n := zi.nodes[wild]; n != nil {
		return n.lookup(qname, qtype, true)
	}
	return result{kind: resNXDomain}
}

func (n *node) lookup(qname string, qtype uint16, wildcard bool) result {
	owner := ""
	if wildcard {
		owner = qname // RFC 4592 §4.3: the synthesised owner is the query name
	}
	rename := func(rrs []dns.RR) []dns.RR {
		out := copyRRs(rrs, owner)
		if !wildcard {
			// The owner equals the query name up to case: spell it as asked.
			for _, rr := range out {
				rr.Header().Name = qname
			}
		}
		return out
	}
	if qtype == dns.TypeANY {
		// One RRset, not all of them (RFC 8482 §4.2), and no CNAME chase:
		// the CNAME is an RRset like any other here (RFC 1034 §3.6.2).
		return result{kind: resAnswer, rrs: rename(n.sets[n.order[0]])}
	}
	if rrs := n.sets[qtype]; len(rrs) > 0 {
		return result{kind: resAnswer, rrs: rename(rrs)}
	}
	if c := n.sets[dns.TypeCNAME]; len(c) > 0 {
		return result{kind: resCNAME, rrs: rename(c[:1])}
	}
	return result{kind: resNoData}
}

// addresses returns copies of the A and AAAA records of target when target
// lies in this zone. Glue below a zone cut is included only when glue is
// true (for NS targets); other answers only use authoritative data.
func (zi *zoneIndex) addresses(target string, glue bool) []dns.RR {
	name := dns.CanonicalName(target)
	if !dns.IsSubDomain(zi.origin, name) {
		return nil
	}
	if !glue && zi.findCut(name) != "" {
		return nil
	}
	n := zi.nodes[name]
	if n == nil {
		return nil
	}
	out := copyRRs(n.sets[dns.TypeA], "")
	return append(out, copyRRs(n.sets[dns.TypeAAAA], "")...)
}

// additional performs the additional section processing of RFC 1034 §4.3.2
// step 6 (and RFC 2782 for SRV): addresses of the names an answer points to,
// taken from this zone only.
func (zi *zoneIndex) additional(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.NS:
			out = append(out, zi.addresses(rr.Ns, true)...)
		case *dns.MX:
			out = append(out, zi.addresses(rr.Mx, false)...)
		case *dns.SRV:
			out = append(out, zi.addresses(rr.Target, false)...)
		}
	}
	return out
}

// copyRRs deep-copies records, so responses never share memory with the
// index; owner, when not empty, replaces the owner name.
func copyRRs(rrs []dns.RR, owner string) []dns.RR {
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		c := dns.Copy(rr)
		if owner != "" {
			c.Header().Name = owner
		}
		out = append(out, c)
	}
	return out
}
