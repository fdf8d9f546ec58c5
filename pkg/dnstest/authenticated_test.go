package dnstest

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
)

func TestAuthenticated(t *testing.T) {
	srv := startTestdata(t)
	ask := func(name string, qtype uint16, adBit, do bool) *dns.Msg {
		m := query(name, qtype, 1232, do)
		m.AuthenticatedData = adBit
		return exchange(t, srv, "udp", m)
	}

	// Off by default: an authoritative server does not validate.
	assert.False(t, ask("www.example.test.", dns.TypeA, true, true).AuthenticatedData)

	srv.SetAuthenticated("example.test", true)
	srv.SetAuthenticated("mail.example.test.", false)
	srv.SetFault("fail.example.test", Fault{Rcode: dns.RcodeServerFailure})

	r := ask("www.example.test.", dns.TypeA, true, false)
	assert.True(t, r.AuthenticatedData, "below the marked name, AD asked for")
	assert.True(t, ask("www.example.test.", dns.TypeA, false, true).AuthenticatedData, "DO asks for it too")
	assert.False(t, ask("www.example.test.", dns.TypeA, false, false).AuthenticatedData, "neither AD nor DO: RFC 6840 §5.7")
	assert.True(t, ask("example.test.", dns.TypeMX, true, false).AuthenticatedData, "the name itself")

	r = ask("nope.example.test.", dns.TypeA, true, false)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
	assert.True(t, r.AuthenticatedData, "an authenticated denial of existence")

	assert.False(t, ask("mail.example.test.", dns.TypeA, true, false).AuthenticatedData, "the more specific setting wins")
	assert.False(t, ask("fail.example.test.", dns.TypeA, true, false).AuthenticatedData, "SERVFAIL never carries AD")
	assert.False(t, ask("www.other.test.", dns.TypeA, true, false).AuthenticatedData, "another zone")

	// Over TCP the same.
	m := query("www.example.test.", dns.TypeA, 1232, false)
	m.AuthenticatedData = true
	assert.True(t, exchange(t, srv, "tcp", m).AuthenticatedData)

	srv.ClearAuthenticated()
	assert.False(t, ask("www.example.test.", dns.TypeA, true, true).AuthenticatedData)
}
