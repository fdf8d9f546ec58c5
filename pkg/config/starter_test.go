package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/mfcheck/mfcheck/pkg/config"
	"github.com/mfcheck/mfcheck/pkg/profile"
)

func TestStarterRoundTrip(t *testing.T) {
	reg := profile.Builtin()
	for _, p := range reg.All() {
		t.Run(p.ID, func(t *testing.T) {
			data := config.Starter("contoso.com", p)
			f, err := config.Parse(data, "mfcheck.yaml", reg)
			require.NoError(t, err, "%s", data)
			require.Len(t, f.Domains, 1)
			d := f.Domains[0]
			assert.Equal(t, "contoso.com", d.Name)
			assert.Equal(t, p.ID, d.Profile)
			assert.Equal(t, "health", d.Mode)
			assert.Equal(t, config.Thresholds{CertExpiryWarnDays: 21, MXTTLMaxSeconds: 3600, FailOn: "fail"}, d.Thresholds)
			assert.Nil(t, d.Send, "nothing is sent until the user writes a send block")
			assert.Empty(t, d.Suppress)
		})
	}
}

func TestStarterWithoutProfile(t *testing.T) {
	f, err := config.Parse(config.Starter("Fabrikam.Example.", nil), "mfcheck.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, "fabrikam.example", f.Domains[0].Name)
	assert.Empty(t, f.Domains[0].Profile)
}

func TestStarterUserProfile(t *testing.T) {
	user, err := profile.Parse([]byte("id: acme-gw\nname: \"ACME\n  gateway\"\nkind: gateway\n"), "mine.yaml")
	require.NoError(t, err)
	reg, err := profile.Builtin().With(user...)
	require.NoError(t, err)
	p, err := reg.Get("acme-gw")
	require.NoError(t, err)
	data := config.Starter("contoso.com", p)
	assert.Contains(t, string(data), "# a user profile (mine.yaml:1): run mfcheck with --profiles-file")
	f, err := config.Parse(data, "mfcheck.yaml", reg)
	require.NoError(t, err)
	assert.Equal(t, "acme-gw", f.Domains[0].Profile)
}

// TestStarterCommentedExamples uncomments the examples of the starter file
// and parses the result: the documentation in the file must be valid config.
func TestStarterCommentedExamples(t *testing.T) {
	p, err := profile.Builtin().Get("mimecast-eu")
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(config.Starter("contoso.com", p)), "\n") {
		trimmed := strings.TrimLeft(l, " ")
		indent := len(l) - len(trimmed)
		rest, ok := strings.CutPrefix(trimmed, "# ")
		// Commented keys are "# key: value" at a key's indentation, and
		// the send/suppress bodies keep their own indentation after "# ".
		key, _, isKey := strings.Cut(rest, ":")
		key = strings.TrimLeft(key, " -")
		if ok && indent == 4 && isKey && key != "" && strings.Trim(key, "abcdefghijklmnopqrstuvwxyz_") == "" &&
			!strings.HasPrefix(rest, "profile: and") {
			l = strings.Repeat(" ", indent) + rest
		}
		lines = append(lines, l)
	}
	text := strings.Join(lines, "\n")
	text = strings.Replace(text, "allowlist: ipallowlist.txt", "allowlist: starter_test.go", 1)
	f, err := config.Parse([]byte(text), "mfcheck.yaml", nil)
	require.NoError(t, err, "%s", text)
	d := f.Domains[0]
	assert.Equal(t, "readiness", d.Mode)
	assert.Len(t, d.SendingIPs, 1)
	assert.Len(t, d.SendingRanges, 1)
	assert.Equal(t, "postmaster@contoso.com", d.Sender)
	require.NotNil(t, d.Send)
	assert.Equal(t, []string{"postmaster@contoso.com"}, d.Send.To)
	require.Len(t, d.Suppress, 1)
	assert.Equal(t, "spf.ptr", d.Suppress[0].ID)
	assert.Equal(t, 30, d.Thresholds.CertExpiryWarnDays)
	assert.Equal(t, 3600, d.Thresholds.MXTTLMaxSeconds, "the rest from defaults")

	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &n))
}
