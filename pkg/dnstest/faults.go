package dnstest

import (
	"slices"
	"time"

	"github.com/miekg/dns"
)

// Fault makes the server misbehave for one name, optionally only for some
// query types. Drop wins over everything; otherwise the reply (the Rcode
// if set, else the Truncate one over UDP, else the normal answer) is sent
// after Delay.
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
	Rcode     int    // rcode of the reply; 0 when a Drop fault ate the query
	Answers   int    // records in the answer section of the reply
	Truncated bool   // the reply had TC=1
	Dropped   bool   // no reply was sent (Drop fault, or the server closed while delaying)
	At        time.Time
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
