package smtpprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/testpki"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// testHost is the name every test certificate is issued for.
const testHost = "mx.mfcheck.test"

// pki is the test PKI: a root, an intermediate, and a leaf for testHost
// issued by the intermediate.
type pki struct {
	root, inter *testpki.CA
	leaf        *testpki.Leaf
}

var (
	pkiOnce sync.Once
	pkiVal  *pki
	pkiErr  error
)

func testPKI(t testing.TB) *pki {
	t.Helper()
	pkiOnce.Do(func() {
		p := &pki{}
		if p.root, pkiErr = testpki.NewCA("mfcheck Test Root"); pkiErr != nil {
			return
		}
		if p.inter, pkiErr = p.root.Intermediate("mfcheck Test Intermediate"); pkiErr != nil {
			return
		}
		if p.leaf, pkiErr = p.inter.Leaf(testpki.LeafOptions{DNSNames: []string{testHost}}); pkiErr != nil {
			return
		}
		pkiVal = p
	})
	require.NoError(t, pkiErr)
	return pkiVal
}

// opts are Options for tests: short timeouts, the test root, loopback only.
func (p *pki) opts() Options {
	return Options{
		Roots: p.root.Pool(),
		Timeouts: Timeouts{
			Connect: 2 * time.Second, Banner: 2 * time.Second,
			Command: 2 * time.Second, Handshake: 2 * time.Second,
		},
		Dial: loopbackDial,
	}
}

// loopbackDial refuses anything but loopback: tests never reach further.
func loopbackDial(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, errors.New("test dialer: only loopback addresses")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// serverConfig is the TLS setup of a test server.
func serverConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: certs, SessionTicketsDisabled: true}
}

type rejectSession struct{}

func (rejectSession) Reset()        {}
func (rejectSession) Logout() error { return nil }
func (rejectSession) Mail(string, *smtp.MailOptions) error {
	return &smtp.SMTPError{Code: 550, Message: "test server accepts no mail"}
}
func (rejectSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (rejectSession) Data(io.Reader) error                 { return nil }

// smtpServer describes an in-process go-smtp server.
type smtpServer struct {
	TLS      *tls.Config // nil: no STARTTLS
	Implicit bool        // TLS from the first byte (port 465 style)
	IP       string      // listen address, 127.0.0.1 when empty
	// Wrap wraps each accepted connection (to delay or count).
	Wrap func(net.Conn) net.Conn
}

// start serves on IP:0 until the test ends and returns the target.
func (s smtpServer) start(t testing.TB) Target {
	t.Helper()
	ip := s.IP
	if ip == "" {
		ip = "127.0.0.1"
	}
	l, err := net.Listen("tcp", ip+":0")
	require.NoError(t, err)
	if s.Wrap != nil {
		l = wrapListener{l, s.Wrap}
	}
	return serveSMTP(t, l, func() smtp.Session { return rejectSession{} }, s.TLS, s.Implicit)
}

// serveSMTP runs a go-smtp server on l until the test ends, with STARTTLS
// (or implicit TLS) when cfg is set, and returns the target for it.
func serveSMTP(t testing.TB, l net.Listener, session func() smtp.Session, cfg *tls.Config, implicit bool) Target {
	t.Helper()
	if implicit {
		l = tls.NewListener(l, cfg)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return session(), nil }))
	srv.Domain = testHost
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if !implicit {
		srv.TLSConfig = cfg
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	ap := netip.MustParseAddrPort(l.Addr().String())
	return Target{Host: testHost, Addr: ap.Addr(), Port: int(ap.Port()), Role: RoleMX, ImplicitTLS: implicit}
}

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (w wrapListener) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return w.wrap(c), nil
}

// delayConn holds back every reply by d: the first write after the
// server read something (and the greeting) waits, the other lines of the
// same reply go out at once. It is a server d away, whatever the number
// of lines or TLS records a reply takes.
type delayConn struct {
	net.Conn
	d       time.Duration
	pending atomic.Bool // a reply is due: the next write waits
}

func newDelayConn(c net.Conn, d time.Duration) net.Conn {
	dc := &delayConn{Conn: c, d: d}
	dc.pending.Store(true) // the greeting
	return dc
}

func (c *delayConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.pending.Store(true)
	}
	return n, err
}

func (c *delayConn) Write(p []byte) (int, error) {
	if c.pending.Swap(false) {
		time.Sleep(c.d)
	}
	return c.Conn.Write(p)
}

// script is a hand-written server for misbehaviour go-smtp will not
// produce. The handler gets each connection with a line reader; the
// connection is closed when it returns or the test ends.
func script(t testing.TB, handler func(c net.Conn, r *bufio.Reader)) Target {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				handler(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	ap := netip.MustParseAddrPort(l.Addr().String())
	return Target{Host: testHost, Addr: ap.Addr(), Port: int(ap.Port()), Role: RoleMX}
}

func say(c net.Conn, lines ...string) {
	for _, l := range lines {
		_, _ = io.WriteString(c, l+"\r\n")
	}
}

// readCmd reads one command line, "" on error.
func readCmd(r *bufio.Reader) string {
	l, err := r.ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimRight(l, "\r\n")
}

// byID indexes findings, failing on duplicates, and checks that every
// finding would pass the report's JSON contract.
func byID(t *testing.T, fs []report.Finding) map[string]report.Finding {
	t.Helper()
	rep := report.New("example.test", "test")
	rep.Add(fs...)
	require.NoError(t, rep.Validate())
	m := map[string]report.Finding{}
	for _, f := range fs {
		_, dup := m[f.ID]
		require.False(t, dup, "duplicate finding %s", f.ID)
		m[f.ID] = f
	}
	return m
}

// within asserts that the probe returned within the bound.
func within(t *testing.T, start time.Time, bound time.Duration) {
	t.Helper()
	assert.Less(t, time.Since(start), bound, "the probe must return within its deadline")
}

func ids(fs []report.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID+"="+string(f.Status))
	}
	return out
}

// certPool is a pool of the given certificates.
func certPool(cs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}
