package spf

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// memZone is an in-memory Resolver for tests, with the openspf suite's
// semantics (see testdata/spf and the conformance README): names compare
// case-insensitively without the final dot and may be any string; an absent
// name is NXDOMAIN, a present one without the type NODATA; a TIMEOUT marker
// makes every type not listed before it time out; CNAMEs are followed with
// loop detection; a label over 63 octets is refused like the real client
// refuses it.
type memZone struct {
	names   map[string]*memNode
	queries atomic.Int64
}

type memNode struct {
	rrs map[uint16][]dns.RR
	// alias is set for a CNAME owner; target is "" for a CNAME to the root.
	alias  bool
	target string
	// timeout: only the types in answered are served, others time out.
	timeout  bool
	answered map[uint16]bool
	// hasTXT is set once a TXT entry (even "TXT: NONE") was seen, which
	// stops SPF records being served as TXT.
	hasTXT bool
}

func newMemZone() *memZone { return &memZone{names: map[string]*memNode{}} }

func canonName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func (z *memZone) node(owner string) *memNode {
	key := canonName(owner)
	n := z.names[key]
	if n == nil {
		n = &memNode{rrs: map[uint16][]dns.RR{}, answered: map[uint16]bool{}}
		z.names[key] = n
	}
	return n
}

// add adds one record; the type is answered unless a TIMEOUT came first.
func (z *memZone) add(owner string, rr dns.RR) {
	n := z.node(owner)
	t := rr.Header().Rrtype
	n.rrs[t] = append(n.rrs[t], rr)
	if !n.timeout {
		n.answered[t] = true
	}
	if t == dns.TypeTXT {
		n.hasTXT = true
	}
}

func (z *memZone) addCNAME(owner, target string) {
	n := z.node(owner)
	n.alias, n.target = true, canonName(target)
	if !n.timeout {
		n.answered[dns.TypeCNAME] = true
	}
}

func (z *memZone) setTimeout(owner string) { z.node(owner).timeout = true }

// finish serves SPF (type 99) records as TXT where the owner has no TXT
// entry of its own, as the suite's drivers do.
func (z *memZone) finish() {
	for _, n := range z.names {
		spf := n.rrs[dns.TypeSPF]
		if len(spf) == 0 || n.hasTXT {
			continue
		}
		for _, rr := range spf {
			s, ok := rr.(*dns.SPF)
			if !ok {
				continue
			}
			txt := &dns.TXT{Hdr: s.Hdr, Txt: s.Txt}
			txt.Hdr.Rrtype = dns.TypeTXT
			n.rrs[dns.TypeTXT] = append(n.rrs[dns.TypeTXT], txt)
		}
		n.answered[dns.TypeTXT] = n.answered[dns.TypeSPF]
	}
}

// Lookup implements Resolver.
func (z *memZone) Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error) {
	z.queries.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", resolver.ErrTimeout, err)
	}
	n := canonName(name)
	for _, l := range strings.Split(n, ".") {
		if len(l) > 63 {
			return nil, fmt.Errorf("%w: label of %d octets in %q", resolver.ErrBadName, len(l), name)
		}
	}
	ans := &resolver.Answer{Name: n + ".", Type: qtype}
	seen := map[string]bool{}
	for {
		node := z.names[n]
		if node == nil {
			if strings.HasPrefix(n, "error.") {
				ans.Outcome = resolver.OutcomeTimeout
				return ans, fmt.Errorf("%w: %s", resolver.ErrTimeout, n)
			}
			ans.Outcome, ans.Rcode = resolver.OutcomeNXDomain, dns.RcodeNameError
			return ans, nil
		}
		if node.timeout && !node.answered[qtype] && !(node.alias && node.answered[dns.TypeCNAME]) {
			ans.Outcome = resolver.OutcomeTimeout
			return ans, fmt.Errorf("%w: %s %s", resolver.ErrTimeout, dns.TypeToString[qtype], n)
		}
		if node.alias && qtype != dns.TypeCNAME {
			if seen[n] {
				ans.Outcome = resolver.OutcomeServFail
				return ans, fmt.Errorf("%w: %s", resolver.ErrCNAME, n)
			}
			seen[n] = true
			ans.CNAMEs = append(ans.CNAMEs, node.target+".")
			n = node.target
			continue
		}
		ans.Records = node.rrs[qtype]
		if len(ans.Records) == 0 {
			ans.Outcome = resolver.OutcomeNoData
		} else {
			ans.Outcome = resolver.OutcomeOK
		}
		return ans, nil
	}
}

// Record constructors. Names are kept as written (plus the final dot).

func hdr(owner string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(owner), Rrtype: t, Class: dns.ClassINET, Ttl: 300}
}

func rrA(owner, ip string) (dns.RR, error) {
	a := net.ParseIP(ip)
	if a == nil || a.To4() == nil {
		return nil, fmt.Errorf("bad A address %q", ip)
	}
	return &dns.A{Hdr: hdr(owner, dns.TypeA), A: a.To4()}, nil
}

func rrAAAA(owner, ip string) (dns.RR, error) {
	a := net.ParseIP(ip)
	if a == nil {
		return nil, fmt.Errorf("bad AAAA address %q", ip)
	}
	return &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA), AAAA: a.To16()}, nil
}

func rrMX(owner string, pref int, host string) dns.RR {
	return &dns.MX{Hdr: hdr(owner, dns.TypeMX), Preference: uint16(pref), Mx: dns.Fqdn(host)}
}

func rrPTR(owner, host string) dns.RR {
	return &dns.PTR{Hdr: hdr(owner, dns.TypePTR), Ptr: dns.Fqdn(host)}
}

// rrTXT builds a TXT (or SPF) record from raw byte strings the way the real
// client hands it over: packed to wire format and unpacked again by miekg,
// so bytes outside printable ASCII, '"' and '\' come back in presentation
// escapes (\DDD, \", \\). Strings over 255 bytes are split.
func rrTXT(owner string, t uint16, raw []string) dns.RR {
	var strs []string
	for _, s := range raw {
		for len(s) > 255 {
			strs = append(strs, s[:255])
			s = s[255:]
		}
		strs = append(strs, s)
	}
	esc := make([]string, len(strs))
	for i, s := range strs {
		esc[i] = strings.ReplaceAll(s, `\`, `\\`) // packTxtString reads '\' as an escape
	}
	var rr dns.RR
	if t == dns.TypeSPF {
		rr = &dns.SPF{Hdr: hdr(owner, t), Txt: esc}
	} else {
		rr = &dns.TXT{Hdr: hdr(owner, t), Txt: esc}
	}
	if len(strs) == 0 {
		return rr // no RDATA: miekg would unpack it as a bare header
	}
	buf := make([]byte, 65535)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return rr
	}
	out, _, err := dns.UnpackRR(buf[:off], 0)
	if err != nil {
		return rr
	}
	return out
}
