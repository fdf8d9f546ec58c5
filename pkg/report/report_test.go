package report

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ids(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID+" "+f.Subject)
	}
	return out
}

func TestNew(t *testing.T) {
	r := New("contoso.com", "smoke")
	assert.Equal(t, Schema, r.Schema)
	assert.Equal(t, "mfcheck", r.Tool.Name)
	assert.Equal(t, "contoso.com", r.Domain)
	assert.Equal(t, "smoke", r.Mode)
	assert.False(t, r.StartedAt.IsZero())
	require.NotNil(t, r.Findings)

	// An empty report still encodes findings as [] (not null) and a full
	// summary, so consumers never special-case a clean run.
	var buf bytes.Buffer
	require.NoError(t, WriteJSONLine(&buf, r))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	assert.Equal(t, []any{}, doc["findings"])
	assert.Equal(t, "pass", doc["summary"].(map[string]any)["worst"])
}

func TestFinalizeOrder(t *testing.T) {
	r := contoso()
	r.Finalize()
	assert.Equal(t, []string{
		// mx: worst first, then ID
		"mx.at-gateway contoso.com",
		"mx.ttl contoso.com",
		"mx.present contoso.com",
		"spf.lookup-limit contoso.com",
		"spf.present contoso.com",
		"dmarc.policy contoso.com",
		// tls: error ranks above everything; equal status and ID sort by subject
		"tls.handshake eu-smtp-inbound-2.mimecast.com [91.220.42.11]",
		"tls.cert-expiry eu-smtp-inbound-1.mimecast.com [185.58.85.10]",
		"tls.cert-expiry eu-smtp-inbound-2.mimecast.com [91.220.42.11]",
		"send.inbound probe@contoso.com",
		// unknown areas last, alphabetically
		"acme.custom ",
		"zz.experimental contoso.com",
	}, ids(r))

	assert.Equal(t, Summary{
		Worst:  StatusFail,
		Counts: map[Status]int{StatusPass: 4, StatusInfo: 2, StatusWarn: 2, StatusFail: 3, StatusError: 1},
		Errors: 1,
	}, r.Summary)
}

func TestFinalizeAreaOrder(t *testing.T) {
	r := New("d", "m")
	for _, id := range []string{"zeta.x", "trace.x", "bypass.x", "send.x", "allowlist.x", "tls.x", "dkim.x", "tlsrpt.x", "mtasts.x", "dmarc.x", "spf.x", "mx.x", "alpha.x"} {
		r.Add(Finding{ID: id, Status: StatusPass})
	}
	r.Finalize()
	assert.Equal(t, []string{"mx.x ", "spf.x ", "dmarc.x ", "mtasts.x ", "tlsrpt.x ", "dkim.x ", "tls.x ", "allowlist.x ", "send.x ", "bypass.x ", "trace.x ", "alpha.x ", "zeta.x "}, ids(r))
}

func TestFinalizeStatusOrderAndStability(t *testing.T) {
	r := New("d", "m")
	r.Add(
		Finding{ID: "mx.a", Status: StatusPass, Message: "first"},
		Finding{ID: "mx.a", Status: StatusInfo},
		Finding{ID: "mx.a", Status: StatusPass, Message: "second"},
		Finding{ID: "mx.a", Status: StatusWarn},
		Finding{ID: "mx.a", Status: StatusFail},
		Finding{ID: "mx.a", Status: StatusError},
		Finding{ID: "mx.a", Status: StatusPass, Message: "third"},
	)
	r.Finalize()
	var got []string
	for _, f := range r.Findings {
		got = append(got, string(f.Status)+":"+f.Message)
	}
	assert.Equal(t, []string{"error:", "fail:", "warn:", "info:", "pass:first", "pass:second", "pass:third"}, got)
}

func TestFinalizeIdempotent(t *testing.T) {
	r := contoso()
	r.Finalize()
	first, err := json.Marshal(r)
	require.NoError(t, err)
	r.Finalize()
	second, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, string(first), string(second))
}

func TestFinalizeSummary(t *testing.T) {
	tests := []struct {
		name   string
		in     []Status
		worst  Status
		errors int
	}{
		{"empty", nil, StatusPass, 0},
		{"only pass", []Status{StatusPass, StatusPass}, StatusPass, 0},
		{"info", []Status{StatusPass, StatusInfo}, StatusInfo, 0},
		{"warn beats info", []Status{StatusInfo, StatusWarn, StatusPass}, StatusWarn, 0},
		{"fail beats warn", []Status{StatusWarn, StatusFail}, StatusFail, 0},
		// error is not a domain status: it never raises Worst
		{"error only", []Status{StatusError, StatusError}, StatusPass, 2},
		{"error and warn", []Status{StatusError, StatusWarn}, StatusWarn, 1},
		{"unknown ignored", []Status{"bogus", StatusInfo}, StatusInfo, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New("d", "m")
			want := map[Status]int{StatusPass: 0, StatusInfo: 0, StatusWarn: 0, StatusFail: 0, StatusError: 0}
			for _, st := range tt.in {
				r.Add(Finding{ID: "mx.x", Status: st})
				if _, ok := want[st]; ok {
					want[st]++
				}
			}
			r.Finalize()
			assert.Equal(t, tt.worst, r.Summary.Worst)
			assert.Equal(t, tt.errors, r.Summary.Errors)
			assert.Equal(t, want, r.Summary.Counts)
		})
	}
}

func TestRenderDoesNotModifyReport(t *testing.T) {
	r := contoso()
	before := ids(r)
	for _, f := range Formats() {
		require.NoError(t, Render(io.Discard, f, Options{}, r))
	}
	assert.Equal(t, before, ids(r))
	assert.Nil(t, r.Summary.Counts)
}

func TestValidate(t *testing.T) {
	r := contoso()
	assert.NoError(t, r.Validate())
	r.Add(Finding{ID: "NoDots", Status: StatusPass}, Finding{ID: "mx.ok", Status: "bogus"})
	err := r.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"NoDots"`)
	assert.Contains(t, err.Error(), `"bogus"`)
}

func TestExitCode(t *testing.T) {
	rep := func(sts ...Status) *Report {
		r := New("d", "m")
		for _, st := range sts {
			r.Add(Finding{ID: "mx.x", Status: st})
		}
		return r
	}
	tests := []struct {
		name    string
		failOn  Status
		reports []*Report
		want    int
	}{
		{"no reports", StatusFail, nil, ExitOK},
		{"no findings", StatusFail, []*Report{rep()}, ExitOK},
		{"all pass", StatusFail, []*Report{rep(StatusPass, StatusPass)}, ExitOK},
		{"warn below fail", StatusFail, []*Report{rep(StatusWarn, StatusInfo)}, ExitOK},
		{"fail at fail", StatusFail, []*Report{rep(StatusPass, StatusFail)}, ExitFindings},
		{"warn at warn", StatusWarn, []*Report{rep(StatusWarn)}, ExitFindings},
		{"fail above warn", StatusWarn, []*Report{rep(StatusFail)}, ExitFindings},
		{"info below warn", StatusWarn, []*Report{rep(StatusInfo)}, ExitOK},
		{"info at info", StatusInfo, []*Report{rep(StatusInfo)}, ExitFindings},
		{"pass below info", StatusInfo, []*Report{rep(StatusPass)}, ExitOK},
		{"error only", StatusFail, []*Report{rep(StatusError)}, ExitIncomplete},
		{"error only, fail-on info", StatusInfo, []*Report{rep(StatusError)}, ExitIncomplete},
		{"error and warn below fail", StatusFail, []*Report{rep(StatusError, StatusWarn)}, ExitIncomplete},
		// a real failure outranks "could not check", whichever comes first
		{"error then fail", StatusFail, []*Report{rep(StatusError, StatusFail)}, ExitFindings},
		{"fail then error", StatusFail, []*Report{rep(StatusFail, StatusError)}, ExitFindings},
		{"bulk: fail in second report", StatusFail, []*Report{rep(StatusPass), rep(StatusFail)}, ExitFindings},
		{"bulk: error in one report", StatusFail, []*Report{rep(StatusPass), rep(StatusError)}, ExitIncomplete},
		{"nil report skipped", StatusFail, []*Report{nil, rep(StatusPass)}, ExitOK},
		{"zero failOn means fail", "", []*Report{rep(StatusWarn)}, ExitOK},
		{"zero failOn, fail", "", []*Report{rep(StatusFail)}, ExitFindings},
		{"pass failOn treated as fail", StatusPass, []*Report{rep(StatusPass, StatusWarn)}, ExitOK},
		{"unknown status is neither", StatusInfo, []*Report{rep("bogus")}, ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ExitCode(tt.failOn, tt.reports...))
		})
	}
	assert.Equal(t, 2, ExitUsage)
}

func TestParseFailOn(t *testing.T) {
	tests := []struct {
		in      string
		want    Status
		wantErr bool
	}{
		{"info", StatusInfo, false},
		{"warn", StatusWarn, false},
		{"fail", StatusFail, false},
		{" WARN ", StatusWarn, false},
		{"pass", "", true},
		{"error", "", true},
		{"", "", true},
		{"warning", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFailOn(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"table", FormatTable, false},
		{"json", FormatJSON, false},
		{"junit", FormatJUnit, false},
		{"markdown", FormatMarkdown, false},
		{"JSON", FormatJSON, false},
		{"yaml", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	assert.Error(t, Render(io.Discard, "yaml", Options{}, contoso()))
	assert.Error(t, Render(io.Discard, FormatJSON, Options{}, contoso(), nil))
	assert.Error(t, WriteJSONLine(io.Discard, nil))
}

func TestColorFor(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer f.Close()

	t.Setenv("TERM", "xterm-256color")
	t.Setenv("NO_COLOR", "1")
	assert.False(t, ColorFor(f), "NO_COLOR set")
	t.Setenv("NO_COLOR", "")
	assert.False(t, ColorFor(f), "a regular file is not a terminal")
	assert.False(t, ColorFor(nil))
}

// A suppressed finding keeps its status but raises neither the worst
// status nor the exit code; every renderer says it is suppressed.
func TestSuppressedFinding(t *testing.T) {
	r := New("contoso.com", "health")
	r.Add(Finding{ID: "tls.cert-expiry", Status: StatusFail, Subject: "legacy.contoso.com [192.0.2.25]", Message: "expired",
		Suppressed: &Suppression{Reason: "legacy relay, retired in January", Expires: "2027-01-31", Source: "mfcheck.yaml:12"}})
	r.Add(Finding{ID: "mx.present", Status: StatusPass, Subject: "contoso.com", Message: "one MX"})
	r.Finalize()
	assert.Equal(t, StatusPass, r.Summary.Worst)
	assert.Equal(t, 1, r.Summary.Suppressed)
	assert.Zero(t, r.Summary.Counts[StatusFail])
	assert.Equal(t, ExitOK, ExitCode(StatusFail, r))
	assert.Equal(t, ExitOK, ExitCode(StatusInfo, r))

	const said = "suppressed until 2027-01-31 (mfcheck.yaml:12): legacy relay, retired in January"
	for _, f := range []Format{FormatMarkdown, FormatJUnit} {
		assert.Contains(t, string(render(t, f, Options{}, r)), said, f)
	}
	assert.Contains(t, string(render(t, FormatTable, Options{}, r)), "[suppressed until 2027-01-31 (mfcheck.yaml:12)", "the table wraps the rest")
	assert.Contains(t, string(render(t, FormatJUnit, Options{}, r)), `skipped="1"`)
	assert.Contains(t, string(render(t, FormatTable, Options{}, r)), "1 suppressed")
	assert.NoError(t, compileSchema(t).Validate(decode(t, render(t, FormatJSON, Options{}, r))))
}
