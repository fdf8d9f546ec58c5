package resolver

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Outcome classifies a DNS answer the way a mail engineer needs it, keeping
// apart what net.Resolver folds together.
type Outcome string

const (
	// OutcomeOK: the name has records of the asked type.
	OutcomeOK Outcome = "ok"
	// OutcomeNXDomain: the name does not exist (RCODE 3, RFC 1035 §4.1.1).
	OutcomeNXDomain Outcome = "nxdomain"
	// OutcomeNoData: the name exists but has no records of the asked type
	// (NOERROR with an empty answer, RFC 2308 §2.2).
	OutcomeNoData Outcome = "nodata"
	// OutcomeServFail, OutcomeRefused, OutcomeTimeout and OutcomeNetError mean
	// the question could not be answered: "could not check", never "absent".
	OutcomeServFail Outcome = "servfail"
	OutcomeRefused  Outcome = "refused"
	OutcomeTimeout  Outcome = "timeout"
	OutcomeNetError Outcome = "error"
)

// Sentinel error classes. Lookup wraps one of them with %w, so callers test
// with errors.Is and never by string.
var (
	ErrServFail = errors.New("resolver: SERVFAIL")
	ErrRefused  = errors.New("resolver: REFUSED")
	ErrTimeout  = errors.New("resolver: timeout")
	ErrNetwork  = errors.New("resolver: network error")
	ErrBadName  = errors.New("resolver: invalid domain name")
	ErrCNAME    = errors.New("resolver: CNAME chain too long or looping")
)

// Answer is the result of one question (name, type), after following CNAMEs.
type Answer struct {
	// Name is the absolute, lower-case, ASCII (A-label) name that was asked.
	Name string
	Type uint16
	// Outcome is the classification; for a name reached through a CNAME chain
	// it describes the end of the chain.
	Outcome Outcome
	Rcode   int
	// Records holds the answer records of the asked type (CNAMEs excluded).
	Records []dns.RR
	// CNAMEs is the alias chain followed from Name, in order, each the target
	// of the previous one (empty when Name is not an alias).
	CNAMEs []string
	// TTL is the smallest TTL among Records and the CNAMEs followed; for
	// NXDOMAIN/NODATA, the negative-caching TTL from the SOA (RFC 2308 §5).
	TTL uint32
	// AD is the Authenticated Data bit of the response (RFC 4035 §3.2.3).
	AD bool
	// AA is the Authoritative Answer bit: set when the server is authoritative
	// for the name (meaningful for direct queries to a zone's servers).
	AA bool
	// Authority holds the authority section (SOA on negative answers, NS on
	// referrals) of the last response.
	Authority []dns.RR
	// Server is the server that gave the (last) answer, host:port.
	Server string
	RTT    time.Duration

	// needsChase marks a chain whose end the server did not resolve.
	needsChase bool
}

// Exists reports whether the name exists (it has records of some type).
func (a *Answer) Exists() bool {
	return a.Outcome == OutcomeOK || a.Outcome == OutcomeNoData
}

// RRAddr returns the address an A or AAAA record holds (an A record's as a
// 4-byte IPv4 address, never IPv4-mapped IPv6); ok is false for other types.
func RRAddr(rr dns.RR) (addr netip.Addr, ok bool) {
	var ip net.IP
	switch r := rr.(type) {
	case *dns.A:
		ip = r.A.To4()
	case *dns.AAAA:
		ip = r.AAAA.To16()
	default:
		return netip.Addr{}, false
	}
	return netip.AddrFromSlice(ip)
}

// Addrs returns the addresses of the answer's A and AAAA records, in order.
func (a *Answer) Addrs() []netip.Addr {
	if a == nil {
		return nil
	}
	var out []netip.Addr
	for _, rr := range a.Records {
		if ip, ok := RRAddr(rr); ok {
			out = append(out, ip)
		}
	}
	return out
}
