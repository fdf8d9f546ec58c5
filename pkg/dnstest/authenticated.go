package dnstest

import (
	"github.com/miekg/dns"
)

// SetAuthenticated makes the server answer for name, and every name below it,
// with the Authenticated Data bit set to ad (RFC 4035 §3.2.3), as a
// validating resolver would for a signed zone whose signatures it checked.
//
// An authoritative server never sets AD itself, and this one does not sign:
// the option exists so that checks which must trust only authenticated data
// (DANE TLSA records, RFC 7672 §2.2) can be tested with and without it. The
// most specific name wins, so a test can mark a zone authenticated and one
// name below it not (SetAuthenticated("bogus.example.test", false)).
//
// As in a real validating resolver, AD is set only on NOERROR and NXDOMAIN
// replies (a fault's rcode never carries it) and only when the query asked
// for it with the AD or DO bit (RFC 6840 §5.7, §5.8). ClearAuthenticated
// removes every setting.
func (s *Server) SetAuthenticated(name string, ad bool) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authenticated == nil {
		s.authenticated = map[string]bool{}
	}
	s.authenticated[dns.CanonicalName(name)] = ad
}

// ClearAuthenticated removes every SetAuthenticated setting: no reply
// carries AD afterwards.
func (s *Server) ClearAuthenticated() {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.authenticated)
}

// markAuthenticated sets AD on the reply m to query r when the question name
// is at or below a name marked by SetAuthenticated.
func (s *Server) markAuthenticated(r, m *dns.Msg) {
	if len(r.Question) != 1 || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return
	}
	if opt := r.IsEdns0(); !r.AuthenticatedData && (opt == nil || !opt.Do()) {
		return
	}
	name := dns.CanonicalName(r.Question[0].Name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.authenticated) == 0 {
		return
	}
	for _, n := range append([]string{name}, ancestors(name, ".")...) {
		if ad, ok := s.authenticated[n]; ok {
			m.AuthenticatedData = ad
			return
		}
	}
	if ad, ok := s.authenticated["."]; ok && name != "." {
		m.AuthenticatedData = ad
	}
}
