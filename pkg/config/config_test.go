package config_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/config"
	"github.com/mfcheck/mfcheck/pkg/profile"
)

// full is the schema example of the issue, every key set.
const full = `version: 1
defaults:
  profile: mimecast-eu
  mode: health
  thresholds: {cert_expiry_warn_days: 21, mx_ttl_max_seconds: 3600, fail_on: fail}
domains:
  - domain: Contoso.COM.
    profile: mimecast-de
    mode: readiness
    sending_ips: [198.51.100.25, "2001:db8::25"]
    sending_ranges: [198.51.100.0/28, 203.0.113.7]
    sender: postmaster@contoso.com
    helo: Mail.Contoso.com
    allowlist: ipallowlist.txt
    smart_hosts: [relay.contoso.com:587, Relay2.Contoso.com, "[2001:db8::1]:25"]
    dkim_selectors: [s1]
    send:
      to: [postmaster@contoso.com]
      from: Probe <probe@fabrikam.example>
      outbound_server: smtp.office365.com:587
      outbound_to: [me@fabrikam.example]
      bypass_host: contoso-com.mail.protection.outlook.com
      maildir: probe/Maildir
    thresholds: {cert_expiry_warn_days: 30, fail_on: warn}
    suppress:
      - id: spf.ptr
        subject: contoso.com
        reason: legacy relay, being retired
        expires: 2027-01-31
  - domain: fabrikam.example
`

// writeConfig writes data as dir/mfcheck.yaml with an allow list next to it.
func writeConfig(t *testing.T, data string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ipallowlist.txt"), []byte("198.51.100.0/24\n"), 0o644))
	path := filepath.Join(dir, "mfcheck.yaml")
	require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
	return path
}

func TestLoadFull(t *testing.T) {
	path := writeConfig(t, full)
	f, err := config.Load(path, profile.Builtin())
	require.NoError(t, err)
	require.Len(t, f.Domains, 2)
	assert.Equal(t, path, f.Path)
	dir := filepath.Dir(path)

	d := f.Domains[0]
	assert.Equal(t, "contoso.com", d.Name)
	assert.Equal(t, 7, d.Line)
	assert.Equal(t, "mimecast-de", d.Profile, "the domain's profile wins over defaults")
	assert.Equal(t, "readiness", d.Mode)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("198.51.100.25"), netip.MustParseAddr("2001:db8::25")}, d.SendingIPs)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28"), netip.MustParsePrefix("203.0.113.7/32")}, d.SendingRanges)
	assert.Equal(t, "postmaster@contoso.com", d.Sender)
	assert.Equal(t, "mail.contoso.com", d.Helo)
	assert.Equal(t, filepath.Join(dir, "ipallowlist.txt"), d.Allowlist)
	assert.Equal(t, []string{"relay.contoso.com:587", "relay2.contoso.com", "[2001:db8::1]:25"}, d.SmartHosts)
	assert.Equal(t, []string{"s1"}, d.DKIMSelectors)
	assert.Equal(t, &config.Send{
		To: []string{"postmaster@contoso.com"}, From: "probe@fabrikam.example",
		OutboundServer: "smtp.office365.com:587", OutboundTo: []string{"me@fabrikam.example"},
		BypassHost: "contoso-com.mail.protection.outlook.com", Maildir: filepath.Join(dir, "probe/Maildir"),
	}, d.Send)
	assert.Equal(t, config.Thresholds{CertExpiryWarnDays: 30, MXTTLMaxSeconds: 3600, FailOn: "warn"}, d.Thresholds,
		"thresholds merge field by field")
	assert.Equal(t, []config.Suppression{{ID: "spf.ptr", Subject: "contoso.com", Reason: "legacy relay, being retired",
		Expires: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Line: 26}}, d.Suppress)

	d = f.Domains[1]
	assert.Equal(t, config.Domain{Name: "fabrikam.example", Profile: "mimecast-eu", Mode: "health", Line: 30,
		Thresholds: config.Thresholds{CertExpiryWarnDays: 21, MXTTLMaxSeconds: 3600, FailOn: "fail"}}, d,
		"a bare domain takes everything from defaults")
}

func TestNoDefaults(t *testing.T) {
	f, err := config.Parse([]byte("version: 1\ndomains:\n  - domain: contoso.com\n"), "mfcheck.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, []config.Domain{{Name: "contoso.com", Line: 3}}, f.Domains, "unset is empty: the command line's flags apply")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load("mfcheck.yaml", nil)
	require.Error(t, err)
	assert.Equal(t, "open mfcheck.yaml: no such file or directory", err.Error())
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestLoadOversize(t *testing.T) {
	path := writeConfig(t, "version: 1\n"+strings.Repeat("# padding\n", 110_000))
	_, err := config.Load(path, nil)
	require.Error(t, err)
	assert.Equal(t, path+": file is larger than 1048576 bytes (1 MiB); is this an mfcheck config file?", err.Error())
}

// doc builds a config from a domain entry's extra lines (indented four
// spaces), after a fixed head, so line numbers in the cases are easy to
// count: the domain's own keys start at line 5.
func doc(domainLines ...string) string {
	s := "version: 1\ndefaults: {profile: mimecast-eu}\ndomains:\n  - domain: contoso.com\n"
	for _, l := range domainLines {
		s += "    " + l + "\n"
	}
	return s
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data string
		want       string // the whole first error line
	}{
		{"misspelled key", doc("profil: mimecast-eu"),
			"mfcheck.yaml:5: domains[0].profil: unknown key (did you mean profile?)"},
		{"misspelled top-level key", "version: 1\ndomain:\n  - domain: contoso.com\n",
			"mfcheck.yaml:2: domain: unknown key (did you mean domains?)"},
		{"misspelled threshold", doc("thresholds: {cert_expiry_warn_day: 3}"),
			"mfcheck.yaml:5: domains[0].thresholds.cert_expiry_warn_day: unknown key (did you mean cert_expiry_warn_days?)"},
		{"unknown key, nothing close", doc("colour: blue"),
			"mfcheck.yaml:5: domains[0].colour: unknown key"},
		{"key given twice", doc("mode: smoke", "mode: health"),
			"mfcheck.yaml:6: domains[0].mode: given twice (first at line 5)"},
		{"bad CIDR", doc("sending_ranges: [198.51.100.0/28, 198.51.100.0/33]"),
			`mfcheck.yaml:5: domains[0].sending_ranges[1]: "198.51.100.0/33" is not a CIDR range such as 192.0.2.0/24`},
		{"host bits", doc("sending_ranges:", "  - 198.51.100.0/28", "  - 198.51.100.1/28"),
			`mfcheck.yaml:7: domains[0].sending_ranges[1]: "198.51.100.1/28" has host bits set; did you mean 198.51.100.0/28?`},
		{"bad IP", doc("sending_ips: [198.51.100.256]"),
			`mfcheck.yaml:5: domains[0].sending_ips[0]: "198.51.100.256" is not an IP address`},
		{"range as IP", doc("sending_ips: [198.51.100.0/28]"),
			`mfcheck.yaml:5: domains[0].sending_ips[0]: "198.51.100.0/28" is not an IP address; put ranges under sending_ranges`},
		{"IP listed twice", doc("sending_ips: [198.51.100.1, 198.51.100.1]"),
			`mfcheck.yaml:5: domains[0].sending_ips[1]: "198.51.100.1" is listed twice (first at line 5)`},
		{"unknown profile", doc("profile: mimecast-europe"),
			`mfcheck.yaml:5: domains[0].profile: unknown profile "mimecast-europe" (did you mean mimecast-eu?)`},
		{"unknown default profile", "version: 1\ndefaults:\n  profile: mimecast-ue\ndomains: [{domain: contoso.com}]\n",
			`mfcheck.yaml:3: defaults.profile: unknown profile "mimecast-ue" (did you mean mimecast-de, mimecast-eu or mimecast-us?)`},
		{"bad mode", doc("mode: readyness"),
			`mfcheck.yaml:5: domains[0].mode: "readyness" is not a mode (did you mean readiness?); want readiness (before the MX cutover), smoke (right after it) or health (nightly)`},
		{"bad fail_on", doc("thresholds: {fail_on: fial}"),
			`mfcheck.yaml:5: domains[0].thresholds.fail_on: "fial" is not a status (did you mean fail?); want info, warn or fail`},
		{"fail_on far off", doc("thresholds: {fail_on: fatal}"),
			`mfcheck.yaml:5: domains[0].thresholds.fail_on: "fatal" is not a status; want info, warn or fail`},
		{"threshold not a number", doc("thresholds: {mx_ttl_max_seconds: 1h}"),
			`mfcheck.yaml:5: domains[0].thresholds.mx_ttl_max_seconds: want a whole number of seconds, got "1h"`},
		{"threshold out of range", "version: 1\ndefaults:\n  thresholds:\n    cert_expiry_warn_days: 0\ndomains: [{domain: contoso.com}]\n",
			`mfcheck.yaml:4: defaults.thresholds.cert_expiry_warn_days: "0": want 1 to 397 days`},
		{"bad date", doc("suppress:", "  - id: spf.ptr", "    reason: legacy relay", "    expires: 31/01/2027"),
			`mfcheck.yaml:8: domains[0].suppress[0].expires: "31/01/2027" is not a date; want YYYY-MM-DD, e.g. 2027-01-31`},
		{"impossible date", doc("suppress:", "  - id: spf.ptr", "    reason: legacy relay", "    expires: 2027-02-30"),
			`mfcheck.yaml:8: domains[0].suppress[0].expires: "2027-02-30" is not a date; want YYYY-MM-DD, e.g. 2027-01-31`},
		{"missing reason", doc("suppress:", "  - id: spf.ptr", "    expires: 2027-01-31"),
			`mfcheck.yaml:6: domains[0].suppress[0].reason: missing; say why the finding is accepted, for whoever reads the report`},
		{"empty reason", doc("suppress:", "  - id: spf.ptr", "    reason: \"  \"", "    expires: 2027-01-31"),
			`mfcheck.yaml:7: domains[0].suppress[0].reason: empty; give a value or remove the key`},
		{"missing expiry", doc("suppress:", "  - id: spf.ptr", "    reason: legacy relay"),
			`mfcheck.yaml:6: domains[0].suppress[0].expires: missing; give the last day (YYYY-MM-DD) it applies, so it is looked at again`},
		{"bad finding id", doc("suppress:", "  - {id: SPF.PTR, reason: r, expires: 2027-01-31}"),
			`mfcheck.yaml:6: domains[0].suppress[0].id: "SPF.PTR" is not a finding ID: IDs are dotted lower-case words such as spf.ptr (did you mean spf.ptr?)`},
		{"undotted finding id", doc("suppress:", "  - {id: ptr, reason: r, expires: 2027-01-31}"),
			`mfcheck.yaml:6: domains[0].suppress[0].id: "ptr" is not a finding ID`},
		{"inner wildcard", doc("suppress:", "  - {id: tls.cert-expiry, subject: \"eu-*.mimecast.com\", reason: r, expires: 2027-01-31}"),
			`mfcheck.yaml:6: domains[0].suppress[0].subject: "eu-*.mimecast.com": only a trailing "*" is supported (a prefix match)`},
		{"suppression twice", doc("suppress:", "  - {id: spf.ptr, reason: r, expires: 2027-01-31}", "  - {id: spf.ptr, reason: s, expires: 2027-02-28}"),
			`mfcheck.yaml:7: domains[0].suppress[1]: spf.ptr is already suppressed at line 6; keep one entry`},
		{"duplicate domain", "version: 1\ndomains:\n  - domain: contoso.com\n  - domain: fabrikam.example\n  - domain: Contoso.com.\n",
			`mfcheck.yaml:5: domains[2].domain: contoso.com is already listed at line 3; merge the two entries`},
		{"duplicate of an entry with errors", "version: 1\ndomains:\n  - domain: contoso.com\n    mode: x\n  - domain: contoso.com\n",
			`mfcheck.yaml:4: domains[0].mode: "x" is not a mode`},
		{"bad domain", "version: 1\ndomains:\n  - domain: contoso\n",
			`mfcheck.yaml:3: domains[0].domain: "contoso" is not a domain name: "contoso" is not a fully qualified domain name`},
		{"missing domain", "version: 1\ndomains:\n  - profile: mimecast-eu\n",
			`mfcheck.yaml:3: domains[0].domain: missing; every entry names the domain to check ("- domain: contoso.com")`},
		{"list wanted", doc("smart_hosts: relay.contoso.com"),
			`mfcheck.yaml:5: domains[0].smart_hosts: want a list of strings (e.g. [a, b] or one "- item" per line), got "relay.contoso.com"`},
		{"list of mappings", doc("dkim_selectors:", "  - {name: s1}"),
			`mfcheck.yaml:6: domains[0].dkim_selectors[0]: want a string, got a mapping`},
		{"single value wanted", doc("sender: [a@contoso.com]"),
			`mfcheck.yaml:5: domains[0].sender: want a single value, got a list`},
		{"mapping wanted", doc("send: yes"),
			`mfcheck.yaml:5: domains[0].send: want a mapping of to, from, outbound_server, outbound_to, bypass_host, maildir, got a single value`},
		{"defaults not a mapping", "version: 1\ndefaults: [mimecast-eu]\ndomains: [{domain: contoso.com}]\n",
			`mfcheck.yaml:2: defaults: want a mapping of profile, mode and thresholds, got a list`},
		{"unknown defaults key", "version: 1\ndefaults: {sender: a@contoso.com}\ndomains: [{domain: contoso.com}]\n",
			`mfcheck.yaml:2: defaults.sender: unknown key`},
		{"thresholds not a mapping", doc("thresholds: 21"),
			`mfcheck.yaml:5: domains[0].thresholds: want a mapping of cert_expiry_warn_days, mx_ttl_max_seconds, fail_on, got a single value`},
		{"suppress not a list", doc("suppress: {id: spf.ptr}"),
			`mfcheck.yaml:5: domains[0].suppress: want a list of suppressions ("- id: spf.ptr" with reason and expires), got a mapping`},
		{"IP with zone", doc("sending_ips: [\"fe80::1%eth0\"]"),
			`mfcheck.yaml:5: domains[0].sending_ips[0]: "fe80::1%eth0" is not an IP address`},
		{"expiry with a time", doc("suppress:", "  - {id: spf.ptr, reason: r, expires: 2027-01-31T12:00:00Z}"),
			`mfcheck.yaml:6: domains[0].suppress[0].expires: "2027-01-31T12:00:00Z" is not a date; want YYYY-MM-DD`},
		{"domains not a list", "version: 1\ndomains: contoso.com\n",
			`mfcheck.yaml:2: domains: want a list of domains ("- domain: contoso.com"), got a single value`},
		{"domain entry not a mapping", "version: 1\ndomains:\n  - contoso.com\n",
			`mfcheck.yaml:3: domains[0]: want a mapping ("- domain: contoso.com" and its keys), got a single value`},
		{"version missing", "domains:\n  - domain: contoso.com\n",
			`mfcheck.yaml:1: version: missing; write "version: 1" at the top of the file`},
		{"version 2", "version: 2\ndomains:\n  - domain: contoso.com\n",
			`mfcheck.yaml:1: version: version "2" is not supported; this mfcheck reads version 1`},
		{"version as text", "version: \"1\"\ndomains:\n  - domain: contoso.com\n",
			`mfcheck.yaml:1: version: want the number 1, got "1"`},
		{"empty domains", "version: 1\ndomains: []\n",
			`mfcheck.yaml:2: domains: the list is empty; add at least one "- domain: NAME"`},
		{"no domains key", "version: 1\n",
			`mfcheck.yaml:1: domains: missing; list the domains to check ("domains:" then "- domain: contoso.com")`},
		{"empty file", "# nothing yet\n",
			`mfcheck.yaml: the file is empty; it needs "version: 1" and a domains list (mfcheck init DOMAIN writes one)`},
		{"not a mapping", "- contoso.com\n",
			`mfcheck.yaml:1: want a mapping with version, defaults and domains, got a list`},
		{"bad sender", doc("sender: postmaster"),
			`mfcheck.yaml:5: domains[0].sender: "postmaster" is not a mail address (local@domain)`},
		{"bad helo", doc("helo: \"mail server\""),
			`mfcheck.yaml:5: domains[0].helo: "mail server" is not a domain name or an address literal such as [192.0.2.1]`},
		{"bad smart host port", doc("smart_hosts: [relay.contoso.com:99999]"),
			`mfcheck.yaml:5: domains[0].smart_hosts[0]: "relay.contoso.com:99999": "99999" is not a port`},
		{"bad selector", doc("dkim_selectors: [s1._domainkey]"),
			`mfcheck.yaml:5: domains[0].dkim_selectors[0]: "s1._domainkey" is not a selector (a DNS label such as selector1, without ._domainkey)`},
		{"send without to", doc("send:", "  from: probe@fabrikam.example"),
			`mfcheck.yaml:6: domains[0].send.to: missing; the test message needs a recipient in contoso.com`},
		{"send to outside the domain", doc("send:", "  to: [me@fabrikam.example]"),
			`mfcheck.yaml:6: domains[0].send.to[0]: me@fabrikam.example is not in contoso.com;`},
		{"outbound server without recipient", doc("send:", "  to: [postmaster@contoso.com]", "  outbound_server: smtp.office365.com:587"),
			`mfcheck.yaml:7: domains[0].send.outbound_to: missing; outbound_server needs a recipient outside the domain`},
		{"allowlist missing", doc("allowlist: nothere.txt"),
			`mfcheck.yaml:5: domains[0].allowlist: "nothere.txt": no such file (looked for nothere.txt; a relative path is relative to the config file's directory)`},
		{"allowlist without profile", "version: 1\ndomains:\n  - domain: contoso.com\n    allowlist: config_test.go\n",
			`mfcheck.yaml:4: domains[0].allowlist: needs a profile (here or in defaults)`},
		{"alias", "version: 1\ndefaults: &d {mode: smoke}\ndomains:\n  - domain: contoso.com\n    thresholds: *d\n",
			`mfcheck.yaml:5: YAML aliases (*d) are not supported; repeat the value`},
		{"merge key", "version: 1\ndomains:\n  - domain: contoso.com\n    <<: {mode: smoke}\n",
			`mfcheck.yaml:4: YAML merge keys (<<) are not supported`},
		{"second document", "version: 1\ndomains: [{domain: contoso.com}]\n---\nversion: 1\n",
			`mfcheck.yaml:3: a second YAML document (after "---"); put every domain in the one domains list`},
		{"syntax error", "version: 1\ndomains:\n  - domain: contoso.com\n   mode: smoke\n",
			`mfcheck.yaml:2: invalid YAML: did not find expected '-' indicator`},
		{"tab indentation", "version: 1\ndomains:\n\t- domain: contoso.com\n",
			`mfcheck.yaml:3: invalid YAML: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse([]byte(tt.data), "mfcheck.yaml", profile.Builtin())
			require.Error(t, err)
			assert.Nil(t, f)
			first, _, _ := strings.Cut(err.Error(), "\n")
			assert.True(t, strings.HasPrefix(first, tt.want), "got  %s\nwant %s", first, tt.want)
			var ce *config.Error
			assert.True(t, errors.As(err, &ce), "errors.As finds a *config.Error")
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, err := config.Parse([]byte(doc("profil: x", "sending_ips: [1.2.3.4.5]", "mode: nightly")), "mfcheck.yaml", nil)
	require.Error(t, err)
	assert.Equal(t, []string{
		"mfcheck.yaml:5: domains[0].profil: unknown key (did you mean profile?)",
		`mfcheck.yaml:6: domains[0].sending_ips[0]: "1.2.3.4.5" is not an IP address`,
		`mfcheck.yaml:7: domains[0].mode: "nightly" is not a mode; want readiness (before the MX cutover), smoke (right after it) or health (nightly)`,
	}, strings.Split(err.Error(), "\n"))
}

func TestParseDuplicateOfBadEntry(t *testing.T) {
	_, err := config.Parse([]byte("version: 1\ndomains:\n  - domain: contoso.com\n    mode: x\n  - domain: contoso.com\n"), "mfcheck.yaml", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "\nmfcheck.yaml:5: domains[1].domain: contoso.com is already listed at line 3; merge the two entries")
}

func TestParseTooManyErrors(t *testing.T) {
	data := "version: 1\ndomains:\n"
	for range 40 {
		data += "  - domain: x\n"
	}
	_, err := config.Parse([]byte(data), "mfcheck.yaml", nil)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Len(t, lines, 26)
	assert.Equal(t, "mfcheck.yaml: too many errors; fix these first", lines[25])
}

func TestParseTooManyNodes(t *testing.T) {
	data := "version: 1\ndomains:\n  - domain: contoso.com\n    dkim_selectors: [" + strings.Repeat("a,", 250_000) + "a]\n"
	_, err := config.Parse([]byte(data), "mfcheck.yaml", nil)
	require.Error(t, err)
	assert.Equal(t, "mfcheck.yaml: too many values (more than 200000); split the file", err.Error())
}

func TestUserProfile(t *testing.T) {
	user, err := profile.Parse([]byte("id: acme-gw\nname: ACME gateway\nkind: gateway\n"), "mine.yaml")
	require.NoError(t, err)
	reg, err := profile.Builtin().With(user...)
	require.NoError(t, err)
	data := []byte("version: 1\ndomains: [{domain: contoso.com, profile: ACME-GW}]\n")
	f, err := config.Parse(data, "mfcheck.yaml", reg)
	require.NoError(t, err)
	assert.Equal(t, "acme-gw", f.Domains[0].Profile, "the id in its normal form")
	_, err = config.Parse(data, "mfcheck.yaml", profile.Builtin())
	assert.ErrorContains(t, err, `mfcheck.yaml:2: domains[0].profile: unknown profile "ACME-GW"`)
}

func TestMisspeltRequiredKeyReportedOnce(t *testing.T) {
	_, err := config.Parse([]byte("version: 1\ndomains:\n  - domian: contoso.com\n"), "mfcheck.yaml", nil)
	require.Error(t, err)
	assert.Equal(t, "mfcheck.yaml:3: domains[0].domian: unknown key (did you mean domain?)", err.Error(),
		"not also \"domain: missing\"")
}
