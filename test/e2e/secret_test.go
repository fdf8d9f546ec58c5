package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/testpki"
)

// authBackend is a submission server that knows one account.
type authBackend struct{ user, password string }

func (b authBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &authSession{b: b}, nil }

type authSession struct {
	b    authBackend
	auth bool
}

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }
func (s *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.b.user || pass != s.b.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.auth = true
		return nil
	}), nil
}
func (s *authSession) Mail(string, *smtp.MailOptions) error {
	if !s.auth {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *authSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *authSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (s *authSession) Reset()        {}
func (s *authSession) Logout() error { return nil }

// submissionServer starts a STARTTLS submission server on 127.0.0.1 with a
// certificate from a CA it writes to caFile.
func submissionServer(t *testing.T, b authBackend) (addr, caFile string) {
	t.Helper()
	ca, err := testpki.NewCA("e2e submission CA")
	require.NoError(t, err)
	leaf, err := ca.Leaf(testpki.LeafOptions{DNSNames: []string{"submission.zones.test"}})
	require.NoError(t, err)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca.PEM, 0o600))
	s := smtp.NewServer(b)
	s.Domain = "submission.e2e.test"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate(true)}}
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return l.Addr().String(), caFile
}

// The SMTP AUTH password appears in no output of any format, whether the
// server accepts it or refuses it, and whether it came from the
// environment or a file.
func TestSendPasswordNeverShown(t *testing.T) {
	const password = "Tr0ub4dor&3-e2e-secret"
	addr, caFile := submissionServer(t, authBackend{user: "probe@contoso.example", password: password})
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	w := startZones(t) // submission.zones.test is 127.0.0.1
	forms := []string{password, base64.StdEncoding.EncodeToString([]byte(password)),
		base64.StdEncoding.EncodeToString([]byte("\x00probe@contoso.example\x00" + password))}
	pwFile := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pwFile, []byte("wrong-"+password+"\n"), 0o600))

	for _, format := range []string{"json", "table", "markdown", "junit"} {
		for _, c := range []struct {
			name string
			args []string
			env  string
			code int
		}{
			{"right password from the environment", nil, password, 0},
			{"wrong password from a file", []string{"--password-file", pwFile}, "", 1},
		} {
			args := append([]string{"send", "--path", "outbound", "--server", "submission.zones.test:" + port, "--to", "mailbox@fabrikam.example",
				"--from", "probe@contoso.example", "--user", "probe@contoso.example", "--ca-file", caFile,
				"--resolver", w.Resolver, "--trace", "-o", format, "--timeout", "20s"}, c.args...)
			r := runEnv(t, []string{"MFCHECK_SMTP_PASSWORD=" + c.env}, args...)
			assert.Equal(t, c.code, r.code, "%s, %s: %s", c.name, format, r.stderr)
			for _, secret := range forms {
				assert.NotContains(t, r.stdout+r.stderr, secret, "%s, %s", c.name, format)
				assert.NotContains(t, r.stdout+r.stderr, "wrong-"+password)
			}
			if format == "json" {
				rep := decode(t, r)
				require.Len(t, rep.Findings, 1)
				assert.Equal(t, "send.outbound", rep.Findings[0].ID)
				if c.code == 1 {
					assert.Contains(t, rep.Findings[0].Message, "535")
				}
			}
		}
	}
}

// The send and trace flags are checked before anything is sent.
func TestSendUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"send"}, nil, "--to"},
		{[]string{"send", "--to", "not-an-address"}, nil, "not a mail address"},
		{[]string{"send", "--to", "a@b.example", "--path", "sideways"}, nil, "--path"},
		{[]string{"send", "--to", "a@b.example", "--path", "outbound"}, nil, "needs --server"},
		{[]string{"send", "--to", "a@b.example", "--to", "c@d.example"}, nil, "one domain"},
		{[]string{"send", "--to", "a@b.example", "--quit-after", "data"}, nil, "--quit-after"},
		{[]string{"send", "--to", "a@b.example", "--user", "u"}, []string{"MFCHECK_SMTP_PASSWORD="}, "needs a password"},
		{[]string{"send", "--to", "a@b.example", "--user", "u", "--password-file", "testdata/no-such-file"}, nil, "--password-file"},
		{[]string{"send", "--to", "a@b.example", "--dkim-key", "testdata/ipallowlist.txt"}, nil, "--dkim-selector"},
		{[]string{"send", "--to", "a@b.example", "--dkim-key", "testdata/ipallowlist.txt", "--dkim-selector", "s1"}, nil, "--dkim-key"},
		{[]string{"check", "example.com", "--to", "a@example.com"}, nil, "--to needs --send"},
		{[]string{"check", "example.com", "--send"}, nil, "--to"},
		{[]string{"check", "example.com", "--send", "--to", "a@example.com", "--outbound-server", "smtp.example.com"}, nil, "--outbound-to"},
		{[]string{"check", "example.com", "--send", "--to", "someone@elsewhere.example"}, nil, "recipient in example.com"},
		{[]string{"trace"}, nil, "trace needs"},
		{[]string{"trace", "--maildir", "/nonexistent"}, nil, "go together"},
		{[]string{"trace", "testdata/no-such-message.eml", "--no-dkim"}, nil, "no such file"},
		{[]string{"trace", "-", "--mailbox", "mimecast-eu", "--no-dkim"}, nil, "not a mail platform"},
	} {
		// A resolver on loopback where nothing listens: should a case get
		// past validation by mistake, it still cannot reach off this machine.
		args := append(c.args, "--resolver", "127.0.0.1:1")
		r := runEnv(t, c.env, args...)
		assert.Equal(t, 2, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.want, "%v", c.args)
		assert.Empty(t, r.stdout, "%v", c.args)
	}
}
