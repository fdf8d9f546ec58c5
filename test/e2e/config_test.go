package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// check -c runs every domain of the file (JSON Lines, one report each),
// applies each domain's suppressions and judges each against its own
// fail_on.
func TestCheckWithConfigFile(t *testing.T) {
	w := startZones(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mfcheck.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`version: 1
defaults:
  profile: mimecast-eu
  mode: smoke
domains:
  - domain: good-gw.test
  - domain: bypass.test
    suppress:
      - id: mx.bypass-mx
        reason: the old MX goes when the last migration batch is done
        expires: 2999-12-31
      - id: mx.at-gateway
        reason: same change
        expires: 2999-12-31
      - id: spf.ptr
        reason: an entry left from last year
        expires: 2020-01-31
`), 0o600))
	base := []string{"check", "-c", cfg, "--resolver", w.Resolver, "--ns-port", strconv.Itoa(w.NSPort), "--no-smtp", "-o", "json"}
	r := run(t, base...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, "one JSON line per domain: %s %s", r.stdout, r.stderr)
	got := map[string]map[string]any{}
	for _, l := range lines {
		var rep map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rep))
		validateSchema(t, l)
		got[rep["domain"].(string)] = rep
	}
	require.Contains(t, got, "good-gw.test")
	require.Contains(t, got, "bypass.test")
	summary := got["bypass.test"]["summary"].(map[string]any)
	assert.EqualValues(t, 2, summary["suppressed"], "the two MX findings are accepted until 2999")
	var expired, suppressedFail bool
	for _, f := range got["bypass.test"]["findings"].([]any) {
		f := f.(map[string]any)
		if f["id"] == "config.suppression-expired" {
			expired = true
			assert.Equal(t, "warn", f["status"])
		}
		if f["id"] == "mx.bypass-mx" {
			suppressedFail = f["status"] == "fail" && f["suppressed"] != nil
		}
	}
	assert.True(t, expired, "the 2020 entry is reported")
	assert.True(t, suppressedFail, "a suppressed finding keeps its status")
	// bypass.test's other failures (no gateway include, no DMARC) are not
	// suppressed, so they still count.
	counts := summary["counts"].(map[string]any)
	assert.EqualValues(t, 3, counts["fail"], "spf.gateway-include, spf.ranges-authorized, dmarc.present")
	assert.Equal(t, 1, r.code)

	// bulk -c: the same domains through the bulk runner, with the
	// suppressions applied.
	rb := run(t, "bulk", "-c", cfg, "--resolver", w.Resolver, "--ns-port", strconv.Itoa(w.NSPort))
	blines := strings.Split(strings.TrimSpace(rb.stdout), "\n")
	require.Len(t, blines, 2, "bulk -c: %s", rb.stderr)
	for _, l := range blines {
		var rep map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rep))
		if rep["domain"] == "bypass.test" {
			assert.EqualValues(t, 2, rep["summary"].(map[string]any)["suppressed"])
		}
	}

	// One domain of the file.
	r = run(t, append(base, "good-gw.test")...)
	assert.Equal(t, "good-gw.test", decode(t, r).Domain, "one report, for that domain")
	assert.Equal(t, 0, r.code, "good-gw.test has nothing at or above fail")
	// --fail-on on the command line wins over the file's thresholds.
	r = run(t, append(base, "good-gw.test", "--fail-on", "info")...)
	assert.Equal(t, 1, r.code)
	r = run(t, append(base, "other.test")...)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "no domain other.test in the file")
}

// A broken config file is one line naming the file, the line and the key,
// exit 2, before anything runs.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	for _, c := range []struct {
		file, want string
	}{
		{write("typo.yaml", "version: 1\ndomains:\n  - domain: contoso.example\n    profil: mimecast-eu\n"), "typo.yaml:4: domains[0].profil: unknown key (did you mean profile?)"},
		{write("cidr.yaml", "version: 1\ndomains:\n  - domain: contoso.example\n    sending_ranges: [198.51.100.1/28]\n"), "cidr.yaml:4: domains[0].sending_ranges[0]:"},
		{write("profile.yaml", "version: 1\ndomains:\n  - domain: contoso.example\n    profile: mimecast-europe\n"), "profile.yaml:4: domains[0].profile: unknown profile"},
		{filepath.Join(dir, "missing.yaml"), "missing.yaml: no such file"},
	} {
		r := run(t, "check", "-c", c.file, "--resolver", "127.0.0.1:1")
		assert.Equal(t, 2, r.code, "%s: %s", c.file, r.stderr)
		assert.Contains(t, r.stderr, c.want)
		assert.Len(t, strings.Split(strings.TrimSpace(r.stderr), "\n"), 1, r.stderr)
		assert.Empty(t, r.stdout)
	}
	r := run(t, "check", "-c", write("ok.yaml", "version: 1\ndomains:\n  - domain: contoso.example\n"), "--ip", "192.0.2.1", "--resolver", "127.0.0.1:1")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--ip is a per-domain setting")
}

// init writes a starter file that check -c accepts.
func TestInitStarterIsValid(t *testing.T) {
	w := startZones(t)
	p := filepath.Join(t.TempDir(), "mfcheck.yaml")
	r := run(t, "init", "good-gw.test", "--profile", "mimecast-eu", "--file", p)
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, "init", "good-gw.test", "--file", p)
	assert.Equal(t, 2, r.code, "no overwrite without --force")
	r = run(t, "check", "-c", p, "--resolver", w.Resolver, "--ns-port", strconv.Itoa(w.NSPort), "--no-smtp", "-o", "json")
	assert.NotEqual(t, 2, r.code, r.stderr)
	validateSchema(t, r.stdout)
}
