package smtpprobe

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Test addresses: recipients at contoso.test, the sender elsewhere.
const (
	testFrom = "probe@sender.test"
	testTo   = "alice@contoso.test"
	testHelo = "client.mfcheck.test"
)

// received is one message a test server took.
type received struct {
	From string
	To   []string
	Data []byte
}

// mailServer is a go-smtp server with an in-memory backend that records
// what it is sent and answers as configured.
type mailServer struct {
	TLS      *tls.Config // nil: no STARTTLS
	Implicit bool
	// MailErr, RcptErr, DataErr are returned by the backend (nil: accept).
	MailErr, RcptErr, DataErr error
	// QueueReply, when set, is the text of the 250 after DATA.
	QueueReply string
	// User and Pass enable AUTH PLAIN and LOGIN; AuthErr is the refusal.
	User, Pass string
	AuthErr    error

	mu       sync.Mutex
	msgs     []received
	mails    int
	rcpts    []string
	conns    atomic.Int32
	dataCmds atomic.Int32
	authed   atomic.Int32
}

func (m *mailServer) messages() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.msgs...)
}

func (m *mailServer) start(t testing.TB) Target {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l = wrapListener{l, func(c net.Conn) net.Conn { m.conns.Add(1); return c }}
	return serveSMTP(t, l, func() smtp.Session { return &mailSession{m: m} }, m.TLS, m.Implicit)
}

type mailSession struct {
	m    *mailServer
	from string
	to   []string
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.m.mu.Lock()
	s.m.mails++
	s.m.mu.Unlock()
	if s.m.MailErr != nil {
		return s.m.MailErr
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.mu.Lock()
	s.m.rcpts = append(s.m.rcpts, to)
	s.m.mu.Unlock()
	if s.m.RcptErr != nil {
		return s.m.RcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	s.m.dataCmds.Add(1)
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.m.DataErr != nil {
		return s.m.DataErr
	}
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, received{From: s.from, To: s.to, Data: b})
	s.m.mu.Unlock()
	if s.m.QueueReply != "" {
		// go-smtp answers with the error's code and text: a 250 "error"
		// is how a backend sets its own acceptance text.
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: s.m.QueueReply}
	}
	return nil
}

// AuthMechanisms and Auth make the session an smtp.AuthSession when the
// server has a user.
func (s *mailSession) AuthMechanisms() []string {
	if s.m.User == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	check := func(u, p string) error {
		if s.m.AuthErr != nil {
			return s.m.AuthErr
		}
		if u != s.m.User || p != s.m.Pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.m.authed.Add(1)
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, u, p string) error { return check(u, p) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, errors.New("unsupported mechanism")
}

// loginServer is the server side of LOGIN (go-sasl has none), asking
// "Username:" and "Password:" as Exchange and Postfix/Dovecot do.
type loginServer struct {
	step  int
	user  string
	check func(u, p string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 {
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

// sendOpts are SendOptions for tests: loopback only, short timeouts, the
// test root, one recipient.
func sendOpts(t testing.TB, path SendPath, targets ...Target) SendOptions {
	p := testPKI(t)
	return SendOptions{
		Path: path, Targets: targets, HeloName: testHelo, Roots: p.root.Pool(),
		From: testFrom, To: []string{testTo},
		Timeouts:    Timeouts{Connect: 2 * time.Second, Banner: 2 * time.Second, Command: 2 * time.Second, Handshake: 2 * time.Second},
		DataTimeout: 3 * time.Second,
		Dial:        loopbackDial,
	}
}

// testMessage builds a message with a fresh token.
func testMessage(t testing.TB, to ...string) ([]byte, string) {
	t.Helper()
	if len(to) == 0 {
		to = []string{testTo}
	}
	tok := NewToken()
	msg, err := BuildMessage(MessageOptions{From: testFrom, To: to, Token: tok, Date: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Hostname: "sender.test"})
	require.NoError(t, err)
	return msg, tok
}

// validTLS is a server config with the test leaf and its chain.
func validTLS(t testing.TB) *tls.Config {
	return serverConfig(testPKI(t).leaf.TLSCertificate(true))
}

// refusedTarget is a loopback port nobody listens on.
func refusedTarget(t testing.TB) Target {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ap := netip.MustParseAddrPort(l.Addr().String())
	require.NoError(t, l.Close())
	return Target{Host: "mx0." + testHost, Addr: ap.Addr(), Port: int(ap.Port()), Role: RoleMX}
}

// noSecret asserts that no output of a send shows the password in any
// form: the result's and the finding's JSON, their %v, and every string.
func noSecret(t *testing.T, r *SendResult, user, pass string) {
	t.Helper()
	rj, err := json.Marshal(r)
	require.NoError(t, err)
	fj, err := json.Marshal(r.Finding())
	require.NoError(t, err)
	all := string(rj) + string(fj) + fmt.Sprintf("%v %+v %#v", *r, r.Finding(), r.Transcript)
	forms := []string{
		pass,
		base64.StdEncoding.EncodeToString([]byte(pass)),
		base64.RawStdEncoding.EncodeToString([]byte(pass)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass)),
		base64.StdEncoding.EncodeToString([]byte(user + "\x00" + user + "\x00" + pass)),
	}
	// JSON escapes some characters (+, <, >, &) as \u00XX; undo that.
	all += strings.NewReplacer(`\u002b`, "+", `\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(all)
	for _, f := range forms {
		assert.NotContains(t, all, f, "the password leaked in some form")
	}
}

// transcriptHas reports whether a transcript line starts with prefix.
func transcriptHas(tr []string, prefix string) bool {
	for _, l := range tr {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// headerOf returns a header field of a received message.
func headerOf(msg []byte, name string) string {
	return headerValue(msg, name)
}

func sprintf(format string, v any) string { return fmt.Sprintf(format, v) }
