package dnstest

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// startTestdata serves the zones of testdata/ (example.test, other.test).
func startTestdata(t *testing.T, extra ...*Zone) *Server {
	t.Helper()
	zones := MustLoadZoneDir(t, "testdata")
	return MustStart(t, append(zones, extra...)...)
}

// query builds a query; edns > 0 adds an OPT record with that UDP size.
func query(name string, qtype uint16, edns uint16, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, do)
	}
	return m
}

// exchange sends m to srv over proto and fails the test on a transport error.
func exchange(t *testing.T, srv *Server, proto string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, srv.Addr())
	require.NoError(t, err)
	require.NotNil(t, r)
	return r
}

// short renders a record as "owner TYPE rdata", without TTL and class, for
// readable table expectations.
func short(rr dns.RR) string {
	h := rr.Header()
	rdata := strings.TrimSpace(strings.TrimPrefix(rr.String(), h.String()))
	return h.Name + " " + dns.Type(h.Rrtype).String() + " " + rdata
}

func shorts(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, short(rr))
	}
	return out
}

// fakeWriter is a dns.ResponseWriter that keeps what is written, so the
// handler can be exercised without sockets.
type fakeWriter struct {
	proto string
	msgs  []*dns.Msg
	wire  [][]byte
}

func (w *fakeWriter) LocalAddr() net.Addr {
	if w.proto == "tcp" {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.proto == "tcp" {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}

func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	buf, err := m.Pack()
	if err != nil {
		return err
	}
	w.msgs = append(w.msgs, m)
	w.wire = append(w.wire, buf)
	return nil
}

func (w *fakeWriter) Write(b []byte) (int, error) {
	w.wire = append(w.wire, b)
	return len(b), nil
}

func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}
