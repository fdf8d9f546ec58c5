package dnstest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// ednsSize is the UDP payload size we advertise and the most we send
	// over UDP: 1232 octets avoids IP fragmentation on any path (DNS Flag
	// Day 2020) and is NSD's default (ipv4-edns-size, ipv6-edns-size).
	ednsSize = 1232
	// maxChain bounds how many CNAMEs one answer follows, so a loop or a
	// long chain cannot make an answer grow without bound.
	maxChain = 10
)

// Server is an authoritative DNS server for a set of zones. It is a
// dns.Handler, so it can also be called directly without any socket. The
// zero value serves nothing (every query is REFUSED) until zones are added;
// NewServer is the usual constructor.
type Server struct {
	once sync.Once

	mu     sync.RWMutex
	zones  map[string]*zoneIndex // by origin
	faults map[string][]Fault    // by canonical name
	delay  time.Duration
	// authenticated: names whose answers carry AD (authenticated.go)
	authenticated map[string]bool

	logMu sync.Mutex
	log   []*Query

	// lifecycle
	life    sync.Mutex
	started bool
	closed  bool
	closing chan struct{} // closed by Close: wakes delayed answers
	addr    string
	servers []*dns.Server
	wg      sync.WaitGroup
}

func (s *Server) init() {
	s.once.Do(func() {
		s.zones = map[string]*zoneIndex{}
		s.faults = map[string][]Fault{}
		s.closing = make(chan struct{})
	})
}

// NewServer returns a server for zones. It is not listening yet: call Start,
// or use it as a dns.Handler.
func NewServer(zones ...*Zone) (*Server, error) {
	s := &Server{}
	for _, z := range zones {
		if err := s.AddZone(z); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// AddZone adds a zone, also while the server runs. The records are copied.
// It fails when a zone with the same origin is already served, or when the
// zone does not have exactly one SOA at its apex.
func (s *Server) AddZone(z *Zone) error {
	s.init()
	zi, err := newZoneIndex(z)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.zones[zi.origin]; dup {
		return fmt.Errorf("dnstest: zone %s is already served", zi.origin)
	}
	s.zones[zi.origin] = zi
	return nil
}

// zoneFor picks the served zone whose origin is the longest suffix of name.
// A DS query for the apex of a served zone is answered from the parent zone
// when that is served too and delegates the name, because DS records belong
// to the parent side of the cut (RFC 4035 §3.1.4.1); NSD does the same.
func (s *Server) zoneFor(name string, qtype uint16) *zoneIndex {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *zoneIndex
	candidates := append([]string{name}, ancestors(name, ".")...)
	if name != "." {
		candidates = append(candidates, ".")
	}
	for _, c := range candidates {
		zi := s.zones[c]
		if zi == nil {
			continue
		}
		if best == nil {
			best = zi
			if qtype != dns.TypeDS || zi.origin != name || name == "." {
				return best
			}
			continue // look for the parent
		}
		if n := zi.nodes[name]; n != nil && len(n.sets[dns.TypeNS]) > 0 {
			return zi
		}
		return best
	}
	return best
}

// ServeDNS answers one query. It implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.init()
	if r == nil {
		return
	}
	proto := "udp"
	if ra := w.RemoteAddr(); ra != nil && (ra.Network() == "tcp" || ra.Network() == "tcp-tls") {
		proto = "tcp"
	}
	q := &Query{Proto: proto, RD: r.RecursionDesired, At: time.Now()}
	if len(r.Question) > 0 {
		q.Name = dns.CanonicalName(r.Question[0].Name)
		q.Type = r.Question[0].Qtype
	}
	if opt := r.IsEdns0(); opt != nil {
		q.EDNS, q.DO = true, opt.Do()
	}
	s.logArrival(q)

	m, delay := s.respond(r, proto)
	if m == nil {
		s.logOutcome(q, nil, true)
		return
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			s.logOutcome(q, m, true)
			return
		}
	}
	m = packable(r, m)
	s.logOutcome(q, m, false)
	_ = w.WriteMsg(m) // the client may be gone; nothing to do about it
}

// respond builds the reply to r, or returns nil when no reply must be sent.
// delay is how long to wait before sending it.
func (s *Server) respond(r *dns.Msg, proto string) (*dns.Msg, time.Duration) {
	if r.Response {
		return nil, 0 // never answer a response
	}
	m := reply(r)
	switch r.Opcode {
	case dns.OpcodeQuery:
	case dns.OpcodeNotify:
		// NSD refuses a NOTIFY from a peer it is not told to accept; we
		// accept none (RFC 1996 §3.10 lets a server ignore them).
		m.Question, m.Rcode = nil, dns.RcodeRefused
		return m, 0
	default:
		// No UPDATE, IQUERY or STATUS (RFC 1035 §4.1.1, RFC 3425). Like
		// NSD, error replies carry no question.
		m.Question, m.Rcode = nil, dns.RcodeNotImplemented
		return m, 0
	}
	opts := 0
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opts++
		}
	}
	if len(r.Question) != 1 || opts > 1 {
		// RFC 6891 §6.1.1: more than one OPT is a FORMERR; so is anything
		// but exactly one question, which is all that DNS servers support.
		// NSD replies with a bare header (and RD cleared for several
		// questions).
		m.Question, m.Rcode = nil, dns.RcodeFormatError
		m.RecursionDesired = m.RecursionDesired && len(r.Question) < 2
		return m, 0
	}
	ropt := r.IsEdns0()
	if ropt != nil {
		opt := new(dns.OPT)
		opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
		opt.SetUDPSize(ednsSize)
		opt.SetDo(ropt.Do()) // an echo only: we do not sign (RFC 3225 §3)
		m.Extra = append(m.Extra, opt)
		if ropt.Version() != 0 {
			// RFC 6891 §6.1.3: unknown version => BADVERS, no data.
			m.Rcode = dns.RcodeBadVers
			return m, 0
		}
	}

	question := r.Question[0]
	name := dns.CanonicalName(question.Name)
	fault, delay := s.faultFor(name, question.Qtype)
	delay += fault.Delay
	switch {
	case fault.Drop:
		return nil, 0
	case fault.Rcode != 0:
		m.Rcode = fault.Rcode & 0xFFF
		if m.Rcode > 0xF && ropt == nil {
			// An extended rcode needs an OPT record to travel in.
			opt := new(dns.OPT)
			opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
			opt.SetUDPSize(ednsSize)
			m.Extra = append(m.Extra, opt)
		}
		return m, delay
	case fault.Truncate && proto == "udp":
		m.Truncated = true
		return m, delay
	}

	if question.Qtype == dns.TypeAXFR && proto == "udp" {
		m.Rcode = dns.RcodeNotImplemented // AXFR needs TCP; NSD says NOTIMP
		return m, delay
	}
	optionalNS := s.answer(m, question)
	if question.Qclass == dns.ClassANY && m.Rcode == dns.RcodeSuccess {
		// A server cannot know that it holds every class, so answers to
		// QCLASS=ANY are not authoritative (RFC 1035 §3.7.1 implies it;
		// NSD does it), and NSD adds nothing to them.
		m.Authoritative = false
		m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype != dns.TypeOPT })
		if optionalNS {
			m.Ns, optionalNS = nil, false
		}
	}
	// NSD writes the additional section as all A RRsets, then all AAAA,
	// then the rest; the order matters when it does not all fit.
	slices.SortStableFunc(m.Extra, func(a, b dns.RR) int { return extraRank(a) - extraRank(b) })

	if proto == "udp" {
		// RFC 1035 §4.2.1 and RFC 6891 §6.2.5: a UDP reply must fit the
		// requester's buffer, 512 octets without EDNS and at least 512
		// with it. Like NSD, we also never send more than our own
		// advertised size.
		limit := dns.MinMsgSize
		if ropt != nil {
			limit = min(max(int(ropt.UDPSize()), dns.MinMsgSize), ednsSize)
		}
		fitUDP(m, limit, optionalNS)
	}
	s.markAuthenticated(r, m)
	return m, delay
}

func extraRank(rr dns.RR) int {
	switch rr.Header().Rrtype {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypeOPT:
		return 3
	}
	return 2
}

// fitUDP makes m fit in limit octets the way NSD does, RRset by RRset,
// section by section. RFC 2181 §9: TC means that required data did not
// fit. The answer, and the authority of negative answers and referrals, are
// required: the first of their RRsets that does not fit is left out with
// all that follows, and TC is set. The authority NS set of a positive
// answer (optionalNS) and the additional section are optional: an RRset
// that does not fit is left out without TC, and the next sections are not
// tried.
func fitUDP(m *dns.Msg, limit int, optionalNS bool) {
	if m.Len() <= limit {
		return
	}
	answer, ns, extra := m.Answer, m.Ns, m.Extra
	var opt []dns.RR
	extra = slices.DeleteFunc(slices.Clone(extra), func(rr dns.RR) bool {
		if rr.Header().Rrtype == dns.TypeOPT {
			opt = append(opt, rr)
			return true
		}
		return false
	})
	m.Answer, m.Ns, m.Extra = nil, nil, opt

	// tryAdd appends one RRset to a section, or leaves the section as it
	// was when the message would then exceed limit.
	tryAdd := func(section *[]dns.RR, rrset []dns.RR) bool {
		before := len(*section)
		*section = append(*section, rrset...)
		if m.Len() <= limit {
			return true
		}
		*section = (*section)[:before]
		return false
	}
	required := func(section *[]dns.RR, rrs []dns.RR) bool {
		for _, set := range rrsets(rrs) {
			if !tryAdd(section, set) {
				m.Truncated = true
				return false
			}
		}
		return true
	}
	if !required(&m.Answer, answer) {
		return
	}
	optional := [][]dns.RR{nil, nil, nil, nil} // authority NS, A, AAAA, other
	if optionalNS {
		optional[0] = ns
	} else if !required(&m.Ns, ns) {
		return
	}
	for _, rr := range extra {
		optional[1+min(extraRank(rr), 2)] = append(optional[1+min(extraRank(rr), 2)], rr)
	}
	for i, rrs := range optional {
		section := &m.Extra
		if i == 0 {
			section = &m.Ns
		}
		full := false
		for _, set := range rrsets(rrs) {
			if !tryAdd(section, set) {
				full = true
			}
		}
		if full {
			break
		}
	}
	// Keep OPT last, where it was.
	slices.SortStableFunc(m.Extra, func(a, b dns.RR) int { return extraRank(a) - extraRank(b) })
}

// rrsets splits a section into runs of records with the same owner and type.
func rrsets(rrs []dns.RR) [][]dns.RR {
	var out [][]dns.RR
	start := 0
	for i := 1; i <= len(rrs); i++ {
		if i == len(rrs) || !sameRRset(rrs[i], rrs[start]) {
			out = append(out, rrs[start:i])
			start = i
		}
	}
	return out
}

func sameRRset(a, b dns.RR) bool {
	return a.Header().Rrtype == b.Header().Rrtype && strings.EqualFold(a.Header().Name, b.Header().Name)
}

func hasApexNS(rrs []dns.RR, origin string) bool {
	return slices.ContainsFunc(rrs, func(rr dns.RR) bool {
		return rr.Header().Rrtype == dns.TypeNS && dns.CanonicalName(rr.Header().Name) == origin
	})
}

// reply starts the reply to r: same ID, opcode and question (spelt as the
// client spelt it), RD copied, RA never set since we do not recurse. CD is
// not copied: RFC 4035 §3.1.6 asks for it, but NSD leaves it clear and we
// follow NSD.
func reply(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	if len(r.Question) > 0 {
		m.Question = []dns.Question{r.Question[0]}
	}
	m.Compress = true
	return m
}

// answer fills m with the authoritative answer to q. optionalNS reports
// that the authority section holds the optional apex NS set of a positive
// answer, which fitUDP may drop without setting TC.
func (s *Server) answer(m *dns.Msg, q dns.Question) (optionalNS bool) {
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused // NSD refuses classes it has no zone for
		return false
	}
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		m.Rcode = dns.RcodeRefused // NSD without provide-xfr
		return false
	}
	name := dns.CanonicalName(q.Name)
	zi := s.zoneFor(name, q.Qtype)
	if zi == nil {
		// NSD answers REFUSED, without AA, for names outside its zones.
		m.Rcode = dns.RcodeRefused
		return false
	}
	m.Authoritative = true
	res := zi.lookup(q.Name, q.Qtype)
	visited := map[string]bool{name: true}
	for {
		switch res.kind {
		case resAnswer:
			m.Answer = append(m.Answer, res.rrs...)
			m.Extra = appendNew(m.Extra, zi.additional(res.rrs)...)
			if q.Qtype == dns.TypeANY {
				// RFC 8482 §4.2: answer ANY with one RRset, here the first
				// in file order, without the authority NS set; NSD does
				// exactly this.
				return false
			}
			// NSD puts the apex NS set of the answering zone in the
			// authority section of positive answers, with its addresses in
			// the additional section, unless the answer is that NS set or
			// a DS set (which lives at a cut). These are optional data:
			// fitUDP drops them before truncating.
			if q.Qtype != dns.TypeDS && !hasApexNS(res.rrs, zi.origin) {
				ns := zi.apexNS()
				m.Ns = append(m.Ns, ns...)
				m.Extra = appendNew(m.Extra, zi.additional(ns)...)
				optionalNS = true
			}
			// An address already in the answer is not repeated.
			inAnswer := make(map[string]bool, len(m.Answer))
			for _, rr := range m.Answer {
				inAnswer[rrKey(rr)] = true
			}
			m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool { return inAnswer[rrKey(rr)] })
			return optionalNS
		case resNoData:
			m.Ns = append(m.Ns, zi.negativeSOA()) // RFC 2308 §2.2
			return false
		case resNXDomain:
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, zi.negativeSOA()) // RFC 2308 §2.1
			return false
		case resReferral:
			// RFC 1034 §4.3.2 step 3b: the NS set of the cut in authority,
			// glue in additional, and no AA since we are not authoritative
			// for the child. Reached later in a CNAME chain, the AA of the
			// first answer stays, as in NSD.
			if len(m.Answer) == 0 {
				m.Authoritative = false
			}
			m.Ns = append(m.Ns, res.rrs...)
			m.Extra = appendNew(m.Extra, zi.additional(res.rrs)...)
			return false
		case resCNAME:
			// RFC 1034 §4.3.2 step 3a: answer with the CNAME and restart at
			// its target, in any zone we serve. The final rcode is that of
			// the end of the chain (RFC 6604 §2.1).
			cname := res.rrs[0].(*dns.CNAME)
			m.Answer = append(m.Answer, cname)
			target := dns.CanonicalName(cname.Target)
			if visited[target] || len(visited) > maxChain {
				return false // a loop, or too long: stop with what we have
			}
			visited[target] = true
			next := s.zoneFor(target, q.Qtype)
			if next == nil {
				return false // out of our zones: the resolver takes it from here
			}
			zi = next
			res = zi.lookup(cname.Target, q.Qtype)
		}
	}
}

// appendNew appends the records of add not already in dst. It uses a map,
// not pairwise comparison, so a zone with thousands of MX records cannot
// make one answer quadratic.
func appendNew(dst []dns.RR, add ...dns.RR) []dns.RR {
	seen := make(map[string]bool, len(dst)+len(add))
	for _, rr := range dst {
		seen[rrKey(rr)] = true
	}
	for _, rr := range add {
		if k := rrKey(rr); !seen[k] {
			seen[k] = true
			dst = append(dst, rr)
		}
	}
	return dst
}

// rrKey identifies a record by owner (case-insensitively), type and data.
func rrKey(rr dns.RR) string {
	h := rr.Header()
	return dns.CanonicalName(h.Name) + " " + strconv.Itoa(int(h.Rrtype)) + " " + strings.TrimPrefix(rr.String(), h.String())
}

// packable returns m, or a SERVFAIL if m cannot be sent: zone data the
// wire format cannot carry, or a TCP answer above 65535 octets.
func packable(r, m *dns.Msg) *dns.Msg {
	buf, err := m.Pack()
	if err == nil && len(buf) <= dns.MaxMsgSize {
		return m
	}
	fail := reply(r)
	fail.Rcode = dns.RcodeServerFailure
	if opt := m.IsEdns0(); opt != nil {
		o := new(dns.OPT)
		o.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
		o.SetUDPSize(opt.UDPSize())
		o.SetDo(opt.Do())
		fail.Extra = []dns.RR{o}
	}
	return fail
}
