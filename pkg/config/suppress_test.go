package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/config"
	"github.com/mfcheck/mfcheck/pkg/report"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func runReport() *report.Report {
	rep := report.New("contoso.com", "health")
	rep.Add(
		report.Finding{ID: "spf.ptr", Status: report.StatusWarn, Subject: "contoso.com", Message: "ptr"},
		report.Finding{ID: "tls.cert-expiry", Status: report.StatusWarn, Subject: "eu-smtp-inbound-1.mimecast.com [185.58.85.10]"},
		report.Finding{ID: "tls.cert-expiry", Status: report.StatusFail, Subject: "EU-SMTP-Inbound-2.mimecast.com [185.58.86.10]"},
		report.Finding{ID: "tls.cert-expiry", Status: report.StatusFail, Subject: "relay.contoso.com [198.51.100.25]"},
		report.Finding{ID: "mx.present", Status: report.StatusPass, Subject: "contoso.com"},
		report.Finding{ID: "dmarc.policy", Status: report.StatusPass, Subject: "contoso.com"},
	)
	rep.Finalize()
	return rep
}

func find(rep *report.Report, id, subject string) *report.Finding {
	for i := range rep.Findings {
		if rep.Findings[i].ID == id && rep.Findings[i].Subject == subject {
			return &rep.Findings[i]
		}
	}
	return nil
}

func TestApplySuppressions(t *testing.T) {
	d := config.Domain{Name: "contoso.com", Suppress: []config.Suppression{
		{ID: "spf.ptr", Subject: "contoso.com", Reason: "legacy relay", Expires: day("2027-01-31"), Line: 12},
		{ID: "tls.cert-expiry", Subject: "eu-smtp-inbound-*", Reason: "Mimecast renews on the 1st", Expires: day("2027-01-31"), Line: 16},
		{ID: "tls.cert-expiry", Subject: "relay.contoso.com [198.51.100.25]", Reason: "old relay", Expires: day("2027-01-30"), Line: 20},
		{ID: "dkim.selectors", Reason: "selector rotated", Expires: day("2027-01-31"), Line: 24},
		{ID: "dmarc.policy", Reason: "p=none while we collect reports", Expires: day("2027-01-31"), Line: 28},
	}}
	rep := runReport()
	// The last moment of 2027-01-31 in UTC: still active.
	now := time.Date(2027, 1, 31, 23, 59, 59, 0, time.UTC)
	d.ApplySuppressions(rep, now, "conf/mfcheck.yaml")

	assert.Equal(t, &report.Suppression{Reason: "legacy relay", Expires: "2027-01-31", Source: "conf/mfcheck.yaml:12"},
		find(rep, "spf.ptr", "contoso.com").Suppressed, "active on the last second of its day")
	src16 := &report.Suppression{Reason: "Mimecast renews on the 1st", Expires: "2027-01-31", Source: "conf/mfcheck.yaml:16"}
	assert.Equal(t, src16, find(rep, "tls.cert-expiry", "eu-smtp-inbound-1.mimecast.com [185.58.85.10]").Suppressed)
	assert.Equal(t, src16, find(rep, "tls.cert-expiry", "EU-SMTP-Inbound-2.mimecast.com [185.58.86.10]").Suppressed,
		"prefix match, case-insensitive")
	assert.Nil(t, find(rep, "tls.cert-expiry", "relay.contoso.com [198.51.100.25]").Suppressed, "expired: suppresses nothing")
	assert.Nil(t, find(rep, "dmarc.policy", "contoso.com").Suppressed, "a pass finding is never suppressed")

	expired := find(rep, config.IDSuppressionExpired, "tls.cert-expiry for relay.contoso.com [198.51.100.25]")
	require.NotNil(t, expired)
	assert.Equal(t, report.StatusWarn, expired.Status)
	assert.Equal(t, "The suppression of tls.cert-expiry for relay.contoso.com [198.51.100.25] (conf/mfcheck.yaml:20) expired on 2027-01-30; it was accepted because: old relay", expired.Message)
	assert.Equal(t, "fix the finding or extend the expiry with a new reason", expired.Remediation)
	assert.Equal(t, map[string]any{"source": "conf/mfcheck.yaml:20", "id": "tls.cert-expiry", "subject": "relay.contoso.com [198.51.100.25]",
		"reason": "old relay", "expires": "2027-01-30"}, expired.Evidence)

	unused := find(rep, config.IDSuppressionUnused, "dkim.selectors")
	require.NotNil(t, unused, "matched no finding at all")
	assert.Equal(t, report.StatusInfo, unused.Status)
	assert.Equal(t, "The suppression of dkim.selectors (conf/mfcheck.yaml:24, until 2027-01-31) matched no finding of this run that is not pass", unused.Message)
	assert.NotNil(t, find(rep, config.IDSuppressionUnused, "dmarc.policy"), "matched only a pass finding: the problem is fixed")

	// Finalize ran: 3 suppressed, and the rest counted: tls fail (the
	// relay), the expired warn, mx and dmarc pass, 2 unused info.
	assert.Equal(t, 3, rep.Summary.Suppressed)
	assert.Equal(t, report.StatusFail, rep.Summary.Worst)
	assert.Equal(t, map[report.Status]int{report.StatusFail: 1, report.StatusWarn: 1, report.StatusInfo: 2, report.StatusPass: 2, report.StatusError: 0},
		rep.Summary.Counts)
	require.NoError(t, rep.Validate(), "the config IDs are valid finding IDs")

	// Finalize is idempotent: running it again changes nothing.
	before := *rep
	before.Findings = append([]report.Finding(nil), rep.Findings...)
	rep.Finalize()
	assert.Equal(t, before.Findings, rep.Findings)
	assert.Equal(t, before.Summary, rep.Summary)
}

func TestApplySuppressionsExpiryBoundary(t *testing.T) {
	d := config.Domain{Suppress: []config.Suppression{{ID: "spf.ptr", Reason: "r", Expires: day("2027-01-31"), Line: 3}}}
	for _, tt := range []struct {
		now        time.Time
		suppressed bool
	}{
		{time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2027, 1, 31, 23, 59, 59, 999, time.UTC), true},
		{time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), false},
		// 23:30 on the 31st in New York is already the 1st in UTC.
		{time.Date(2027, 1, 31, 23, 30, 0, 0, time.FixedZone("EST", -5*3600)), false},
	} {
		rep := runReport()
		d.ApplySuppressions(rep, tt.now, "mfcheck.yaml")
		f := find(rep, "spf.ptr", "contoso.com")
		assert.Equal(t, tt.suppressed, f.Suppressed != nil, "at %v", tt.now)
		assert.Equal(t, !tt.suppressed, find(rep, config.IDSuppressionExpired, "spf.ptr") != nil, "at %v", tt.now)
	}
}

func TestApplySuppressionsWorstDrops(t *testing.T) {
	rep := report.New("contoso.com", "health")
	rep.Add(report.Finding{ID: "spf.ptr", Status: report.StatusFail, Subject: "contoso.com"},
		report.Finding{ID: "mx.present", Status: report.StatusPass, Subject: "contoso.com"})
	rep.Finalize()
	require.Equal(t, report.StatusFail, rep.Summary.Worst)
	d := config.Domain{Suppress: []config.Suppression{{ID: "spf.ptr", Reason: "r", Expires: day("2027-01-31"), Line: 3}}}
	d.ApplySuppressions(rep, day("2026-12-01"), "mfcheck.yaml")
	assert.Equal(t, report.StatusPass, rep.Summary.Worst, "a suppressed finding counts toward neither worst nor exit code")
	assert.Equal(t, 1, rep.Summary.Suppressed)
	assert.Equal(t, 0, report.ExitCode(report.StatusFail, rep))
}

func TestApplySuppressionsNone(t *testing.T) {
	rep := runReport()
	want := append([]report.Finding(nil), rep.Findings...)
	config.Domain{}.ApplySuppressions(rep, time.Now(), "mfcheck.yaml")
	assert.Equal(t, want, rep.Findings)
	config.Domain{}.ApplySuppressions(nil, time.Now(), "mfcheck.yaml") // no panic
}

func TestSuppressionsFromFile(t *testing.T) {
	data := doc("suppress:",
		"  - id: spf.ptr",
		"    subject: contoso.com",
		"    reason: legacy relay, being retired",
		"    expires: 2027-01-31")
	f, err := config.Parse([]byte(data), "mfcheck.yaml", nil)
	require.NoError(t, err)
	rep := runReport()
	f.Domains[0].ApplySuppressions(rep, day("2026-12-01"), f.Path)
	assert.Equal(t, &report.Suppression{Reason: "legacy relay, being retired", Expires: "2027-01-31", Source: "mfcheck.yaml:6"},
		find(rep, "spf.ptr", "contoso.com").Suppressed, "the source is the entry's line")
}
