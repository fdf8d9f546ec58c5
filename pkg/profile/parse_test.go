package profile

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	return path
}

func TestLoadFileGood(t *testing.T) {
	tests := []struct {
		name, data string
		wantIDs    []string
	}{
		{"list", `
# user gateways
profiles:
  - id: acme-gw
    name: ACME relay
    kind: Gateway
    spf_includes: [SPF.Acme.Example.]
    spf_terms: ["ip4:192.0.2.0/24", "-exists:%{i}.spf.<tenant>.acme.example"]
    mx_hosts: ["mx<n>.acme.example", "*.in.acme.example"]
    outbound_smart_hosts: [out.acme.example]
    ip_ranges: [192.0.2.0/24, "2001:DB8::/32"]
    ip_ranges_live: [spf.acme.example]
    ip_ranges_snapshot: 2026-01-01
    uncertain: ["mx_hosts:MX<N>.acme.example", ip_ranges_snapshot, "ip_ranges:2001:db8::/32"]
    notes: >
      Our own relay.
    sources: [internal wiki]
  - id: lab-mailbox
    name: Lab mailbox
    kind: mailbox
    mx_hosts: [mx.lab.test]
`, []string{"acme-gw", "lab-mailbox"}},
		{"single document", `
id: solo
name: Solo
kind: gateway
mx_hosts: [mx.solo.example]
`, []string{"solo"}},
		{"several documents", `
id: one
name: One
kind: gateway
---
profiles:
  - {id: two, name: Two, kind: mailbox}
---
# only a comment
`, []string{"one", "two"}},
		{"anchors and nulls", `
profiles:
  - id: a
    name: A
    kind: gateway
    sources: &src [shared source]
    dkim:
    region: ~
  - id: b
    name: B
    kind: gateway
    sources: *src
`, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "profiles.yaml", tt.data)
			ps, err := LoadFile(path)
			require.NoError(t, err)
			var ids []string
			for _, p := range ps {
				ids = append(ids, p.ID)
				assert.False(t, p.Builtin)
				assert.True(t, strings.HasPrefix(p.Origin, path+":"), p.Origin)
			}
			assert.Equal(t, tt.wantIDs, ids)
			_, err = Builtin().With(ps...)
			assert.NoError(t, err)
		})
	}

	ps, err := Parse([]byte(tests[0].data), "x.yaml")
	require.NoError(t, err)
	p := ps[0]
	assert.Equal(t, KindGateway, p.Kind)
	assert.Equal(t, "x.yaml:4", p.Origin)
	assert.Equal(t, []string{"spf.acme.example"}, p.SPFIncludes)
	assert.Equal(t, []string{"ip4:192.0.2.0/24", "-exists:%{i}.spf.<tenant>.acme.example"}, p.SPFTerms)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}, p.IPRanges)
	assert.Equal(t, "2026-01-01", p.IPRangesSnapshot)
	assert.Equal(t, "Our own relay.", p.Notes)
	assert.Equal(t, []string{"mx_hosts:mx<n>.acme.example", "ip_ranges_snapshot", "ip_ranges:2001:db8::/32"}, p.Uncertain)
	assert.True(t, p.ValueUncertain(KeyMXHosts, "mx<n>.acme.example"))
	assert.False(t, p.ValueUncertain(KeyMXHosts, "*.in.acme.example"))
	assert.True(t, p.ValueUncertain(KeyIPRanges, "2001:0db8::/32"))
	assert.True(t, p.FieldUncertain(KeyIPRangesSnapshot))
	pat, ok := p.MatchMX("mx2.acme.example")
	assert.True(t, ok)
	assert.Equal(t, "mx<n>.acme.example", pat)
}

func TestLoadFileErrors(t *testing.T) {
	const head = "profiles:\n  - id: acme\n    name: ACME\n    kind: gateway\n" // the profile starts on line 2
	tests := []struct {
		name, data string
		want       []string // substrings of the error; each file's own path is checked too
	}{
		{"unknown field", head + "    mx_host: [mx.acme.example]\n",
			[]string{`:5: profile "acme": mx_host: unknown field (did you mean mx_hosts?)`}},
		{"unknown top-level key", "profiles: []\nprofile: x\n",
			[]string{`:2: unknown top-level key "profile"`}},
		{"typo in single document", "id: solo\nname: Solo\nkind: gateway\nprofile: []\n",
			[]string{`:4: profile "solo": profile: unknown field (did you mean profiles?)`}},
		{"unmasked range", head + "    ip_ranges:\n      - 192.0.2.0/24\n      - 10.0.0.1/24\n",
			[]string{`:7: profile "acme": ip_ranges: "10.0.0.1/24" is not a network address, did you mean 10.0.0.0/24?`}},
		{"bad range", head + "    ip_ranges: [300.1.1.0/24, 192.0.2.1, \"::ffff:192.0.2.0/120\"]\n",
			[]string{`"300.1.1.0/24" is not an IP range in CIDR form`, `"192.0.2.1" has no prefix length; write 192.0.2.1/32`, "IPv4-mapped"}},
		{"bad id", "profiles:\n  - id: ACME_gw\n    name: x\n    kind: gateway\n",
			[]string{`:2: profile "ACME_gw": id: "ACME_gw" is not a valid id`}},
		{"uppercase id", "id: Acme\nname: x\nkind: gateway\n",
			[]string{`did you mean "acme"?`}},
		{"missing fields", "profiles:\n  - region: EU\n",
			[]string{`:2: profile "#1": id: missing`, `profile "#1": name: missing`, `profile "#1": kind: missing`}},
		{"bad kind", "profiles:\n  - id: a\n    name: A\n    kind: relay\n",
			[]string{`:4: profile "a": kind: "relay" is not a kind`}},
		{"spf term under includes", head + "    spf_includes: [\"a:dispatch-us.ppe-hosted.com\", \"include:x.example\"]\n",
			[]string{"put SPF terms other than a plain include under spf_terms", `write only the domain, "x.example"`}},
		{"plain include under terms", head + "    spf_terms: [\"include:x.example\", \"bogus:x\"]\n",
			[]string{`a plain include belongs under spf_includes as "x.example"`, `unknown SPF mechanism "bogus"`}},
		{"bad host patterns", head + "    mx_hosts: [\"*.com\", \"a..example.com\", \"mx one.example.com\"]\n",
			[]string{"at least two literal labels", "empty label", "not allowed"}},
		{"uncertain unknown field", head + "    uncertain: [mx_host, notes, \"mx_hosts:mx9.acme.example\"]\n    mx_hosts: [mx1.acme.example]\n",
			[]string{`:5: profile "acme": uncertain: "mx_host" names no field (did you mean mx_hosts?)`,
				`field "notes" cannot be marked uncertain`,
				`"mx9.acme.example" is not one of the profile's mx_hosts`}},
		{"duplicate id", head + "  - id: acme\n    name: again\n    kind: mailbox\n",
			[]string{`:5: profile "acme": id: "acme" is already defined at line 2`}},
		{"duplicate key", head + "    name: again\n",
			[]string{`:5: profile "acme": name: given twice (first at line 3)`}},
		{"duplicate value", head + "    mx_hosts: [mx.acme.example, MX.ACME.EXAMPLE.]\n",
			[]string{`"mx.acme.example" is listed twice (first at line 5)`}},
		{"list expected", head + "    mx_hosts: mx.acme.example\n",
			[]string{`:5: profile "acme": mx_hosts: want a list`}},
		{"scalar expected", head + "    region: [EU]\n",
			[]string{`region: want a single value, got a list`}},
		{"nested list item", head + "    sources: [[a]]\n",
			[]string{`sources: list items must be single values, got a list`}},
		{"empty list item", head + "    sources: [\"\"]\n",
			[]string{`sources: value 1 is empty`}},
		{"profile not a mapping", "profiles:\n  - just-a-string\n",
			[]string{`:2: profile "#1": want a profile`}},
		{"profiles not a list", "profiles: {id: a}\n",
			[]string{`:1: profiles: want a list of profiles, got a mapping`}},
		{"root not a mapping", "- a\n- b\n",
			[]string{`:1: want a profile (a mapping)`}},
		{"yaml syntax", "profiles:\n  - id: a\n    name: [b\n",
			[]string{"user.yaml:2: invalid YAML"}},
		{"tab indentation", "profiles:\n\t- id: a\n",
			[]string{"invalid YAML"}},
		{"empty file", "", []string{"no profiles found"}},
		{"comments only", "# nothing\n", []string{"no profiles found"}},
		{"merge key", head + "    <<: {region: EU}\n", []string{"merge keys (<<) are not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "user.yaml", tt.data)
			ps, err := LoadFile(path)
			require.Error(t, err)
			assert.Nil(t, ps)
			msg := err.Error()
			assert.Contains(t, msg, path, "errors name the file")
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
			var perr *Error
			assert.True(t, errors.As(err, &perr), "errors are *Error")
		})
	}
}

func TestParseErrorDetails(t *testing.T) {
	_, err := Parse([]byte("profiles:\n  - id: a\n    name: A\n    kind: gateway\n    mx_hots: []\n"), "f.yaml")
	var perr *Error
	require.True(t, errors.As(err, &perr))
	assert.Equal(t, &Error{Source: "f.yaml", Line: 5, Profile: "a", Field: "mx_hots", Msg: "unknown field (did you mean mx_hosts?)"}, perr)

	_, err = Parse([]byte("profiles:\n  - {id: a, name: A, kind: gateway}\n  - {id: a, name: B, kind: gateway}\n"), "f.yaml")
	assert.ErrorIs(t, err, ErrDuplicateID)

	// Many mistakes are all reported, up to a bound.
	var b strings.Builder
	b.WriteString("profiles:\n")
	for range 100 {
		b.WriteString("  - {id: BAD}\n")
	}
	_, err = Parse([]byte(b.String()), "f.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "too many errors")
	assert.LessOrEqual(t, strings.Count(err.Error(), "\n"), maxErrors+1)
}

func TestLoadFileLimits(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)

	big := writeFile(t, "big.yaml", strings.Repeat("#", maxFileSize+1))
	_, err = LoadFile(big)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")

	// An alias bomb: a small file whose aliases repeat one long list in
	// many profiles. The walk must stop at its value budget.
	var b strings.Builder
	b.WriteString("profiles:\n  - &p {id: a, name: A, kind: gateway, sources: &l [")
	for j := range 1000 {
		if j > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "s%d", j)
	}
	b.WriteString("], dkim: *l, verification: *l}\n")
	for range 400 {
		b.WriteString("  - *p\n")
	}
	_, err = Parse([]byte(b.String()), "bomb.yaml")
	require.Error(t, err, "aliases must not expand without bound")
	assert.Contains(t, err.Error(), "too many values")
	assert.LessOrEqual(t, strings.Count(err.Error(), "\n"), maxErrors+1)
}
