package policy_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/testpki"
	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/policy"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// world is the test DNS (testdata/zones on 127.0.0.1) and a client for it.
type world struct {
	dns *dnstest.Server
	c   *resolver.Client
}

func startWorld(t *testing.T) *world {
	t.Helper()
	srv := dnstest.MustStart(t, dnstest.MustLoadZoneDir(t, "testdata/zones")...)
	return &world{dns: srv, c: newClient(t, srv)}
}

// newClient is a fresh client (an empty cache) on the world's server.
func newClient(t *testing.T, srv *dnstest.Server) *resolver.Client {
	t.Helper()
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, AttemptTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	return c
}

func (w *world) analyze(t *testing.T, domain string, o policy.Options) *policy.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := policy.Analyze(ctx, w.c, domain, o)
	rep := report.New(domain, o.Mode)
	rep.Add(res.Findings...)
	require.NoError(t, rep.Validate())
	return res
}

// statuses maps finding ID to the statuses it was reported with, in order.
func statuses(fs []report.Finding) map[string][]report.Status {
	out := map[string][]report.Status{}
	for _, f := range fs {
		out[f.ID] = append(out[f.ID], f.Status)
	}
	return out
}

func byID(fs []report.Finding, id string) []report.Finding {
	var out []report.Finding
	for _, f := range fs {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func one(t *testing.T, fs []report.Finding, id string) report.Finding {
	t.Helper()
	got := byID(fs, id)
	require.Len(t, got, 1, "findings %s: %+v", id, got)
	return got[0]
}

// pki is a test CA whose pool stands in for the system roots.
type pki struct {
	ca *testpki.CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := testpki.NewCA("mfcheck policy test CA")
	require.NoError(t, err)
	return &pki{ca: ca}
}

func (p *pki) leaf(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	l, err := p.ca.Leaf(testpki.LeafOptions{DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)})
	require.NoError(t, err)
	return l.TLSCertificate(true)
}

// policyServer serves h over HTTPS on 127.0.0.1 with cert and returns the
// port.
func policyServer(t *testing.T, cert tls.Certificate, h http.Handler) int {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Handshake failures are what some tests provoke; keep them out of the log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return port(t, srv.Listener.Addr())
}

func port(t *testing.T, a net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// servePolicy answers the well-known path with body as text/plain, and
// 404 elsewhere.
func servePolicy(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(body))
	})
}

// loopbackOnly is a Dial for Options that refuses anything but loopback,
// so a test that would reach the network fails instead.
func loopbackOnly(t *testing.T) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("dial to non-loopback address %s", address)
			return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError("not loopback")}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
}
