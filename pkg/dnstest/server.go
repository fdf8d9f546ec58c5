package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
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

// Fault makes the server misbehave for one name, optionally only for some
// query types. When several fields are set, Delay applies first, then Drop,
// then Rcode, then Truncate.
type Fault struct {
	Delay    time.Duration // answer after this long (other queries are not held up)
	Drop     bool          // never answer: the client sees a timeout
	Rcode    int           // answer with this rcode and no records; 0 = no rcode fault
	Truncate bool          // over UDP answer TC=1 with empty sections; over TCP answer normally
	Types    []uint16      // only for these query types; empty = every type
}

// Query is one entry of the query log.
type Query struct {
	Name      string // the question name, canonical (lower-case, absolute)
	Type      uint16
	Proto     string // "udp" or "tcp"
	RD        bool   // recursion desired, as sent
	DO        bool   // DNSSEC OK bit of the OPT record
	EDNS      bool   // the query carried an OPT record
	Rcode     int    // rcode of the reply (when Dropped, what it would have been)
	Answers   int    // records in the answer section of the reply
	Truncated bool   // the reply had TC=1
	Dropped   bool   // no reply was sent (Drop fault, or the server closed while delaying)
	At        time.Time
}

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
// when that is served too, because DS records belong to the parent side of
// the cut (RFC 4035 §3.1.4.1); NSD does the same.
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
		return zi
	}
	return best
}

// SetFault installs a fault for queries whose question name is name (case
// insensitive, trailing dot optional; names below it are not affected).
// Faults with different Types coexist; a fault whose Types list the query
// type wins over one with empty Types. Setting a fault with the same Types
// as an existing one replaces it.
func (s *Server) SetFault(name string, f Fault) {
	s.init()
	key := dns.CanonicalName(name)
	f.Types = slices.Clone(f.Types)
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.faults[key]
	for i := range list {
		if sameTypes(list[i].Types, f.Types) {
			list[i] = f
			return
		}
	}
	s.faults[key] = append(list, f)
}

func sameTypes(a, b []uint16) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// ClearFault removes the faults of one name.
func (s *Server) ClearFault(name string) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, dns.CanonicalName(name))
}

// ClearFaults removes every fault. The global delay of SetDelay stays.
func (s *Server) ClearFaults() {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// SetDelay delays every answer by d (added to any Fault.Delay), e.g. to
// give benchmarks a realistic round-trip time. 0 removes it.
func (s *Server) SetDelay(d time.Duration) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

func (s *Server) faultFor(name string, qtype uint16) (f Fault, delay time.Duration) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var catchAll *Fault
	for i, cand := range s.faults[name] {
		if len(cand.Types) == 0 {
			if catchAll == nil {
				catchAll = &s.faults[name][i]
			}
			continue
		}
		if slices.Contains(cand.Types, qtype) {
			return cand, s.delay
		}
	}
	if catchAll != nil {
		return *catchAll, s.delay
	}
	return Fault{}, s.delay
}

// Log returns a copy of the query log, in arrival order. The outcome fields
// of a query still being answered (a delayed one) are zero.
func (s *Server) Log() []Query {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	out := make([]Query, len(s.log))
	for i, q := range s.log {
		out[i] = *q
	}
	return out
}

// ResetLog empties the query log.
func (s *Server) ResetLog() {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.log = nil
}

// Count reports how many queries for name (case insensitive, trailing dot
// optional) and qtype arrived, over any transport.
func (s *Server) Count(name string, qtype uint16) int {
	name = dns.CanonicalName(name)
	s.logMu.Lock()
	defer s.logMu.Unlock()
	n := 0
	for _, q := range s.log {
		if q.Name == name && q.Type == qtype {
			n++
		}
	}
	return n
}

func (s *Server) logArrival(q *Query) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.log = append(s.log, q)
}

func (s *Server) logOutcome(q *Query, m *dns.Msg, dropped bool) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	q.Dropped = dropped
	if m != nil {
		q.Rcode = m.Rcode
		q.Answers = len(m.Answer)
		q.Truncated = m.Truncated
	}
}

// Start listens on addr over both UDP and TCP, on the same port, and
// returns once both listeners serve. addr must be a loopback address; with
// port 0 ("127.0.0.1:0") a port free for both transports is picked.
func (s *Server) Start(addr string) error {
	s.init()
	s.life.Lock()
	defer s.life.Unlock()
	switch {
	case s.closed:
		return errors.New("dnstest: server is closed")
	case s.started:
		return errors.New("dnstest: server already started")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	// This package exists for hermetic tests: never serve beyond loopback.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("dnstest: %q is not a loopback address", host)
	}
	pc, ln, err := listenPair(host, port)
	if err != nil {
		return err
	}

	udpUp, tcpUp := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 2)
	udp := &dns.Server{
		PacketConn:        pc,
		Handler:           s,
		UDPSize:           dns.MaxMsgSize, // read any query, however large
		MsgAcceptFunc:     acceptQueries,
		NotifyStartedFunc: func() { close(udpUp) },
	}
	tcp := &dns.Server{
		Listener:          ln,
		Handler:           s,
		MsgAcceptFunc:     acceptQueries,
		NotifyStartedFunc: func() { close(tcpUp) },
	}
	for _, srv := range []*dns.Server{udp, tcp} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			errc <- srv.ActivateAndServe()
		}()
	}
	for pending := 2; pending > 0; {
		select {
		case <-udpUp:
			udpUp, pending = nil, pending-1
		case <-tcpUp:
			tcpUp, pending = nil, pending-1
		case err := <-errc:
			// One side failed before serving: closing both sockets makes the
			// other one return too.
			pc.Close()
			ln.Close()
			s.wg.Wait()
			return fmt.Errorf("dnstest: serve %s: %w", addr, err)
		}
	}
	s.started = true
	s.servers = []*dns.Server{udp, tcp}
	s.addr = pc.LocalAddr().String()
	return nil
}

// listenPair binds UDP and TCP on the same host and port. For port 0 the
// kernel picks a free UDP port, which may be taken for TCP: retry a few
// times with another one.
func listenPair(host, port string) (net.PacketConn, net.Listener, error) {
	if port != "0" {
		addr := net.JoinHostPort(host, port)
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		return pc, ln, nil
	}
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", lastErr)
}

// acceptQueries replaces miekg's default filter, which answers FORMERR or
// NOTIMP itself: letting every query reach ServeDNS puts it in the query
// log. Responses (QR=1) are still ignored, so two servers cannot loop.
func acceptQueries(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// Addr returns the address the server listens on, e.g. "127.0.0.1:40123",
// or "" before Start.
func (s *Server) Addr() string {
	s.life.Lock()
	defer s.life.Unlock()
	return s.addr
}

// Close stops the listeners and waits until they and every query in flight
// are done; a delayed answer is abandoned. It may be called more than once,
// and on a server that never started.
func (s *Server) Close() error {
	s.init()
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.closing)
	if !s.started {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
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
	if r.Opcode != dns.OpcodeQuery {
		// We do no NOTIFY, UPDATE or IQUERY (RFC 1035 §4.1.1, RFC 3425).
		m.Rcode = dns.RcodeNotImplemented
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
		m.Rcode = dns.RcodeFormatError
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

	s.answer(m, question)

	if proto == "udp" {
		// RFC 1035 §4.2.1 and RFC 6891 §6.2.5: a UDP reply must fit the
		// requester's buffer, 512 octets without EDNS and at least 512
		// with it. Like NSD, we also never send more than our own
		// advertised size; Truncate drops what does not fit and sets TC.
		limit := dns.MinMsgSize
		if ropt != nil {
			limit = min(max(int(ropt.UDPSize()), dns.MinMsgSize), ednsSize)
		}
		m.Truncate(limit)
	}
	return m, delay
}

// reply starts the reply to r: same ID, opcode and question (spelt as the
// client spelt it), RD copied, RA never set since we do not recurse.
func reply(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	if len(r.Question) > 0 {
		m.Question = []dns.Question{r.Question[0]}
	}
	m.Compress = true
	return m
}

// answer fills m with the authoritative answer to q.
func (s *Server) answer(m *dns.Msg, q dns.Question) {
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused // NSD refuses classes it has no zone for
		return
	}
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		m.Rcode = dns.RcodeRefused // NSD without provide-xfr
		return
	}
	name := dns.CanonicalName(q.Name)
	zi := s.zoneFor(name, q.Qtype)
	if zi == nil {
		// NSD answers REFUSED, without AA, for names outside its zones.
		m.Rcode = dns.RcodeRefused
		return
	}
	m.Authoritative = true
	res := zi.lookup(q.Name, q.Qtype)
	visited := map[string]bool{name: true}
	for {
		switch res.kind {
		case resAnswer:
			m.Answer = append(m.Answer, res.rrs...)
			if q.Qtype != dns.TypeANY {
				m.Extra = appendNew(m.Extra, zi.additional(res.rrs)...)
			}
			return
		case resNoData:
			m.Ns = append(m.Ns, zi.negativeSOA()) // RFC 2308 §2.2
			return
		case resNXDomain:
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, zi.negativeSOA()) // RFC 2308 §2.1
			return
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
			return
		case resCNAME:
			// RFC 1034 §4.3.2 step 3a: answer with the CNAME and restart at
			// its target, in any zone we serve. The final rcode is that of
			// the end of the chain (RFC 6604 §2.1).
			cname := res.rrs[0].(*dns.CNAME)
			m.Answer = append(m.Answer, cname)
			target := dns.CanonicalName(cname.Target)
			if visited[target] || len(visited) > maxChain {
				return // a loop, or too long: stop with what we have
			}
			visited[target] = true
			next := s.zoneFor(target, q.Qtype)
			if next == nil {
				return // out of our zones: the resolver takes it from here
			}
			zi = next
			res = zi.lookup(cname.Target, q.Qtype)
		}
	}
}

// appendNew appends the records of add not already in dst.
func appendNew(dst []dns.RR, add ...dns.RR) []dns.RR {
	for _, rr := range add {
		if !slices.ContainsFunc(dst, func(d dns.RR) bool { return dns.IsDuplicate(d, rr) }) {
			dst = append(dst, rr)
		}
	}
	return dst
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
