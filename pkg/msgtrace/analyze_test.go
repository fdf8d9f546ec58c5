package msgtrace

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

func builtin(t *testing.T, id string) *profile.Profile {
	t.Helper()
	p, err := profile.Builtin().Get(id)
	require.NoError(t, err)
	return p
}

// fixedNow is a clock just after the fixtures' dates.
func fixedNow() time.Time { return utc("2026-12-01T12:00:00Z") }

func analyzeFile(t *testing.T, name string, o Options) *Trace {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	if o.Now == nil {
		o.Now = fixedNow
	}
	tr := Analyze(context.Background(), raw, o)
	require.NotNil(t, tr)
	validate(t, tr)
	return tr
}

// validate checks the findings against the report contract and that the
// trace serialises.
func validate(t *testing.T, tr *Trace) {
	t.Helper()
	r := report.New("contoso.example", "trace")
	r.Add(tr.Findings...)
	require.NoError(t, r.Validate())
	_, err := json.Marshal(tr)
	require.NoError(t, err)
}

// only returns the findings with id; it fails unless there is at least one.
func only(t *testing.T, tr *Trace, id string) []report.Finding {
	t.Helper()
	var out []report.Finding
	for _, f := range tr.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	require.NotEmpty(t, out, "no %s finding in %+v", id, tr.Findings)
	return out
}

func one(t *testing.T, tr *Trace, id string) report.Finding {
	t.Helper()
	fs := only(t, tr, id)
	require.Len(t, fs, 1, "%s findings: %+v", id, fs)
	return fs[0]
}

func gatewayOpts(t *testing.T) Options {
	return Options{Profile: builtin(t, "mimecast-eu"), Mailbox: builtin(t, "microsoft365")}
}

func TestAnalyzeThroughGateway(t *testing.T) {
	tr := analyzeFile(t, "through-gateway.eml", gatewayOpts(t))

	assert.Equal(t, "Bob <bob@fabrikam.example>", tr.From)
	assert.Equal(t, "mfcheck test – inbound", tr.Subject, "RFC 2047 decoded")
	assert.Equal(t, "mfc-7f3a9c2e", tr.Token)
	assert.Equal(t, "<20261201090000.4Abc1X2yZ3z9@fabrikam.example>", tr.MessageID)
	assert.True(t, tr.Date.Equal(utc("2026-12-01T09:00:00Z")))

	require.Len(t, tr.Hops, 4)
	for i, h := range tr.Hops {
		assert.Equal(t, i+1, h.Index)
		assert.Empty(t, h.ParseError)
	}
	assert.Equal(t, "mail.fabrikam.example", tr.Hops[0].By, "hop 1 is the bottom-most Received")
	assert.Nil(t, tr.Hops[0].DelayS)
	require.NotNil(t, tr.Hops[1].DelayS)
	assert.InDelta(t, 2.0, *tr.Hops[1].DelayS, 0.001)
	assert.InDelta(t, 2.0, *tr.Hops[2].DelayS, 0.001)
	assert.InDelta(t, 1.0, *tr.Hops[3].DelayS, 0.001)

	assert.False(t, tr.Hops[0].Gateway)
	assert.True(t, tr.Hops[1].Gateway, "by relay.mimecast.com")
	assert.Contains(t, tr.Hops[1].GatewayMatch, "vendor domain mimecast.com")
	assert.True(t, tr.Hops[2].Gateway, "from the gateway's range")
	assert.Contains(t, tr.Hops[2].GatewayMatch, "185.58.86.0/24")
	assert.True(t, tr.Hops[2].Mailbox)
	assert.True(t, tr.Hops[3].Mailbox)

	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusPass, g.Status, g.Message)
	assert.Contains(t, g.Message, "hop 2 of 4")
	assert.Contains(t, g.Message, "2026-12-01T09:00:02Z")
	assert.Contains(t, g.Message, "before it reached Microsoft 365")
	assert.Equal(t, 3, g.Evidence["mailbox_entry_hop"])
	assert.Equal(t, "inbound", g.Evidence["direction"])
	assert.InDelta(t, 5.0, g.Evidence["transit_s"], 0.001)
	assert.Len(t, g.Evidence["received"], 4)

	tl := one(t, tr, IDTLSHops)
	assert.Equal(t, report.StatusPass, tl.Status, tl.Message)
	assert.Contains(t, tl.Message, "4 of 4")

	ar := one(t, tr, IDAuthResults)
	assert.Equal(t, report.StatusPass, ar.Status, ar.Message)
	assert.Equal(t, true, ar.Evidence["assumed"])
	assert.Equal(t, "", ar.Evidence["trusted_authserv_id"], "Exchange Online writes no authserv-id")
	require.NotEmpty(t, tr.AuthResults)
	assert.Equal(t, "spf", tr.AuthResults[0].Method)
	assert.Equal(t, "fabrikam.example", tr.AuthResults[0].Props["smtp.mailfrom"])
	assert.True(t, tr.AuthResults[0].Trusted)

	dk := one(t, tr, IDDKIM)
	assert.Equal(t, report.StatusInfo, dk.Status, "unsigned")

	// No message-level problems.
	for _, f := range tr.Findings {
		assert.NotEqual(t, IDMessage, f.ID, f.Message)
	}
}

func TestAnalyzeBypass(t *testing.T) {
	tr := analyzeFile(t, "bypass.eml", gatewayOpts(t))
	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusFail, g.Status)
	assert.Contains(t, g.Message, "did not pass the gateway")
	assert.Contains(t, g.Message, "entered Microsoft 365 / Exchange Online Protection (worldwide) at hop 2 from mail.fabrikam.example [203.0.113.25]")
	assert.Contains(t, g.Remediation, "Partner inbound connector")
	for _, h := range tr.Hops {
		assert.False(t, h.Gateway, "hop %d", h.Index)
	}
	ar := one(t, tr, IDAuthResults)
	assert.Equal(t, report.StatusWarn, ar.Status, "dmarc pass on SPF only")
	assert.Contains(t, ar.Message, "dkim=none")
}

func TestAnalyzePlainHop(t *testing.T) {
	tr := analyzeFile(t, "plain-hop.eml", gatewayOpts(t))
	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusPass, g.Status, g.Message)
	assert.Contains(t, g.Message, "mx_hosts pattern eu-smtp-inbound-1.mimecast.com")

	tl := one(t, tr, IDTLSHops)
	assert.Equal(t, report.StatusWarn, tl.Status)
	assert.Contains(t, tl.Subject, "hop 1")
	assert.Contains(t, tl.Message, "relay.fabrikam.example")
	assert.Contains(t, tl.Message, "ESMTP without TLS")
	assert.Contains(t, tl.Remediation, "gateway")
}

func TestAnalyzeDMARCFail(t *testing.T) {
	tr := analyzeFile(t, "dmarc-fail.eml", gatewayOpts(t))
	ar := one(t, tr, IDAuthResults)
	assert.Equal(t, report.StatusFail, ar.Status)
	assert.Contains(t, ar.Message, "spf=fail dkim=fail dmarc=fail")
	assert.Contains(t, ar.Remediation, "Enhanced Filtering")
	hs, ok := ar.Evidence["headers"].([]authHeader)
	require.True(t, ok)
	require.Len(t, hs, 1)
	assert.Contains(t, hs[0].Raw, "compauth=fail")
}

func TestAnalyzePlatformBeforeGateway(t *testing.T) {
	tr := analyzeFile(t, "platform-first.eml", gatewayOpts(t))
	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusWarn, g.Status, g.Message)
	assert.Contains(t, g.Message, "reached Microsoft 365 / Exchange Online Protection (worldwide) at hop 1")
	assert.Contains(t, g.Message, "at hop 2")

	// Without the mailbox profile the order cannot be judged.
	o := gatewayOpts(t)
	o.Mailbox = nil
	tr = analyzeFile(t, "platform-first.eml", o)
	assert.Equal(t, report.StatusPass, one(t, tr, IDGatewayHop).Status)
}

func TestAnalyzeOutbound(t *testing.T) {
	tr := analyzeFile(t, "outbound.eml", gatewayOpts(t))
	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusPass, g.Status, g.Message)
	assert.Equal(t, "outbound", g.Evidence["direction"])
	assert.Contains(t, g.Message, "outbound smart-host name")
	_, hasEntry := g.Evidence["mailbox_entry_hop"]
	assert.False(t, hasEntry, "the platform's own hops are internal, not an entry: %v", g.Evidence["hops"])

	ar := one(t, tr, IDAuthResults)
	assert.Equal(t, report.StatusPass, ar.Status, ar.Message)
	assert.Equal(t, "mx.fabrikam.example", ar.Evidence["trusted_authserv_id"])
	assert.Equal(t, "selector1", tr.AuthResults[0].Props["header.s"], "props authres drops are kept")
}

func TestAnalyzeNoProfile(t *testing.T) {
	tr := analyzeFile(t, "through-gateway.eml", Options{})
	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusInfo, g.Status)
	for _, h := range tr.Hops {
		assert.False(t, h.Gateway)
	}
}

func TestAnalyzeGarbage(t *testing.T) {
	tr := analyzeFile(t, "garbage.eml", gatewayOpts(t))
	require.Len(t, tr.Findings, 1)
	assert.Equal(t, IDMessage, tr.Findings[0].ID)
	assert.Equal(t, report.StatusError, tr.Findings[0].Status)
	assert.Contains(t, tr.Findings[0].Message, "not an email message")

	tr = Analyze(context.Background(), nil, Options{})
	assert.Equal(t, report.StatusError, tr.Findings[0].Status)
}

func TestAnalyzeLabGateway(t *testing.T) {
	// The e2e lab's user profile: a Postfix gateway known by name and
	// a /32 range (test/e2e/testdata/gateway-profile.yaml).
	gw := &profile.Profile{ID: "lab-gateway", Name: "lab gateway", Kind: profile.KindGateway,
		MXHosts: []string{"mx-good.tls.test"}}
	msg := "Received: from cloud.tls.test (localhost [127.0.0.1]) by mailbox.tls.test (Postfix) with ESMTP id B; Tue, 1 Dec 2026 09:00:03 +0000 (UTC)\r\n" +
		"Received: from client.tls.test (localhost [127.0.0.1]) by mx-good.tls.test (Postfix) with ESMTPS id A; Tue, 1 Dec 2026 09:00:01 +0000 (UTC)\r\n" +
		"From: a@b.test\r\nSubject: lab\r\n\r\nbody\r\n"
	tr := Analyze(context.Background(), []byte(msg), Options{Profile: gw, Now: fixedNow})
	validate(t, tr)
	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusPass, g.Status, g.Message)
	tl := one(t, tr, IDTLSHops)
	assert.Equal(t, report.StatusWarn, tl.Status)
	assert.Contains(t, tl.Message, "loopback address 127.0.0.1", "a loopback hop is judged but explained")
}

// A user profile's hosts may live in the customer's own domain: another
// host there (the cloud endpoint) is not the gateway. Only built-in
// profiles, whose names are the vendor's, widen to the vendor domain.
func TestUserProfileHasNoVendorDomain(t *testing.T) {
	gw := &profile.Profile{ID: "lab-gateway", Name: "lab gateway", Kind: profile.KindGateway,
		MXHosts: []string{"mx-good.tls.test"}}
	msg := "Received: from client.tls.test (client.tls.test [192.0.2.9]) by cloud-open.tls.test (Postfix) with ESMTPS id A; Tue, 1 Dec 2026 09:00:01 +0000 (UTC)\r\n" +
		"From: a@b.test\r\nSubject: bypass\r\n\r\nbody\r\n"
	tr := Analyze(context.Background(), []byte(msg), Options{Profile: gw, Now: fixedNow})
	validate(t, tr)
	assert.Equal(t, report.StatusFail, one(t, tr, IDGatewayHop).Status, "cloud-open.tls.test shares the domain, not the role")

	builtinGW := builtin(t, "mimecast-eu")
	msg = strings.ReplaceAll(msg, "cloud-open.tls.test", "relay.mimecast.com")
	tr = Analyze(context.Background(), []byte(msg), Options{Profile: builtinGW, Now: fixedNow})
	g := one(t, tr, IDGatewayHop)
	assert.Equal(t, report.StatusPass, g.Status, g.Message)
	assert.Contains(t, g.Message, "vendor domain mimecast.com")
}

func TestAnalyzeClockSkewAndParseErrors(t *testing.T) {
	msg := "Received: from b.example (b.example [192.0.2.2]) by c.example with ESMTPS id 2; Tue, 1 Dec 2026 08:59:00 +0000\n" +
		"Received: from a.example (a.example [192.0.2.1]) by b.example with ESMTPS id 1; Tue, 1 Dec 2026 09:00:00 +0000\n" +
		"Received: garbage (with no structure\n" +
		"Received: from z.example by a.example with ESMTPS; Tue, 1 Dec 2027 09:00:00 +0000\n" +
		"From: x@a.example\n\nbody\n"
	tr := Analyze(context.Background(), []byte(msg), Options{Now: fixedNow})
	validate(t, tr)
	require.Len(t, tr.Hops, 4)
	require.NotNil(t, tr.Hops[3].DelayS)
	assert.InDelta(t, -60.0, *tr.Hops[3].DelayS, 0.001, "negative delays are kept")
	m := one(t, tr, IDMessage)
	assert.Equal(t, report.StatusWarn, m.Status)
	assert.Contains(t, m.Message, "1 of 4 Received fields could not be fully read")
	assert.Contains(t, m.Message, "clock skew")
	skew := m.Evidence["clock_skew"].([]string)
	assert.Contains(t, strings.Join(skew, "\n"), "hop 4 (from b.example [192.0.2.2] by c.example) is 60 s before hop 3")
	assert.Contains(t, strings.Join(skew, "\n"), "in the future")
}

func TestAnalyzeTooManyHops(t *testing.T) {
	var b strings.Builder
	for i := 0; i < MaxHops+20; i++ {
		b.WriteString("Received: from a.example by b.example with ESMTPS; Tue, 1 Dec 2026 09:00:00 +0000\n")
	}
	b.WriteString("From: x@a.example\n\nbody\n")
	tr := Analyze(context.Background(), []byte(b.String()), Options{Now: fixedNow})
	validate(t, tr)
	assert.Len(t, tr.Hops, MaxHops)
	assert.Equal(t, MaxHops+20, tr.ReceivedCount)
	assert.Contains(t, one(t, tr, IDMessage).Message, "mail loop")
	assert.Len(t, one(t, tr, IDGatewayHop).Evidence["received"], maxRawEvidence, "raw evidence is bounded")
}

func TestAnalyzeNoReceived(t *testing.T) {
	tr := Analyze(context.Background(), []byte("From: x@a.example\nSubject: s\n\nbody\n"), gatewayOpts(t))
	validate(t, tr)
	assert.Equal(t, report.StatusFail, one(t, tr, IDGatewayHop).Status)
	assert.Equal(t, report.StatusInfo, one(t, tr, IDTLSHops).Status)
	assert.Equal(t, report.StatusWarn, one(t, tr, IDAuthResults).Status)
}

func TestTraceReport(t *testing.T) {
	tr := analyzeFile(t, "through-gateway.eml", gatewayOpts(t))
	rt := tr.Report("testdata/through-gateway.eml")
	assert.Equal(t, "mfc-7f3a9c2e", rt.Token)
	assert.Equal(t, "2026-12-01T09:00:00Z", rt.Date)
	require.Len(t, rt.Hops, 4)
	assert.True(t, rt.Hops[1].Gateway)
	assert.Equal(t, "TLSv1.3", rt.Hops[1].TLSVersion)
	assert.Equal(t, "TLS_AES_256_GCM_SHA384", rt.Hops[1].Cipher)
	assert.Equal(t, "2026-12-01T09:00:02Z", rt.Hops[1].Time)
	require.NotNil(t, rt.Hops[1].DelayS)

	r := report.New("contoso.example", "trace")
	r.Trace = rt
	r.Add(tr.Findings...)
	var buf strings.Builder
	require.NoError(t, json.NewEncoder(&buf).Encode(r))
	assert.Contains(t, buf.String(), `"gateway":true`)
}
