package smtpprobe

import (
	"net/netip"
	"strconv"
)

// Role is why an endpoint is probed; it sets how severe a missing STARTTLS
// is.
type Role string

const (
	// RoleMX is an inbound MX host. Without STARTTLS mail still flows (SMTP
	// falls back to plaintext, RFC 3207 §4), so a missing STARTTLS warns.
	RoleMX Role = "mx"
	// RoleSmartHost is where a connector relays outbound mail (the gateway's
	// smart host for Exchange Online). Such connectors are usually set to
	// "always use TLS", so a missing STARTTLS stops mail: it fails.
	RoleSmartHost Role = "smart-host"
)

// Target is one SMTP endpoint: one address of a host.
type Target struct {
	// Host is the name sent as SNI and checked against the certificate; it
	// may be empty for a target known only by its address.
	Host string     `json:"host,omitempty"`
	Addr netip.Addr `json:"address"`
	// Port defaults to 25.
	Port int  `json:"port,omitempty"`
	Role Role `json:"role,omitempty"`
	// ImplicitTLS starts TLS before the greeting, as on port 465
	// (RFC 8314 §3.3), instead of STARTTLS.
	ImplicitTLS bool `json:"implicit_tls,omitempty"`
}

// port returns the port to dial.
func (t Target) port() int {
	if t.Port == 0 {
		return 25
	}
	return t.Port
}

// address is host:port for net.Dial.
func (t Target) address() string {
	return netip.AddrPortFrom(t.Addr, uint16(t.port())).String()
}

// Subject names the target in findings: "mx.example [192.0.2.1]",
// "mx.example [2001:db8::1]:2525", or for an address-only target
// "192.0.2.1", "[2001:db8::1]:2525". The port is shown only when it is not
// 25. It is the same form report.TLSEndpoint.Endpoint uses, so table rows
// and findings match.
func (t Target) Subject() string {
	a := t.Addr.String()
	if t.Host == "" {
		if t.port() == 25 {
			return a
		}
		return t.address()
	}
	s := t.Host + " [" + a + "]"
	if t.port() != 25 {
		s += ":" + strconv.Itoa(t.port())
	}
	return s
}
