package smtpprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/testpki"
	"github.com/mfcheck/mfcheck/pkg/report"
)

func TestValidChain(t *testing.T) {
	p := testPKI(t)
	tgt := smtpServer{TLS: serverConfig(p.leaf.TLSCertificate(true))}.start(t)

	start := time.Now()
	r := Probe(context.Background(), tgt, p.opts())
	within(t, start, 5*time.Second)

	require.Empty(t, r.Err)
	require.NotNil(t, r.TLS)
	assert.Equal(t, 220, r.Banner.Code)
	assert.Contains(t, r.Banner.Text, testHost)
	assert.True(t, r.StartTLSOffered)
	assert.True(t, hasExtension(r.Extensions, "starttls"))
	assert.NotEmpty(t, r.ExtensionsTLS)
	assert.False(t, hasExtension(r.ExtensionsTLS, "STARTTLS"), "not offered again over TLS")
	assert.Equal(t, "TLS 1.3", r.TLS.Version)
	assert.Equal(t, testHost, r.TLS.ServerName)
	assert.True(t, r.TLS.Verified, r.TLS.VerifyError)
	assert.True(t, r.TLS.HostnameOK)
	require.Len(t, r.TLS.Chain, 2)
	assert.Equal(t, "ECDSA P-256", r.TLS.Chain[0].KeyType)
	assert.Len(t, r.TLS.VerifiedChain, 3, "leaf, intermediate, root")
	assert.Len(t, r.PeerCertificates, 2)

	var names []string
	for _, ph := range r.Phases {
		names = append(names, ph.Name)
		assert.Empty(t, ph.Err, ph.Name)
	}
	assert.Equal(t, []string{"connect", "banner", "ehlo", "starttls", "handshake", "ehlo-tls", "quit"}, names)
	assert.Contains(t, r.Transcript, "C: STARTTLS")
	assert.Contains(t, r.Transcript, "C: EHLO "+DefaultHeloName)
	assert.Contains(t, r.Transcript, "C: QUIT")

	v, _ := r.Verdict()
	assert.Equal(t, VerdictVerified, v)

	fs := byID(t, r.Findings(p.opts()))
	for _, id := range []string{IDBanner, IDStartTLSOffered, IDHandshake, IDVersion, IDCertChain, IDCertHostname, IDCertExpiry, IDCertKey} {
		if assert.Contains(t, fs, id) {
			assert.Equal(t, report.StatusPass, fs[id].Status, "%s: %s", id, fs[id].Message)
			assert.Equal(t, tgt.Subject(), fs[id].Subject)
		}
	}
	assert.NotContains(t, fs, IDConnect, "a working connect is not reported on its own")
	assert.Contains(t, fs[IDCertExpiry].Message, "89 days left")
	assert.Contains(t, fs[IDBanner].Evidence, "phases_ms")
	assert.NotContains(t, fs[IDBanner].Evidence, "transcript", "a passing greeting needs no transcript")
	assert.Contains(t, fs[IDHandshake].Evidence, "transcript")

	// The result is JSON for the report's evidence.
	_, err := json.Marshal(r)
	assert.NoError(t, err)
}

func TestCertificateDefects(t *testing.T) {
	p := testPKI(t)
	now := time.Now()
	mustLeaf := func(l *testpki.Leaf, err error) *testpki.Leaf {
		require.NoError(t, err)
		return l
	}
	name := []string{testHost}
	selfSigned := mustLeaf(testpki.SelfSigned(testpki.LeafOptions{DNSNames: name}))
	cases := []struct {
		name   string
		cert   tls.Certificate
		id     string
		status report.Status
		msg    []string
		// other findings that must hold
		also map[string]report.Status
		// verified: a strict client still accepts it (a 1024-bit key, a
		// certificate about to expire)
		verified bool
	}{
		{name: "expired",
			cert: mustLeaf(p.inter.Leaf(testpki.LeafOptions{DNSNames: name, NotBefore: now.Add(-100 * 24 * time.Hour), NotAfter: now.Add(-5 * 24 * time.Hour)})).TLSCertificate(true),
			id:   IDCertExpiry, status: report.StatusFail, msg: []string{"expired on", "5 days ago"},
			also: map[string]report.Status{IDCertChain: report.StatusPass, IDCertHostname: report.StatusPass}},
		// The leaf expired before the intermediate it is now served with was
		// issued (a server that renewed its chain file but not its leaf):
		// no moment has every certificate valid, yet each link holds.
		{name: "expired before its issuer",
			cert: mustLeaf(p.inter.Leaf(testpki.LeafOptions{DNSNames: name, NotBefore: now.Add(-3 * 365 * 24 * time.Hour), NotAfter: now.Add(-2 * 365 * 24 * time.Hour)})).TLSCertificate(true),
			id:   IDCertExpiry, status: report.StatusFail, msg: []string{"expired on", "730 days ago"},
			also: map[string]report.Status{IDCertChain: report.StatusPass, IDCertHostname: report.StatusPass}},
		{name: "not yet valid",
			cert: mustLeaf(p.inter.Leaf(testpki.LeafOptions{DNSNames: name, NotBefore: now.Add(48 * time.Hour), NotAfter: now.Add(200 * 24 * time.Hour)})).TLSCertificate(true),
			id:   IDCertExpiry, status: report.StatusFail, msg: []string{"not valid before"}},
		{name: "expiring soon",
			cert: mustLeaf(p.inter.Leaf(testpki.LeafOptions{DNSNames: name, NotAfter: now.Add(10*24*time.Hour + time.Hour)})).TLSCertificate(true),
			id:   IDCertExpiry, status: report.StatusWarn, msg: []string{"expires in 10 days"},
			also: map[string]report.Status{IDCertChain: report.StatusPass}, verified: true},
		{name: "wrong name",
			cert: mustLeaf(p.inter.Leaf(testpki.LeafOptions{DNSNames: []string{"other.example", "*.wrong.example"}})).TLSCertificate(true),
			id:   IDCertHostname, status: report.StatusFail, msg: []string{"not valid for " + testHost, "other.example, *.wrong.example"},
			also: map[string]report.Status{IDCertChain: report.StatusPass, IDCertExpiry: report.StatusPass}},
		{name: "self-signed",
			cert: selfSigned.TLSCertificate(true),
			id:   IDCertChain, status: report.StatusFail, msg: []string{"self-signed"},
			also: map[string]report.Status{IDCertHostname: report.StatusPass}},
		{name: "missing intermediate",
			cert: p.leaf.TLSCertificate(false),
			id:   IDCertChain, status: report.StatusFail, msg: []string{"Missing intermediate", `"CN=mfcheck Test Intermediate,O=mfcheck testpki"`, "sent 1 certificate"}},
		{name: "weak key",
			cert: mustLeaf(p.inter.Leaf(testpki.LeafOptions{DNSNames: name, RSABits: 1024})).TLSCertificate(true),
			id:   IDCertKey, status: report.StatusWarn, msg: []string{"RSA key of 1024 bits"},
			also: map[string]report.Status{IDCertChain: report.StatusPass}, verified: true},
		{name: "SHA-1 signature",
			cert: mustLeaf(p.inter.Leaf(testpki.LeafOptions{DNSNames: name, SignatureAlgorithm: x509.ECDSAWithSHA1})).TLSCertificate(true),
			id:   IDCertChain, status: report.StatusFail, msg: []string{"weak algorithm"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tgt := smtpServer{TLS: serverConfig(tc.cert)}.start(t)
			start := time.Now()
			r := Probe(context.Background(), tgt, p.opts())
			within(t, start, 5*time.Second)
			require.Empty(t, r.Err)
			require.NotNil(t, r.TLS)
			assert.Equal(t, tc.verified, r.TLS.Verified, r.TLS.VerifyError)
			if v, reason := r.Verdict(); !tc.verified {
				assert.Equal(t, VerdictUntrusted, v)
				assert.NotEmpty(t, reason)
			}

			fs := byID(t, r.Findings(p.opts()))
			require.Contains(t, fs, tc.id, ids(r.Findings(p.opts())))
			f := fs[tc.id]
			assert.Equal(t, tc.status, f.Status, f.Message)
			for _, m := range tc.msg {
				assert.Contains(t, f.Message, m)
			}
			if tc.status != report.StatusPass {
				assert.NotEmpty(t, f.Remediation)
			}
			for id, st := range tc.also {
				assert.Equal(t, st, fs[id].Status, "%s: %s", id, fs[id].Message)
			}
			assert.Equal(t, report.StatusPass, fs[IDHandshake].Status, "the handshake completes whatever the certificate")
		})
	}
}

func TestMissingIntermediateRemediation(t *testing.T) {
	p := testPKI(t)
	tgt := smtpServer{TLS: serverConfig(p.leaf.TLSCertificate(false))}.start(t)
	r := Probe(context.Background(), tgt, p.opts())
	require.NotNil(t, r.TLS)
	assert.Equal(t, ChainMissingIntermediate, r.TLS.ChainProblem)
	fs := byID(t, r.Findings(p.opts()))
	assert.Contains(t, fs[IDCertChain].Remediation, `install the intermediate certificate "CN=mfcheck Test Intermediate`[len("install "):])
	assert.Contains(t, fs[IDCertChain].Remediation, "chain file")

	// An untrusted private root sent along: unknown authority, not missing.
	other, err := testpki.NewCA("Private Root")
	require.NoError(t, err)
	leaf, err := other.Leaf(testpki.LeafOptions{DNSNames: []string{testHost}})
	require.NoError(t, err)
	cert := leaf.TLSCertificate(false)
	cert.Certificate = append(cert.Certificate, other.Cert.Raw)
	tgt = smtpServer{TLS: serverConfig(cert)}.start(t)
	r = Probe(context.Background(), tgt, p.opts())
	require.NotNil(t, r.TLS)
	assert.Equal(t, ChainUnknownAuthority, r.TLS.ChainProblem)
	fs = byID(t, r.Findings(p.opts()))
	assert.Contains(t, fs[IDCertChain].Message, "Private Root")
}

func TestNoStartTLS(t *testing.T) {
	p := testPKI(t)
	tgt := smtpServer{}.start(t)
	for _, role := range []Role{RoleMX, RoleSmartHost} {
		tgt.Role = role
		r := Probe(context.Background(), tgt, p.opts())
		require.Empty(t, r.Err)
		assert.False(t, r.StartTLSOffered)
		assert.Nil(t, r.TLS)
		v, _ := r.Verdict()
		assert.Equal(t, VerdictNoStartTLS, v)
		fs := byID(t, r.Findings(p.opts()))
		f := fs[IDStartTLSOffered]
		want := map[Role]report.Status{RoleMX: report.StatusWarn, RoleSmartHost: report.StatusFail}[role]
		assert.Equal(t, want, f.Status, f.Message)
		assert.Contains(t, f.Message, "No STARTTLS")
		assert.NotEmpty(t, f.Remediation)
		assert.Contains(t, f.Evidence, "extensions")
		assert.NotContains(t, fs, IDHandshake, "no handshake was attempted")
		assert.Equal(t, report.StatusPass, fs[IDBanner].Status)
	}
}

// ehloWithStartTLS plays a server up to the STARTTLS command.
func ehloWithStartTLS(c net.Conn, r *bufio.Reader) bool {
	say(c, "220 "+testHost+" ESMTP scripted")
	if !strings.HasPrefix(readCmd(r), "EHLO") {
		return false
	}
	say(c, "250-"+testHost+" hello", "250-PIPELINING", "250 STARTTLS")
	return readCmd(r) == "STARTTLS"
}

func TestStartTLSFailures(t *testing.T) {
	p := testPKI(t)
	cases := []struct {
		name    string
		handler func(c net.Conn, r *bufio.Reader)
		status  report.Status
		msg     string
	}{
		{"garbage after 220", func(c net.Conn, r *bufio.Reader) {
			if ehloWithStartTLS(c, r) {
				say(c, "220 go ahead")
				_, _ = r.ReadByte() // wait for the ClientHello
				say(c, "HTTP/1.1 400 Bad Request", "")
			}
		}, report.StatusFail, "did not answer with TLS"},
		{"close after 220", func(c net.Conn, r *bufio.Reader) {
			if ehloWithStartTLS(c, r) {
				say(c, "220 go ahead")
				_, _ = r.ReadByte()
			}
		}, report.StatusFail, "closed the connection during the TLS handshake"},
		{"454 refused", func(c net.Conn, r *bufio.Reader) {
			if ehloWithStartTLS(c, r) {
				say(c, "454 4.7.0 TLS not available due to local problem")
				readCmd(r)
				say(c, "221 bye")
			}
		}, report.StatusFail, "454 4.7.0 TLS not available"},
		{"data after 220", func(c net.Conn, r *bufio.Reader) {
			if ehloWithStartTLS(c, r) {
				say(c, "220 go ahead", "250 injected")
				_, _ = io.Copy(io.Discard, r) // until the client hangs up
			}
		}, report.StatusFail, "bytes after its 220 reply"},
		{"hangs after 220", func(c net.Conn, r *bufio.Reader) {
			if ehloWithStartTLS(c, r) {
				say(c, "220 go ahead")
				_, _ = io.Copy(io.Discard, r) // swallow the ClientHello, never answer
			}
		}, report.StatusError, "did not complete within"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tgt := script(t, tc.handler)
			o := p.opts()
			o.Timeouts.Handshake = 500 * time.Millisecond
			start := time.Now()
			r := Probe(context.Background(), tgt, o)
			within(t, start, 3*time.Second)
			assert.True(t, r.StartTLSOffered)
			assert.Nil(t, r.TLS)
			assert.NotEmpty(t, r.Err)
			fs := byID(t, r.Findings(o))
			assert.Equal(t, report.StatusPass, fs[IDStartTLSOffered].Status)
			f := fs[IDHandshake]
			assert.Equal(t, tc.status, f.Status, f.Message)
			assert.Contains(t, f.Message, tc.msg)
			assert.NotContains(t, fs, IDCertChain)
			if tc.status == report.StatusFail {
				v, _ := r.Verdict()
				assert.Equal(t, VerdictTLSFailed, v)
			}
		})
	}
}

func TestTLS10Only(t *testing.T) {
	// Go's server still has TLS 1.0 with the ECDHE-ECDSA CBC-SHA suites in
	// its defaults, once MinVersion allows it; the probe offers them.
	p := testPKI(t)
	cfg := serverConfig(p.leaf.TLSCertificate(true))
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
	tgt := smtpServer{TLS: cfg}.start(t)
	r := Probe(context.Background(), tgt, p.opts())
	require.Empty(t, r.Err)
	require.NotNil(t, r.TLS)
	assert.Equal(t, "TLS 1.0", r.TLS.Version)
	fs := byID(t, r.Findings(p.opts()))
	f := fs[IDVersion]
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Contains(t, f.Message, "TLS 1.0 is deprecated (RFC 8996)")
	assert.Equal(t, report.StatusPass, fs[IDCertChain].Status)
}

func TestRSAKeyExchangeCipher(t *testing.T) {
	p := testPKI(t)
	leaf, err := p.inter.Leaf(testpki.LeafOptions{DNSNames: []string{testHost}, RSABits: 2048})
	require.NoError(t, err)
	cfg := serverConfig(leaf.TLSCertificate(true))
	cfg.MaxVersion = tls.VersionTLS12
	cfg.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
	tgt := smtpServer{TLS: cfg}.start(t)
	r := Probe(context.Background(), tgt, p.opts())
	require.NotNil(t, r.TLS, r.Err)
	fs := byID(t, r.Findings(p.opts()))
	assert.Equal(t, report.StatusWarn, fs[IDVersion].Status)
	assert.Contains(t, fs[IDVersion].Message, "without forward secrecy")
}

func TestImplicitTLS(t *testing.T) {
	p := testPKI(t)
	tgt := smtpServer{TLS: serverConfig(p.leaf.TLSCertificate(true)), Implicit: true}.start(t)
	r := Probe(context.Background(), tgt, p.opts())
	require.Empty(t, r.Err)
	require.NotNil(t, r.TLS)
	assert.True(t, r.TLS.Verified)
	assert.Equal(t, "handshake", r.Phases[1].Name, "TLS before the greeting")
	assert.Equal(t, 220, r.Banner.Code)
	fs := byID(t, r.Findings(p.opts()))
	assert.NotContains(t, fs, IDStartTLSOffered)
	for _, id := range []string{IDBanner, IDHandshake, IDVersion, IDCertChain, IDCertHostname, IDCertExpiry, IDCertKey} {
		assert.Equal(t, report.StatusPass, fs[id].Status, id)
	}

	// A plaintext server on an implicit-TLS target: the handshake fails.
	plain := smtpServer{}.start(t)
	plain.ImplicitTLS = true
	r = Probe(context.Background(), plain, p.opts())
	fs = byID(t, r.Findings(p.opts()))
	assert.Equal(t, report.StatusFail, fs[IDHandshake].Status, fs[IDHandshake].Message)
	assert.Contains(t, fs[IDHandshake].Message, "implicit-TLS")
}

func TestBanners(t *testing.T) {
	p := testPKI(t)
	cases := []struct {
		name    string
		handler func(c net.Conn, r *bufio.Reader)
		timeout time.Duration
		status  report.Status
		msg     string
		kind    string
	}{
		{"silent", func(c net.Conn, r *bufio.Reader) { _, _ = r.ReadByte() },
			300 * time.Millisecond, report.StatusError, "did not greet", KindTimeout},
		{"drips one byte a second", func(c net.Conn, r *bufio.Reader) {
			for _, b := range []byte("220 " + testHost + " ESMTP\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}, 1500 * time.Millisecond, report.StatusError, "no complete greeting within 1.5s", KindTimeout},
		{"421", func(c net.Conn, r *bufio.Reader) {
			say(c, "421 4.3.2 "+testHost+" too many connections, try later")
			readCmd(r)
		}, time.Second, report.StatusWarn, "421 4.3.2 " + testHost + " too many connections", ""},
		{"554", func(c net.Conn, r *bufio.Reader) {
			say(c, "554 5.7.1 no SMTP service here")
			if readCmd(r) == "QUIT" {
				say(c, "221 bye")
			}
		}, time.Second, report.StatusFail, "554 5.7.1 no SMTP service here", ""},
		{"garbage", func(c net.Conn, r *bufio.Reader) { say(c, "SSH-2.0-OpenSSH_9.6"); readCmd(r) },
			time.Second, report.StatusError, "not an SMTP reply", KindGarbage},
		{"binary", func(c net.Conn, r *bufio.Reader) { _, _ = c.Write([]byte("\x16\x03\x01\x00\x05hello\r\n")); readCmd(r) },
			time.Second, report.StatusError, "not an SMTP reply", KindGarbage},
		{"overlong line", func(c net.Conn, r *bufio.Reader) {
			_, _ = c.Write([]byte("220 " + strings.Repeat("x", 100000)))
			readCmd(r)
		}, time.Second, report.StatusError, "longer than 2048 bytes", KindTooLong},
		{"endless continuation", func(c net.Conn, r *bufio.Reader) {
			for range 10000 {
				if _, err := c.Write([]byte("220-" + strings.Repeat("y", 60) + "\r\n")); err != nil {
					return
				}
			}
		}, 2 * time.Second, report.StatusError, "reply is longer than 65536 bytes", KindTooLong},
		{"closed", func(c net.Conn, r *bufio.Reader) {}, time.Second, report.StatusError, "closed the connection", KindClosed},
		{"reset", func(c net.Conn, r *bufio.Reader) {
			time.Sleep(100 * time.Millisecond) // let the dial complete
			_ = c.(*net.TCPConn).SetLinger(0)  // close with RST
		}, time.Second, report.StatusError, "", ""},
		{"code 100", func(c net.Conn, r *bufio.Reader) { say(c, "100 hello"); readCmd(r) },
			time.Second, report.StatusError, "not an SMTP reply code", KindGarbage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tgt := script(t, tc.handler)
			o := p.opts()
			o.Timeouts.Banner = tc.timeout
			start := time.Now()
			r := Probe(context.Background(), tgt, o)
			within(t, start, tc.timeout+time.Second)
			fs := byID(t, r.Findings(o))
			require.Contains(t, fs, IDBanner, ids(r.Findings(o)))
			f := fs[IDBanner]
			assert.Equal(t, tc.status, f.Status, f.Message)
			assert.Contains(t, f.Message, tc.msg)
			if tc.kind != "" {
				assert.Equal(t, tc.kind, r.ErrKind, r.Err)
			}
			assert.Len(t, fs, 1, "nothing else can be judged: %v", ids(r.Findings(o)))
			total := 0
			for _, l := range r.Transcript {
				total += len(l)
			}
			assert.LessOrEqual(t, total, maxTranscriptBytes+64)
		})
	}
}

func TestEHLOProblems(t *testing.T) {
	p := testPKI(t)
	t.Run("HELO fallback", func(t *testing.T) {
		tgt := script(t, func(c net.Conn, r *bufio.Reader) {
			say(c, "220 old ESMTP-less server")
			readCmd(r)
			say(c, "502 5.5.2 command not recognized")
			if strings.HasPrefix(readCmd(r), "HELO ") {
				say(c, "250 old hello")
			}
			readCmd(r)
			say(c, "221 bye")
		})
		r := Probe(context.Background(), tgt, p.opts())
		assert.Empty(t, r.Err)
		assert.True(t, r.HELOFallback)
		fs := byID(t, r.Findings(p.opts()))
		assert.Equal(t, report.StatusWarn, fs[IDStartTLSOffered].Status)
		assert.Contains(t, fs[IDStartTLSOffered].Message, "refused EHLO")
	})
	t.Run("garbage EHLO reply", func(t *testing.T) {
		tgt := script(t, func(c net.Conn, r *bufio.Reader) {
			say(c, "220 ok")
			readCmd(r)
			say(c, "250-fine", "this is not a reply line", "25x nope")
			_, _ = io.Copy(io.Discard, r)
		})
		o := p.opts()
		o.Timeouts.Command = 500 * time.Millisecond
		start := time.Now()
		r := Probe(context.Background(), tgt, o)
		within(t, start, 2*time.Second)
		fs := byID(t, r.Findings(o))
		assert.Equal(t, report.StatusError, fs[IDStartTLSOffered].Status, fs[IDStartTLSOffered].Message)
		assert.Equal(t, PhaseEHLO, r.ErrPhase)
	})
	t.Run("EHLO 421", func(t *testing.T) {
		tgt := script(t, func(c net.Conn, r *bufio.Reader) {
			say(c, "220 ok")
			readCmd(r)
			say(c, "421 4.7.0 go away")
		})
		r := Probe(context.Background(), tgt, p.opts())
		fs := byID(t, r.Findings(p.opts()))
		assert.Equal(t, report.StatusError, fs[IDStartTLSOffered].Status)
		assert.Contains(t, fs[IDStartTLSOffered].Message, "421 4.7.0 go away")
	})
}

func TestConnectFailures(t *testing.T) {
	p := testPKI(t)
	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ap := netip.MustParseAddrPort(l.Addr().String())
		require.NoError(t, l.Close())
		r := Probe(context.Background(), Target{Host: testHost, Addr: ap.Addr(), Port: int(ap.Port())}, p.opts())
		assert.Equal(t, KindRefused, r.ErrKind)
		fs := byID(t, r.Findings(p.opts()))
		require.Len(t, fs, 1)
		assert.Equal(t, report.StatusError, fs[IDConnect].Status)
		assert.Contains(t, fs[IDConnect].Message, "refused")
		v, _ := r.Verdict()
		assert.Equal(t, VerdictUnreachable, v)
	})
	t.Run("timeout", func(t *testing.T) {
		o := p.opts()
		o.Timeouts.Connect = 300 * time.Millisecond
		o.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) { // a black hole
			<-ctx.Done()
			return nil, ctx.Err()
		}
		start := time.Now()
		r := Probe(context.Background(), Target{Host: testHost, Addr: netip.MustParseAddr("127.0.0.1")}, o)
		within(t, start, time.Second)
		assert.Equal(t, KindTimeout, r.ErrKind)
		fs := byID(t, r.Findings(o))
		assert.Equal(t, report.StatusError, fs[IDConnect].Status)
		assert.Contains(t, fs[IDConnect].Message, "no connection within 300ms")
	})
	t.Run("no address", func(t *testing.T) {
		r := Probe(context.Background(), Target{Host: testHost}, p.opts())
		assert.Equal(t, PhaseConnect, r.ErrPhase)
	})
}

func TestContextBoundsEveryPhase(t *testing.T) {
	p := testPKI(t)
	tgt := script(t, func(c net.Conn, r *bufio.Reader) { _, _ = r.ReadByte() })
	o := p.opts()
	o.Timeouts.Banner = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := Probe(ctx, tgt, o)
	within(t, start, 1300*time.Millisecond)
	assert.Equal(t, KindCanceled, r.ErrKind, r.Err)

	// A cancel (no deadline) also stops a phase at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel2)
	start = time.Now()
	r = Probe(ctx2, tgt, o)
	within(t, start, 1200*time.Millisecond)
	assert.Equal(t, KindCanceled, r.ErrKind, r.Err)
	fs := byID(t, r.Findings(o))
	assert.Equal(t, report.StatusError, fs[IDBanner].Status)
}

func TestAddressOnlyTarget(t *testing.T) {
	p := testPKI(t)
	tgt := smtpServer{TLS: serverConfig(p.leaf.TLSCertificate(true))}.start(t)
	tgt.Host = ""
	r := Probe(context.Background(), tgt, p.opts())
	require.NotNil(t, r.TLS, "%s %v", r.Err, r.Transcript)
	assert.Empty(t, r.TLS.ServerName, "no SNI without a name")
	fs := byID(t, r.Findings(p.opts()))
	assert.Equal(t, report.StatusInfo, fs[IDCertHostname].Status)
	assert.Contains(t, fs[IDCertHostname].Message, testHost)
	assert.Equal(t, report.StatusPass, fs[IDCertChain].Status)
}

func TestSubject(t *testing.T) {
	v4, v6 := netip.MustParseAddr("185.58.85.10"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{Host: "eu-smtp-inbound-1.mimecast.com", Addr: v4}, "eu-smtp-inbound-1.mimecast.com [185.58.85.10]"},
		{Target{Host: "eu-smtp-inbound-1.mimecast.com", Addr: v4, Port: 25}, "eu-smtp-inbound-1.mimecast.com [185.58.85.10]"},
		{Target{Host: "mx.example", Addr: v6, Port: 2525}, "mx.example [2001:db8::1]:2525"},
		{Target{Addr: v4}, "185.58.85.10"},
		{Target{Addr: v4, Port: 465}, "185.58.85.10:465"},
		{Target{Addr: v6, Port: 587}, "[2001:db8::1]:587"},
	} {
		assert.Equal(t, tc.want, tc.t.Subject())
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{HeloName: "evil\r\nMAIL FROM:<x>"}.withDefaults()
	assert.Equal(t, DefaultHeloName, o.HeloName, "a name with CR/LF is never sent")
	assert.Equal(t, DefaultBannerTimeout, o.Timeouts.Banner)
	assert.Equal(t, DefaultMaxPerAddress, o.MaxPerAddress)
	assert.Equal(t, DefaultExpiryWarn, o.ExpiryWarn)
}
