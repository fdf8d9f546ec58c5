package profile

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          bool
	}{
		// The examples the pattern syntax must honour.
		{"eu-smtp-inbound-1.mimecast.com", "eu-smtp-inbound-1.mimecast.com", true},
		{"*-smtp-inbound-?.mimecast.com", "de-smtp-inbound-2.mimecast.com", true},
		{"*-smtp-inbound-?.mimecast.com", "de-smtp-inbound-12.mimecast.com", false},
		{"*-smtp-inbound-?.mimecast.com", "a.b-smtp-inbound-1.mimecast.com", false},
		{"<token>.mail.protection.outlook.com", "contoso-com.mail.protection.outlook.com", true},
		{"<token>.mail.protection.outlook.com", "mail.protection.outlook.com", false},
		{"<token>.mail.protection.outlook.com", "a.b.mail.protection.outlook.com", false},
		{"**.ess.barracudanetworks.com", "d123.a.ess.barracudanetworks.com", true},
		{"<domain-dashes>.*.mx.microsoft", "contoso-com.o-v1.mx.microsoft", true},

		// Literal names: case, trailing dots, near misses.
		{"eu-smtp-inbound-1.mimecast.com", "EU-SMTP-Inbound-1.Mimecast.COM.", true},
		{"eu-smtp-inbound-1.mimecast.com.", "eu-smtp-inbound-1.mimecast.com", true},
		{"eu-smtp-inbound-1.mimecast.com", "eu-smtp-inbound-1.mimecast.com.evil.example", false},
		{"eu-smtp-inbound-1.mimecast.com", "x.eu-smtp-inbound-1.mimecast.com", false},
		{"eu-smtp-inbound-1.mimecast.com", "eu-smtp-inbound-2.mimecast.com", false},
		{"mimecast.com", "mimecast.co", false},

		// "*" as a whole label: exactly one label, never zero or two.
		{"*.mimecast-pscom-us.com", "uspcom-smtp-inbound-1.mimecast-pscom-us.com", true},
		{"*.mimecast-pscom-us.com", "mimecast-pscom-us.com", false},
		{"*.mimecast-pscom-us.com", "a.b.mimecast-pscom-us.com", false},
		{"*.mail.eo.outlook.com", "contoso-com.mail.eo.outlook.com", true},

		// "*" inside a label: one or more characters, not zero.
		{"vade-mx-*.hornetsecurity.com", "vade-mx-eu-fallback01.hornetsecurity.com", true},
		{"vade-mx-*.hornetsecurity.com", "vade-mx-.hornetsecurity.com", false},
		{"vade-mx-*.hornetsecurity.com", "vade-mx-eu.x.hornetsecurity.com", false},
		{"*-smtp-inbound-?.mimecast.com", "-smtp-inbound-1.mimecast.com", false},
		{"a*b*c.example.com", "abc.example.com", false},
		{"a*b*c.example.com", "axbyc.example.com", true},
		{"a*b*c.example.com", "axbybc.example.com", true},

		// "?" is exactly one character.
		{"mx1-us?.ppe-hosted.com", "mx1-us4.ppe-hosted.com", true},
		{"mx1-us?.ppe-hosted.com", "mx1-us.ppe-hosted.com", false},
		{"mx1-us?.ppe-hosted.com", "mx1-us10.ppe-hosted.com", false},
		{"mx-cluster-ca0?.hornetsecurity.com", "mx-cluster-ca02.hornetsecurity.com", true},
		{"aspmx?.googlemail.com", "aspmx2.googlemail.com", true},
		{"aspmx?.googlemail.com", "aspmx.googlemail.com", false},

		// "**" is one or more whole labels, anywhere.
		{"**.ess.barracudanetworks.com", "d1.ess.barracudanetworks.com", true},
		{"**.ess.barracudanetworks.com", "ess.barracudanetworks.com", false},
		{"**.ess.barracudanetworks.com", "d1.a.ess.uk.barracudanetworks.com", false},
		{"mx.**.example.com", "mx.a.b.c.example.com", true},
		{"mx.**.example.com", "mx.example.com", false},
		{"**.**.example.com", "a.example.com", false},
		{"**.**.example.com", "a.b.example.com", true},

		// Placeholders: one or more characters within their label.
		{"d<id>.a.ess.barracudanetworks.com", "d12345.a.ess.barracudanetworks.com", true},
		{"d<id>.a.ess.barracudanetworks.com", "d.a.ess.barracudanetworks.com", false},
		{"mx0a-<id>.pphosted.com", "mx0a-0021d601.pphosted.com", true},
		{"mx-01-<aws-region>.prod.hydra.sophos.com", "mx-01-eu-west-1.prod.hydra.sophos.com", true},
		{"mx1.<allocation>.eu.iphmx.com", "mx1.hc2479-79.eu.iphmx.com", true},
		{"mx1.<allocation>.iphmx.com", "mx1.hc2479-79.eu.iphmx.com", false},

		// Internationalised names compare as A-labels.
		{"mx.bücher.example", "mx.xn--bcher-kva.example", true},
		{"mx.xn--bcher-kva.example", "MX.BÜCHER.example.", true},

		// Invalid patterns and hosts match nothing.
		{"", "", false},
		{"a..b.example.com", "a..b.example.com", false},
		{"<open.example.com", "x.example.com", false},
		{"a**.example.com", "ab.example.com", false},
		{"*.example.com", "", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "a..example.com", false},
		{"*.example.com", "\xff.example.com", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Match(tt.pattern, tt.host), "Match(%q, %q)", tt.pattern, tt.host)
	}
}

func TestHostPatternErrors(t *testing.T) {
	tests := []struct {
		pattern, wantErr string
	}{
		{"", "empty"},
		{"a..example.com", "empty label"},
		{".example.com", "empty label"},
		{"a**.example.com", "must be a label of its own"},
		{"<token.example.com", "not closed"},
		{"<>.example.com", "empty placeholder"},
		{"<a b>.example.com", "placeholder name"},
		{"a>.example.com", "without"},
		{"mx example.com", "not allowed"},
		{"mx/1.example.com", "not allowed"},
		{strings.Repeat("a", 64) + ".example.com", "limit is 63"},
		{strings.Repeat("a", 2000), "253"},
		{"*.com", "two literal labels"},
		{"**", "two literal labels"},
		{"mx.*", "two literal labels"},
		{"*.example.*", "two literal labels"},
		{"bü*.example.com", "internationalised"},
	}
	for _, tt := range tests {
		_, err := normHostPattern(tt.pattern)
		if assert.Error(t, err, "pattern %q", tt.pattern) {
			assert.Contains(t, err.Error(), tt.wantErr, "pattern %q", tt.pattern)
		}
	}

	good := map[string]string{
		"EU-SMTP-Inbound-1.Mimecast.com.":     "eu-smtp-inbound-1.mimecast.com",
		"<Token>.mail.protection.outlook.com": "<token>.mail.protection.outlook.com",
		"mx.Bücher.example":                   "mx.xn--bcher-kva.example",
		"localhost":                           "localhost",
		"*.mimecast-pscom-us.com":             "*.mimecast-pscom-us.com",
	}
	for in, want := range good {
		got, err := normHostPattern(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestPatternSpecificity(t *testing.T) {
	exact, err := compilePattern("eu-smtp-inbound-1.mimecast.com")
	require.NoError(t, err)
	wild, err := compilePattern("*-smtp-inbound-?.mimecast.com")
	require.NoError(t, err)
	assert.Greater(t, exact.literal, wild.literal)
	assert.False(t, exact.wild)
	assert.True(t, wild.wild)
}
