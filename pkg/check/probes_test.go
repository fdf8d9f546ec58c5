package check_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/lab"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
	"github.com/mfcheck/mfcheck/pkg/smtpprobe"
)

func labRun(t *testing.T, smtp check.SMTPConfig) (*lab.World, *report.Report) {
	t.Helper()
	return labRunMode(t, mx.ModeSmoke, smtp, check.SendConfig{})
}

func labRunMode(t *testing.T, mode string, smtp check.SMTPConfig, send check.SendConfig) (*lab.World, *report.Report) {
	t.Helper()
	w, err := lab.Start()
	require.NoError(t, err)
	t.Cleanup(w.Close)
	c, err := resolver.New(resolver.Config{Servers: []string{w.Resolver}})
	require.NoError(t, err)
	p, err := profile.Builtin().Get(lab.Profile)
	require.NoError(t, err)
	smtp.Port = w.SMTPPort
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep := check.Run(ctx, check.Config{
		Domain: lab.Domain, Mode: mode, Profile: p, Profiles: profile.Builtin(), NSPort: w.NSPort,
		SMTP: smtp, Policy: check.PolicyConfig{HTTPSPort: w.HTTPSPort}, Roots: w.Roots, Send: send,
	}, check.Deps{DNS: c})
	return w, rep
}

func findingsOf(rep *report.Report) map[string]report.Finding {
	out := map[string]report.Finding{}
	for _, f := range rep.Findings {
		out[f.ID+" "+f.Subject] = f
	}
	return out
}

// A check of the demo world probes every MX address and every smart host
// of the profile, and its rows and findings say what each lab host was
// built to show.
func TestRunProbesMXAndSmartHosts(t *testing.T) {
	w, rep := labRun(t, check.SMTPConfig{})
	port := func(host, addr string) string { return host + " [" + addr + "]:" + strconv.Itoa(w.SMTPPort) }

	got := map[string]report.TLSEndpoint{}
	var order []string
	for _, e := range rep.TLS {
		got[e.Endpoint()] = e
		order = append(order, e.Role)
	}
	// MX hosts first (by preference), then the smart hosts.
	assert.Equal(t, []string{"mx", "mx", "mx", "mx", "smart-host", "smart-host", "smart-host", "smart-host"}, order)
	want := map[string]string{
		port("eu-smtp-inbound-1.mimecast.com", "127.0.55.31"):              "verified",
		port("eu-smtp-inbound-2.mimecast.com", "127.0.55.32"):              "verified",
		port("contoso-example.mail.protection.outlook.com", "127.0.55.20"): "verified",
		port("eu-smtp-o365-outbound-1.mimecast.com", "127.0.55.41"):        "verified",
		port("eu-smtp-o365-outbound-2.mimecast.com", "127.0.55.42"):        "untrusted",
		port("eu-smtp-outbound-1.mimecast.com", "127.0.55.43"):             "verified",
		port("eu-smtp-outbound-2.mimecast.com", "127.0.55.44"):             "verified",
	}
	for ep, verdict := range want {
		if assert.Contains(t, got, ep) {
			assert.Equal(t, verdict, got[ep].Verdict, "%s: %s", ep, got[ep].Reason)
		}
	}
	assert.Equal(t, "missing-intermediate", got[port("eu-smtp-o365-outbound-2.mimecast.com", "127.0.55.42")].Reason)
	assert.Equal(t, "none", got[port("eu-smtp-inbound-1.mimecast.com", "127.0.55.31")].DANE, "MX hosts get a DANE outcome")
	assert.Empty(t, got[port("eu-smtp-outbound-1.mimecast.com", "127.0.55.43")].DANE, "smart hosts do not (RFC 7672 is about MX)")

	fs := findingsOf(rep)
	assert.Equal(t, report.StatusWarn, fs["tls.cert-expiry "+port("eu-smtp-inbound-2.mimecast.com", "127.0.55.32")].Status)
	assert.Equal(t, report.StatusFail, fs["tls.cert-chain "+port("eu-smtp-o365-outbound-2.mimecast.com", "127.0.55.42")].Status)
	assert.Equal(t, report.StatusPass, fs["tls.starttls-offered "+port("eu-smtp-outbound-2.mimecast.com", "127.0.55.44")].Status)
	// The policy part ran on the same world: the MTA-STS policy (testing)
	// does not cover the leftover Microsoft 365 MX, and the mail platform
	// (Microsoft 365, from the MX and SPF) names the DKIM selectors.
	assert.Equal(t, report.StatusWarn, fs["mtasts.mx-match contoso-example.mail.protection.outlook.com"].Status)
	assert.Equal(t, report.StatusPass, fs["dkim.selectors selector1._domainkey.contoso.example"].Status)
	assert.Equal(t, report.StatusWarn, fs["dkim.selectors selector2._domainkey.contoso.example"].Status, "the lab's 1024-bit key")
	assert.Equal(t, report.StatusWarn, fs["dmarc.policy contoso.example"].Status)
	assert.Zero(t, rep.Summary.Errors, "nothing in the lab is unreachable")
}

// --no-smtp lists the endpoints as skipped, makes no connection (no tls.*
// finding from a probe) and says so in the notes.
func TestRunNoSMTP(t *testing.T) {
	_, rep := labRun(t, check.SMTPConfig{Skip: true})
	require.Len(t, rep.TLS, 8)
	for _, e := range rep.TLS {
		assert.Equal(t, "skipped", e.Verdict, e.Endpoint())
	}
	for _, f := range rep.Findings {
		assert.NotContains(t, []string{"tls.banner", "tls.starttls-offered", "tls.dane", "tls.cert-chain"}, f.ID)
	}
	assert.Contains(t, rep.Notes[len(rep.Notes)-1], "No SMTP connection was made (--no-smtp, or bulk without --smtp): the 8 endpoints")
}

// A smart host the user names is probed beside the profile's, and one
// that does not resolve is a finding of its own.
func TestRunExtraSmartHosts(t *testing.T) {
	_, rep := labRun(t, check.SMTPConfig{SmartHosts: []check.HostPort{{Host: "eu-smtp-inbound-1.mimecast.com"}, {Host: "relay.gone.example"}}})
	fs := findingsOf(rep)
	assert.Equal(t, report.StatusFail, fs["tls.resolve relay.gone.example"].Status, "a name the user gave that does not exist")
	n := 0
	for _, e := range rep.TLS {
		if e.Host == "eu-smtp-inbound-1.mimecast.com" {
			n++
		}
	}
	assert.Equal(t, 2, n, "probed as an MX and as the user's smart host")
}

func TestRunTLSOneHost(t *testing.T) {
	w, err := lab.Start()
	require.NoError(t, err)
	defer w.Close()
	c, err := resolver.New(resolver.Config{Servers: []string{w.Resolver}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep := check.RunTLS(ctx, check.TLSConfig{Host: check.HostPort{Host: "eu-smtp-o365-outbound-2.mimecast.com", Port: w.SMTPPort},
		Role: smtpprobe.RoleSmartHost, Roots: w.Roots}, check.Deps{DNS: c})
	assert.Equal(t, "eu-smtp-o365-outbound-2.mimecast.com", rep.Domain)
	require.Len(t, rep.TLS, 1)
	assert.Equal(t, "untrusted", rep.TLS[0].Verdict)
	assert.Equal(t, report.StatusFail, rep.Summary.Worst)

	rep = check.RunTLS(ctx, check.TLSConfig{Host: check.HostPort{Host: "nowhere.mimecast.com"}, Role: smtpprobe.RoleMX}, check.Deps{DNS: c})
	require.Len(t, rep.Findings, 1)
	assert.Equal(t, "tls.resolve", rep.Findings[0].ID)
	assert.Equal(t, report.StatusFail, rep.Findings[0].Status)
	assert.NotContains(t, rep.Findings[0].Message, "smart host", "worded for the role")
}

// Readiness asks the gateway's inbound hosts whether they accept mail for
// the domain (RCPT only: the lab stores no message); smoke runs the bypass
// test without --send and says the inbound message was not sent.
func TestModePlans(t *testing.T) {
	w, rep := labRunMode(t, mx.ModeReadiness, check.SMTPConfig{}, check.SendConfig{})
	fs := findingsOf(rep)
	port := ":" + strconv.Itoa(w.SMTPPort)
	for _, h := range []string{"eu-smtp-inbound-1.mimecast.com [127.0.55.31]", "eu-smtp-inbound-2.mimecast.com [127.0.55.32]"} {
		f, ok := fs["send.gateway-accepts "+h+port]
		if assert.True(t, ok, "%s probed: %v", h, rep.Findings) {
			assert.Equal(t, report.StatusPass, f.Status, f.Message)
			assert.Contains(t, f.Message, "accepts mail for "+lab.Domain)
		}
	}
	assert.Empty(t, w.Messages(), "RCPT only: no message reached the lab")
	for _, f := range rep.Findings {
		assert.NotEqual(t, "bypass.direct-delivery", f.ID, "readiness does not test the lock-down")
	}

	w, rep = labRunMode(t, mx.ModeSmoke, check.SMTPConfig{}, check.SendConfig{})
	fs = findingsOf(rep)
	assert.Equal(t, report.StatusFail, fs["bypass.direct-delivery contoso-example.mail.protection.outlook.com [127.0.55.20]:"+strconv.Itoa(w.SMTPPort)].Status,
		"smoke tests the lock-down even without --send: %v", rep.Findings)
	assert.Equal(t, report.StatusInfo, fs["send.inbound "+lab.Domain].Status)
	assert.Empty(t, w.Messages())

	_, rep = labRunMode(t, mx.ModeHealth, check.SMTPConfig{}, check.SendConfig{})
	for _, f := range rep.Findings {
		assert.False(t, strings.HasPrefix(f.ID, "send.") || strings.HasPrefix(f.ID, "bypass."), "health sends nothing unasked: %s", f.ID)
	}
}
