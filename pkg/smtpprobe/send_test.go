package smtpprobe

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/testpki"
	"github.com/mfcheck/mfcheck/pkg/report"
)

func TestSendAccepted(t *testing.T) {
	srv := &mailServer{TLS: validTLS(t), QueueReply: "Ok: queued as 4ABCD"}
	tgt := srv.start(t)
	msg, tok := testMessage(t)
	o := sendOpts(t, PathInbound, tgt)
	o.Message = msg

	r := Send(context.Background(), o)
	require.NotNil(t, r)
	assert.Empty(t, r.Err)
	assert.True(t, r.Accepted)
	assert.Equal(t, StageQuit, r.Stage)
	assert.Empty(t, r.Failed)
	assert.Equal(t, "4ABCD", r.QueueID)
	assert.Equal(t, 250, r.Code)
	assert.Equal(t, "2.0.0", r.EnhancedCode)
	assert.Equal(t, tok, r.Token, "the token comes from the message's X-Mfcheck-Token")
	assert.True(t, r.TLSUsed)
	require.NotNil(t, r.TLS)
	assert.True(t, r.TLS.Verified, r.TLS.VerifyError)
	assert.Equal(t, int32(1), srv.conns.Load(), "STARTTLS offered: one connection")

	got := srv.messages()
	require.Len(t, got, 1)
	assert.Equal(t, testFrom, got[0].From)
	assert.Equal(t, []string{testTo}, got[0].To)
	body := string(got[0].Data)
	assert.Contains(t, body, tok)
	assert.Equal(t, "<"+tok+"@sender.test>", headerOf(got[0].Data, "Message-ID"))
	assert.Equal(t, "mfcheck test "+tok, headerOf(got[0].Data, "Subject"))
	assert.Equal(t, tok, headerOf(got[0].Data, "X-Mfcheck-Token"))

	assert.True(t, transcriptHas(r.Transcript, "C: EHLO "+testHelo), "EHLO with our name over TLS: %v", r.Transcript)
	assert.True(t, transcriptHas(r.Transcript, "S: 220"))
	assert.True(t, transcriptHas(r.Transcript, "C: STARTTLS"))
	assert.True(t, transcriptHas(r.Transcript, "C: MAIL FROM:<"+testFrom+">"))
	assert.True(t, transcriptHas(r.Transcript, "C: RCPT TO:<"+testTo+">"))
	assert.True(t, transcriptHas(r.Transcript, "S: 250 2.0.0 Ok: queued as 4ABCD"))
	assert.False(t, transcriptHas(r.Transcript, "C: "+tok), "the message body is not in the transcript")
	ph := r.PhaseMS()
	for _, name := range []string{"connect", "banner", "ehlo", "starttls", "handshake", "ehlo-tls", "mail", "rcpt", "data", "message", "quit"} {
		assert.Contains(t, ph, name)
	}

	f := r.Finding()
	byID(t, []report.Finding{f})
	assert.Equal(t, IDSendInbound, f.ID)
	assert.Equal(t, report.StatusPass, f.Status, f.Message)
	assert.Contains(t, f.Message, "4ABCD")
	assert.Contains(t, f.Message, "TLS 1.3")
	assert.Contains(t, f.Message, tgt.Subject())
	assert.Equal(t, "4ABCD", f.Evidence["queue_id"])
	assert.Equal(t, tok, f.Evidence["token"])
	_, err := json.Marshal(f)
	require.NoError(t, err)
}

func TestSendOpportunisticWithoutTLS(t *testing.T) {
	srv := &mailServer{}
	tgt := srv.start(t)
	msg, _ := testMessage(t)
	o := sendOpts(t, PathInbound, tgt)
	o.Message = msg
	r := Send(context.Background(), o)
	assert.True(t, r.Accepted, r.Err)
	assert.False(t, r.TLSUsed)
	assert.False(t, r.TLSOffered)
	assert.Equal(t, int32(2), srv.conns.Load(), "go-smtp learns STARTTLS is missing on the first connection; the send goes on a second")
	assert.Len(t, srv.messages(), 1)
	f := r.Finding()
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Contains(t, f.Message, "without TLS")
}

func TestSendUntrustedCertificate(t *testing.T) {
	self, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{testHost}})
	require.NoError(t, err)

	t.Run("inbound is opportunistic", func(t *testing.T) {
		srv := &mailServer{TLS: serverConfig(self.TLSCertificate(false))}
		msg, _ := testMessage(t)
		o := sendOpts(t, PathInbound, srv.start(t))
		o.Message = msg
		r := Send(context.Background(), o)
		assert.True(t, r.Accepted, r.Err)
		assert.True(t, r.TLSUsed)
		require.NotNil(t, r.TLS)
		assert.False(t, r.TLS.Verified)
		assert.Equal(t, ChainSelfSigned, r.TLS.ChainProblem, "the probe's verdict logic")
		assert.Contains(t, r.Finding().Message, "not verified")
	})
	t.Run("outbound with credentials stops before AUTH", func(t *testing.T) {
		srv := &mailServer{TLS: serverConfig(self.TLSCertificate(false)), User: "u@contoso.test", Pass: "Pa55-word-xyz"}
		msg, _ := testMessage(t)
		o := sendOpts(t, PathOutbound, srv.start(t))
		o.Message, o.Auth = msg, &Auth{Username: "u@contoso.test", Password: "Pa55-word-xyz"}
		r := Send(context.Background(), o)
		assert.Equal(t, StageStartTLS, r.Failed)
		assert.Equal(t, KindUntrusted, r.ErrKind)
		assert.False(t, transcriptHas(r.Transcript, "C: AUTH"))
		assert.Equal(t, 0, srv.mails)
		f := r.Finding()
		assert.Equal(t, IDSendOutbound, f.ID)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "no credentials")
		noSecret(t, r, "u@contoso.test", "Pa55-word-xyz")
	})
	t.Run("insecure skip verify is explicit and reported", func(t *testing.T) {
		srv := &mailServer{TLS: serverConfig(self.TLSCertificate(false)), User: "u@contoso.test", Pass: "Pa55-word-xyz"}
		msg, _ := testMessage(t)
		o := sendOpts(t, PathOutbound, srv.start(t))
		o.Message, o.Auth, o.InsecureSkipVerify = msg, &Auth{Username: "u@contoso.test", Password: "Pa55-word-xyz"}, true
		r := Send(context.Background(), o)
		assert.True(t, r.Accepted, r.Err)
		assert.True(t, r.InsecureSkipVerify)
		f := r.Finding()
		assert.Equal(t, report.StatusPass, f.Status)
		assert.Contains(t, f.Message, "NOT verified")
		assert.Equal(t, true, f.Evidence["insecure_skip_verify"])
	})
}

func TestSendBanner421(t *testing.T) {
	tgt := script(t, func(c net.Conn, r *bufio.Reader) {
		say(c, "421 4.3.2 mx.mfcheck.test busy, try later")
	})
	o := sendOpts(t, PathInbound, tgt)
	o.Message, _ = testMessage(t)
	r := Send(context.Background(), o)
	assert.Equal(t, StageBanner, r.Failed)
	assert.Equal(t, StageConnect, r.Stage)
	assert.Equal(t, 421, r.Code)
	assert.Equal(t, "4.3.2", r.EnhancedCode)
	assert.Equal(t, KindReply, r.ErrKind)
	f := r.Finding()
	assert.Equal(t, report.StatusWarn, f.Status, f.Message)
	assert.Contains(t, f.Message, "421")
	assert.Contains(t, f.Message, "try again later")
}

func TestSendRcptRefused(t *testing.T) {
	srv := &mailServer{TLS: validTLS(t), RcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay denied"}}
	second := &mailServer{TLS: validTLS(t)}
	o := sendOpts(t, PathInbound, srv.start(t), second.start(t))
	o.Message, _ = testMessage(t)
	r := Send(context.Background(), o)
	assert.Equal(t, StageRcpt, r.Failed)
	assert.Equal(t, StageMail, r.Stage)
	assert.Equal(t, 550, r.Code)
	assert.Equal(t, "5.7.1", r.EnhancedCode)
	assert.Equal(t, "550 5.7.1 relay denied", r.Reply)
	assert.Equal(t, int32(0), srv.dataCmds.Load())
	assert.Equal(t, int32(0), second.conns.Load(), "a 5xx to RCPT is an answer: no fallback")
	assert.True(t, transcriptHas(r.Transcript, "C: RSET"))
	assert.True(t, transcriptHas(r.Transcript, "C: QUIT"))
	f := r.Finding()
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Message, "550 5.7.1 relay denied")
	assert.Contains(t, f.Message, "RCPT")
	assert.Contains(t, f.Remediation, "contoso.test")
	assert.Equal(t, "rcpt", f.Evidence["failed_stage"])
	assert.Equal(t, "5.7.1", f.Evidence["enhanced_code"])
}

func TestSendGreylisted(t *testing.T) {
	srv := &mailServer{TLS: validTLS(t), RcptErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try again in 5 minutes"}}
	o := sendOpts(t, PathInbound, srv.start(t))
	o.Message, _ = testMessage(t)
	r := Send(context.Background(), o)
	assert.Equal(t, StageRcpt, r.Failed)
	assert.Equal(t, 451, r.Code)
	assert.Equal(t, "4.7.1", r.EnhancedCode)
	f := r.Finding()
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Contains(t, f.Message, "try again later")
	assert.Contains(t, f.Message, "greylisted")
}

func TestSendAuth(t *testing.T) {
	const user, pass = "sender@contoso.test", "S3cr3t-Pa55word!"
	for _, mech := range []string{"", "plain", "login"} {
		t.Run("accepted "+mech, func(t *testing.T) {
			srv := &mailServer{TLS: validTLS(t), User: user, Pass: pass}
			o := sendOpts(t, PathOutbound, srv.start(t))
			o.Message, _ = testMessage(t)
			o.Auth = &Auth{Username: user, Password: pass, Mechanism: mech}
			r := Send(context.Background(), o)
			assert.True(t, r.Accepted, r.Err)
			assert.Equal(t, int32(1), srv.authed.Load())
			assert.True(t, r.RequireTLS, "credentials make TLS required")
			want := strings.ToUpper(mech)
			if want == "" {
				want = "PLAIN"
			}
			assert.Equal(t, want, r.AuthMechanism)
			assert.Equal(t, report.StatusPass, r.Finding().Status)
			noSecret(t, r, user, pass)
			if want == "PLAIN" {
				assert.Contains(t, r.Transcript, "C: AUTH PLAIN ****")
			} else {
				assert.Contains(t, r.Transcript, "C: AUTH LOGIN")
				assert.Contains(t, r.Transcript, "C: ****")
			}
		})
	}
	t.Run("refused 535", func(t *testing.T) {
		srv := &mailServer{TLS: validTLS(t), User: user, Pass: "another password"}
		second := &mailServer{TLS: validTLS(t), User: user, Pass: pass}
		o := sendOpts(t, PathOutbound, srv.start(t), second.start(t))
		o.Message, _ = testMessage(t)
		o.Auth = &Auth{Username: user, Password: pass}
		r := Send(context.Background(), o)
		assert.Equal(t, StageAuth, r.Failed)
		assert.Equal(t, 535, r.Code)
		assert.Equal(t, "5.7.8", r.EnhancedCode)
		assert.Equal(t, int32(0), second.conns.Load(), "credentials are not tried elsewhere after a refusal")
		assert.Equal(t, 0, srv.mails)
		f := r.Finding()
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "535 5.7.8")
		assert.Contains(t, f.Message, user)
		noSecret(t, r, user, pass)
	})
	t.Run("a server echoing the credentials", func(t *testing.T) {
		// A hostile server repeats the AUTH line in its refusal, and
		// then the password in clear; neither may reach any output.
		tgt := script(t, func(c net.Conn, rd *bufio.Reader) {
			say(c, "220 mx.mfcheck.test ESMTP")
			readCmd(rd)
			say(c, "250-mx.mfcheck.test", "250 AUTH PLAIN LOGIN")
			line := readCmd(rd)
			say(c, "535-5.7.8 you sent "+line, "535 5.7.8 password was "+pass)
			readCmd(rd)
			say(c, "221 bye")
		})
		o := sendOpts(t, PathOutbound, tgt)
		o.Message, _ = testMessage(t)
		o.Auth = &Auth{Username: user, Password: pass}
		o.RequireTLS = false
		r := Send(context.Background(), o)
		// TLS is required with credentials: this server offers none, so
		// nothing is sent at all.
		assert.Equal(t, KindNoTLS, r.ErrKind)
		assert.False(t, transcriptHas(r.Transcript, "C: AUTH"))
		noSecret(t, r, user, pass)
	})
	t.Run("echo over TLS", func(t *testing.T) {
		r := echoOverTLS(t, user, pass)
		assert.Equal(t, StageAuth, r.Failed)
		assert.Contains(t, r.Transcript, "C: AUTH PLAIN ****")
		noSecret(t, r, user, pass)
	})
	t.Run("printing options", func(t *testing.T) {
		a := &Auth{Username: user, Password: pass}
		o := SendOptions{Auth: a}
		out := []string{fmtAll(a), fmtAll(*a), fmtAll(o)}
		b, err := json.Marshal(a)
		require.NoError(t, err)
		out = append(out, string(b))
		for _, s := range out {
			assert.NotContains(t, s, pass)
		}
	})
}

// echoOverTLS runs AUTH against a go-smtp server whose AUTH refusal
// echoes the decoded credentials in its text.
func echoOverTLS(t *testing.T, user, pass string) *SendResult {
	srv := &mailServer{TLS: validTLS(t), User: user, Pass: pass,
		AuthErr: &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials for " + user + " with password " + pass}}
	o := sendOpts(t, PathOutbound, srv.start(t))
	o.Message, _ = testMessage(t)
	o.Auth = &Auth{Username: user, Password: pass, Mechanism: "plain"}
	return Send(context.Background(), o)
}

func TestSendTLSRequiredNotOffered(t *testing.T) {
	srv := &mailServer{User: "u@contoso.test", Pass: "x-Pa55word-y"}
	o := sendOpts(t, PathOutbound, srv.start(t))
	o.Message, _ = testMessage(t)
	o.Auth = &Auth{Username: "u@contoso.test", Password: "x-Pa55word-y"}
	r := Send(context.Background(), o)
	assert.Equal(t, StageStartTLS, r.Failed)
	assert.Equal(t, KindNoTLS, r.ErrKind)
	assert.Equal(t, StageEHLO, r.Stage)
	assert.Equal(t, int32(1), srv.conns.Load(), "no second connection in clear")
	assert.False(t, transcriptHas(r.Transcript, "C: AUTH"))
	assert.True(t, transcriptHas(r.Transcript, "C: QUIT"), "we QUIT ourselves where go-smtp would just close")
	f := r.Finding()
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Message, "STARTTLS")
}

func TestSendResetMidData(t *testing.T) {
	tgt := script(t, func(c net.Conn, rd *bufio.Reader) {
		say(c, "220 mx.mfcheck.test ESMTP")
		for {
			cmd := strings.ToUpper(readCmd(rd))
			switch {
			case cmd == "":
				return
			case strings.HasPrefix(cmd, "EHLO"):
				say(c, "250-mx.mfcheck.test", "250 8BITMIME")
			case strings.HasPrefix(cmd, "DATA"):
				say(c, "354 go ahead")
				readCmd(rd) // part of the header, then gone
				readCmd(rd)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, not a clean close
				}
				return
			case strings.HasPrefix(cmd, "QUIT"):
				say(c, "221 bye")
				return
			default:
				say(c, "250 ok")
			}
		}
	})
	o := sendOpts(t, PathInbound, tgt, refusedTarget(t))
	o.Message, _ = testMessage(t)
	start := time.Now()
	r := Send(context.Background(), o)
	within(t, start, 5*time.Second)
	assert.Equal(t, StageData, r.Failed)
	assert.Equal(t, StageRcpt, r.Stage)
	assert.Contains(t, []string{KindReset, KindClosed}, r.ErrKind)
	assert.False(t, r.Accepted)
	assert.Len(t, r.Attempts, 1, "never resend once the message is on its way")
	f := r.Finding()
	assert.Equal(t, report.StatusError, f.Status)
	assert.Contains(t, f.Message, "cannot tell")
}

func TestSendInboundFallback(t *testing.T) {
	t.Run("refused then accepted", func(t *testing.T) {
		srv := &mailServer{TLS: validTLS(t)}
		first := refusedTarget(t)
		second := srv.start(t)
		o := sendOpts(t, PathInbound, first, second)
		o.Message, _ = testMessage(t)
		r := Send(context.Background(), o)
		assert.True(t, r.Accepted, r.Err)
		require.Len(t, r.Attempts, 2)
		assert.Equal(t, KindRefused, r.Attempts[0].ErrKind)
		assert.Equal(t, StageConnect, r.Attempts[0].Failed)
		assert.Empty(t, r.Attempts[1].Failed)
		assert.Equal(t, second.Subject(), r.Subject)
		require.NotNil(t, r.Target)
		assert.Equal(t, second.Port, r.Target.Port)
		f := r.Finding()
		assert.Equal(t, report.StatusPass, f.Status)
		assert.Len(t, f.Evidence["attempts"], 2)
	})
	t.Run("421 then accepted", func(t *testing.T) {
		first := script(t, func(c net.Conn, rd *bufio.Reader) { say(c, "421 4.7.0 too many connections") })
		srv := &mailServer{TLS: validTLS(t)}
		o := sendOpts(t, PathInbound, first, srv.start(t))
		o.Message, _ = testMessage(t)
		r := Send(context.Background(), o)
		assert.True(t, r.Accepted, r.Err)
		require.Len(t, r.Attempts, 2)
		assert.Equal(t, 421, r.Attempts[0].Code)
		assert.Equal(t, StageBanner, r.Attempts[0].Failed)
		assert.Len(t, srv.messages(), 1)
	})
	t.Run("none reachable", func(t *testing.T) {
		o := sendOpts(t, PathInbound, refusedTarget(t), refusedTarget(t))
		o.Message, _ = testMessage(t)
		r := Send(context.Background(), o)
		assert.Len(t, r.Attempts, 2)
		assert.Nil(t, r.Target)
		f := r.Finding()
		assert.Equal(t, report.StatusError, f.Status)
		assert.Contains(t, f.Message, "none of 2 servers")
	})
}

func TestSendQuitAfter(t *testing.T) {
	cases := []struct {
		quit  Stage
		stage Stage
		mails int
		want  string
	}{
		{StageConnect, StageBanner, 0, "greets"},
		{StageEHLO, StageEHLO, 0, "EHLO accepted"},
		{StageTLS, StageStartTLS, 0, "TLS works"},
		{StageMail, StageMail, 1, "MAIL accepted"},
		{StageRcpt, StageRcpt, 1, "RCPT accepted: " + testHost},
	}
	for _, c := range cases {
		t.Run(string(c.quit), func(t *testing.T) {
			srv := &mailServer{TLS: validTLS(t)}
			o := sendOpts(t, PathInbound, srv.start(t))
			o.QuitAfter = c.quit
			r := Send(context.Background(), o)
			assert.True(t, r.Accepted, r.Err)
			assert.Equal(t, int32(0), srv.dataCmds.Load(), "never DATA")
			assert.False(t, transcriptHas(r.Transcript, "C: DATA"))
			assert.True(t, transcriptHas(r.Transcript, "C: QUIT"), "polite end: %v", r.Transcript)
			assert.Equal(t, c.mails, srv.mails)
			f := r.Finding()
			assert.Equal(t, report.StatusPass, f.Status, f.Message)
			assert.Contains(t, f.Message, c.want)
			if c.quit == StageRcpt {
				assert.Contains(t, f.Message, "contoso.test")
				assert.True(t, transcriptHas(r.Transcript, "C: RSET"))
			}
		})
	}
}

func TestSendImplicitTLS(t *testing.T) {
	srv := &mailServer{TLS: validTLS(t), Implicit: true, User: "u@contoso.test", Pass: "Impl1cit-pass"}
	o := sendOpts(t, PathOutbound, srv.start(t))
	o.Message, _ = testMessage(t)
	o.Auth = &Auth{Username: "u@contoso.test", Password: "Impl1cit-pass"}
	r := Send(context.Background(), o)
	assert.True(t, r.Accepted, r.Err)
	assert.True(t, r.TLSUsed)
	require.NotNil(t, r.TLS)
	assert.True(t, r.TLS.Verified)
	assert.False(t, transcriptHas(r.Transcript, "C: STARTTLS"))
	assert.Contains(t, r.PhaseMS(), "handshake")
	assert.Len(t, srv.messages(), 1)
	noSecret(t, r, "u@contoso.test", "Impl1cit-pass")
}

func TestSendRefusesBadInput(t *testing.T) {
	dialed := false
	never := func(context.Context, string, string) (net.Conn, error) { dialed = true; return nil, net.ErrClosed }
	tgt := Target{Host: testHost, Addr: refusedTarget(t).Addr, Port: 25}
	msg, _ := testMessage(t)
	cases := map[string]func(*SendOptions){
		"no recipient":       func(o *SendOptions) { o.To = nil },
		"injected recipient": func(o *SendOptions) { o.To = []string{"a@contoso.test>\r\nRCPT TO:<evil@elsewhere.test"} },
		"bad recipient":      func(o *SendOptions) { o.To = []string{"not an address"} },
		"bad sender":         func(o *SendOptions) { o.From = "x@y\nz" },
		"no message":         func(o *SendOptions) { o.Message = nil },
		"no target":          func(o *SendOptions) { o.Targets = nil },
		"unknown path":       func(o *SendOptions) { o.Path = "sideways" },
		"unknown quit stage": func(o *SendOptions) { o.QuitAfter = "data-and-more" },
		"auth no password":   func(o *SendOptions) { o.Auth = &Auth{Username: "u"} },
		"auth bad mechanism": func(o *SendOptions) { o.Auth = &Auth{Username: "u", Password: "p", Mechanism: "cram-md5"} },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			o := sendOpts(t, PathInbound, tgt)
			o.Message, o.Dial = msg, never
			mod(&o)
			r := Send(context.Background(), o)
			assert.False(t, dialed, "nothing may be sent")
			assert.Equal(t, KindInvalid, r.ErrKind)
			assert.Contains(t, r.Err, "nothing sent")
			f := r.Finding()
			assert.Equal(t, report.StatusError, f.Status)
		})
	}
}

func TestSendHeloInjection(t *testing.T) {
	srv := &mailServer{TLS: validTLS(t)}
	o := sendOpts(t, PathInbound, srv.start(t))
	o.QuitAfter = StageEHLO
	o.HeloName = "ok.test\r\nMAIL FROM:<evil@x.test>"
	r := Send(context.Background(), o)
	assert.True(t, r.Accepted, r.Err)
	assert.Equal(t, 0, srv.mails)
	assert.True(t, transcriptHas(r.Transcript, "C: EHLO "+DefaultHeloName))
}

func TestSendSilentServerTimesOut(t *testing.T) {
	tgt := script(t, func(c net.Conn, r *bufio.Reader) { time.Sleep(3 * time.Second) })
	o := sendOpts(t, PathInbound, tgt)
	o.Timeouts.Banner = 300 * time.Millisecond
	o.Message, _ = testMessage(t)
	start := time.Now()
	r := Send(context.Background(), o)
	within(t, start, 2*time.Second)
	assert.Equal(t, StageBanner, r.Failed)
	assert.Equal(t, KindTimeout, r.ErrKind)
	assert.Equal(t, report.StatusError, r.Finding().Status)
}

func TestSendContextDeadline(t *testing.T) {
	tgt := script(t, func(c net.Conn, rd *bufio.Reader) {
		say(c, "220 mx.mfcheck.test ESMTP")
		readCmd(rd)
		time.Sleep(3 * time.Second) // never answers EHLO
	})
	o := sendOpts(t, PathInbound, tgt)
	o.Message, _ = testMessage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := Send(ctx, o)
	within(t, start, 1500*time.Millisecond)
	assert.Equal(t, StageEHLO, r.Failed)
	assert.Equal(t, KindCanceled, r.ErrKind)
}

func TestSendGarbageServer(t *testing.T) {
	tgt := script(t, func(c net.Conn, r *bufio.Reader) { say(c, "SSH-2.0-OpenSSH_9.6", "Protocol mismatch.") })
	o := sendOpts(t, PathInbound, tgt)
	o.Message, _ = testMessage(t)
	r := Send(context.Background(), o)
	assert.Equal(t, StageBanner, r.Failed)
	assert.NotEqual(t, KindReply, r.ErrKind)
	assert.Equal(t, report.StatusError, r.Finding().Status)
}

func TestSendDataRefused(t *testing.T) {
	srv := &mailServer{TLS: validTLS(t), DataErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message rejected by DMARC policy"}}
	o := sendOpts(t, PathInbound, srv.start(t))
	o.Message, _ = testMessage(t)
	r := Send(context.Background(), o)
	assert.Equal(t, StageData, r.Failed)
	assert.Equal(t, 550, r.Code)
	f := r.Finding()
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Message, "after DATA")
	assert.Contains(t, f.Message, "DMARC")
}

func fmtAll(v any) string {
	return strings.Join([]string{sprintf("%v", v), sprintf("%+v", v), sprintf("%#v", v), sprintf("%s", v)}, " ")
}
