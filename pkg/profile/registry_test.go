package profile

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/suggest"
)

// The embedded file must parse: Builtin panics otherwise, and this test is
// what guarantees it never does in a release.
func TestBuiltinParses(t *testing.T) {
	reg, err := parseBuiltin(builtinData)
	require.NoError(t, err)
	require.NotPanics(t, func() { Builtin() })

	var ids []string
	for _, p := range reg.All() {
		ids = append(ids, p.ID)
	}
	assert.Equal(t, []string{
		"barracuda-egd-regional", "barracuda-egd-us", "cisco-secure-email-cloud",
		"google-workspace", "hornetsecurity", "microsoft365", "microsoft365-gcchigh",
		"mimecast-au", "mimecast-ca", "mimecast-de", "mimecast-eu", "mimecast-global",
		"mimecast-offshore", "mimecast-us", "mimecast-usb", "mimecast-uspcom", "mimecast-za",
		"proofpoint-essentials-eu", "proofpoint-essentials-us", "proofpoint-pod",
		"sophos-central-email", "trendmicro-email-security",
	}, ids, "All is sorted by ID and holds every researched profile")
}

func TestBuiltinInvariants(t *testing.T) {
	for _, p := range Builtin().All() {
		t.Run(p.ID, func(t *testing.T) {
			assert.True(t, p.Builtin)
			assert.Equal(t, "built-in", p.Origin)
			assert.NotEmpty(t, p.Name)
			assert.True(t, p.Kind.Valid())
			assert.NotEmpty(t, p.Sources, "every built-in fact needs a source")
			assert.NotEmpty(t, p.Notes)
			if p.Kind == KindGateway {
				assert.True(t, len(p.SPFIncludes)+len(p.SPFTerms) > 0 || p.FieldUncertain(KeySPFIncludes),
					"a gateway states how customers authorise it in SPF, or says it is unknown")
			}
			for _, inc := range p.SPFIncludes {
				assert.NotContains(t, inc, ":", "spf_includes holds domains only")
			}
			if len(p.IPRanges) > 0 {
				assert.NotEmpty(t, p.IPRangesSnapshot, "stored ranges say when they were taken")
			}
			for _, pr := range p.IPRanges {
				assert.Equal(t, pr.Masked(), pr)
			}
			// Validation is idempotent: a built-in profile passes again
			// unchanged, as a user profile would.
			reg, err := (&Registry{}).With(p)
			require.NoError(t, err)
			again, err := reg.Get(p.ID)
			require.NoError(t, err)
			again.Builtin, again.Origin = true, "built-in"
			assert.Equal(t, p, again)
		})
	}
}

func TestBuiltinFacts(t *testing.T) {
	reg := Builtin()
	get := func(id string) *Profile {
		p, err := reg.Get(id)
		require.NoError(t, err)
		return p
	}

	eu := get("mimecast-eu")
	assert.Equal(t, []string{"eu._netblocks.mimecast.com"}, eu.SPFIncludes)
	assert.Equal(t, "CUK", eu.AccountCode)
	assert.Equal(t, KindGateway, eu.Kind)
	assert.True(t, eu.FieldUncertain(KeyMXHosts), "Mimecast EU MX names were only observed")
	assert.True(t, eu.ValueUncertain(KeyMXHosts, "eu-smtp-inbound-1.mimecast.com"))
	assert.False(t, eu.FieldUncertain(KeySPFIncludes), "the EU include is official")
	assert.Contains(t, eu.IPRanges, netip.MustParsePrefix("185.58.85.0/24"))
	assert.Equal(t, []string{"eu._netblocks.mimecast.com"}, eu.IPRangesLive)
	pat, ok := eu.MatchSmartHost("eu-smtp-o365-outbound-2.mimecast.com")
	assert.True(t, ok)
	assert.Equal(t, "eu-smtp-o365-outbound-2.mimecast.com", pat)
	pat, ok = eu.MatchSmartHost("EU-SMTP-OUTBOUND-1.mimecast.com.")
	assert.True(t, ok, "generic SMTP smart hosts count too")
	assert.Equal(t, "eu-smtp-outbound-1.mimecast.com", pat)
	_, ok = eu.MatchSmartHost("us-smtp-o365-outbound-1.mimecast.com")
	assert.False(t, ok)

	usb := get("mimecast-usb")
	assert.Empty(t, usb.IPRanges)
	assert.True(t, usb.FieldUncertain(KeyIPRanges))
	assert.Equal(t, []string{"usb._netblocks.mimecast.com"}, usb.IPRangesLive)

	za := get("mimecast-za")
	assert.False(t, za.FieldUncertain(KeyMXHosts))
	assert.False(t, za.ValueUncertain(KeyMXHosts, "za-smtp-inbound-1.mimecast.co.za"))
	assert.True(t, za.ValueUncertain(KeyMXHosts, "ZA-SMTP-INBOUND-2.mimecast.co.za."), "values compare in normal form")

	ca := get("mimecast-ca")
	assert.Empty(t, ca.MXHosts, "guessed names are not shipped")
	assert.True(t, ca.FieldUncertain(KeyMXHosts))

	m365 := get("microsoft365")
	assert.Equal(t, KindMailbox, m365.Kind)
	pat, ok = m365.MatchMX("contoso-com.mail.protection.outlook.com")
	assert.True(t, ok)
	assert.Equal(t, "<token>.mail.protection.outlook.com", pat)
	pat, ok = m365.MatchMX("contosotest-com.o-v1.mx.microsoft.")
	assert.True(t, ok)
	assert.Equal(t, "<domain-dashes>.*.mx.microsoft", pat)
	_, ok = m365.MatchMX("mail.protection.outlook.com")
	assert.False(t, ok)
	assert.Contains(t, m365.IPRanges, netip.MustParsePrefix("2a01:111:f400::/48"))

	ppe := get("proofpoint-essentials-us")
	assert.Equal(t, []string{"a:dispatch-us.ppe-hosted.com"}, ppe.SPFTerms)
	assert.True(t, ppe.ValueUncertain(KeySPFIncludes, "_spf-us.ppe-hosted.com"))
	assert.False(t, ppe.ValueUncertain(KeySPFTerms, "a:dispatch-us.ppe-hosted.com"))
	assert.Equal(t, []string{"a:dispatch-eu.ppe-hosted.com"}, get("proofpoint-essentials-eu").SPFTerms)
	assert.Equal(t, []string{"include:%{ir}.%{v}.%{d}.spf.has.pphosted.com"}, get("proofpoint-pod").SPFTerms)
	assert.Empty(t, get("proofpoint-pod").SPFIncludes)
	assert.Contains(t, get("cisco-secure-email-cloud").SPFTerms, "exists:%{i}.spf.<allocation>.iphmx.com")

	assert.Equal(t, []string{"_netblocks.mimecast.com"}, get("mimecast-global").SPFIncludes)
	assert.Equal(t, []string{"spf.hornetsecurity.com"}, get("hornetsecurity").SPFIncludes)
	assert.True(t, get("barracuda-egd-us").ValueUncertain(KeyIPRanges, "64.235.144.0/20"))
	assert.False(t, get("barracuda-egd-us").ValueUncertain(KeyIPRanges, "209.222.80.0/21"))
}

func TestDetectMX(t *testing.T) {
	tests := []struct {
		host string
		want []string // IDs, most specific first
	}{
		{"eu-smtp-inbound-1.mimecast.com", []string{"mimecast-eu", "mimecast-global"}},
		{"EU-SMTP-INBOUND-2.MIMECAST.COM.", []string{"mimecast-eu", "mimecast-global"}},
		{"usb-smtp-inbound-1.mimecast.com", []string{"mimecast-usb", "mimecast-global"}},
		{"za-smtp-inbound-1.mimecast.co.za", []string{"mimecast-za", "mimecast-global"}},
		{"je-smtp-inbound-2.mimecast-offshore.com", []string{"mimecast-offshore", "mimecast-global"}},
		{"ca-smtp-inbound-1.mimecast.com", []string{"mimecast-global"}},
		{"contoso-com.mail.protection.outlook.com", []string{"microsoft365"}},
		{"contoso-com.o-v1.mx.microsoft", []string{"microsoft365"}},
		{"contoso-com.mail.protection.office365.us", []string{"microsoft365-gcchigh"}},
		{"smtp.google.com", []string{"google-workspace"}},
		{"alt2.aspmx.l.google.com", []string{"google-workspace"}},
		{"mx1-us1.ppe-hosted.com", []string{"proofpoint-essentials-us"}},
		{"mx2-eu1.ppe-hosted.com", []string{"proofpoint-essentials-eu"}},
		{"mxa-0021d601.gslb.pphosted.com", []string{"proofpoint-pod"}},
		{"d123.a.ess.barracudanetworks.com", []string{"barracuda-egd-us"}},
		{"d123.a.ess.uk.barracudanetworks.com", []string{"barracuda-egd-regional"}},
		{"mx1.hc2479-79.eu.iphmx.com", []string{"cisco-secure-email-cloud"}},
		{"mx-01-eu-west-1.prod.hydra.sophos.com", []string{"sophos-central-email"}},
		{"oxforduni.in.tmes.trendmicro.eu", []string{"trendmicro-email-security"}},
		{"mx01.hornetsecurity.com", []string{"hornetsecurity"}},
		{"vade-mx-eu-fallback01.hornetsecurity.com", []string{"hornetsecurity"}},
		{"mx.contoso.com", nil},
		{"", nil},
		{"..", nil},
	}
	reg := Builtin()
	for _, tt := range tests {
		var got []string
		for _, p := range reg.DetectMX(tt.host) {
			got = append(got, p.ID)
		}
		assert.Equal(t, tt.want, got, "DetectMX(%q)", tt.host)
	}
}

func TestGet(t *testing.T) {
	reg := Builtin()

	p, err := reg.Get(" Mimecast-EU ")
	require.NoError(t, err, "ids are case-insensitive")
	assert.Equal(t, "mimecast-eu", p.ID)

	tests := []struct {
		id   string
		want []string // substrings of the error
	}{
		{"mimecast-eu1", []string{`unknown profile "mimecast-eu1"`, "did you mean mimecast-eu?"}},
		{"mimcast-eu", []string{"did you mean mimecast-eu?"}},
		{"mimecast-ue", []string{"mimecast-eu"}},
		{"microsoft-365", []string{"did you mean microsoft365?"}},
		{"mimecast", []string{"did you mean", "mimecast-au"}},
		{"zzzzzzzzzzzz", []string{"known profiles:", "mimecast-eu", "microsoft365"}},
		{"", []string{"no profile id given"}},
	}
	for _, tt := range tests {
		_, err := reg.Get(tt.id)
		require.Error(t, err, tt.id)
		assert.ErrorIs(t, err, ErrUnknownProfile)
		for _, w := range tt.want {
			assert.Contains(t, err.Error(), w, "Get(%q)", tt.id)
		}
	}

	var empty Registry
	_, err = empty.Get("x")
	assert.ErrorIs(t, err, ErrUnknownProfile)
	assert.Empty(t, empty.All())
	assert.Empty(t, empty.DetectMX("smtp.google.com"))
}

// Callers get copies: changing one must not change what others see.
func TestRegistryHandsOutCopies(t *testing.T) {
	reg := Builtin()
	p, err := reg.Get("mimecast-eu")
	require.NoError(t, err)
	p.MXHosts[0] = "changed.example.com"
	p.Name = "changed"
	q, err := reg.Get("mimecast-eu")
	require.NoError(t, err)
	assert.Equal(t, "eu-smtp-inbound-1.mimecast.com", q.MXHosts[0])
	assert.NotEqual(t, "changed", q.Name)

	all := reg.All()
	all[0].SPFIncludes = append(all[0].SPFIncludes[:0], "x.example.com")
	assert.NotEqual(t, all[0].SPFIncludes, reg.All()[0].SPFIncludes)
}

func TestWith(t *testing.T) {
	base := Builtin()
	user := &Profile{
		ID: "acme-gw", Name: "ACME gateway", Kind: KindGateway,
		SPFIncludes: []string{"SPF.ACME.example."},
		MXHosts:     []string{"MX<N>.acme.example"},
		IPRanges:    []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Uncertain:   []string{"mx_hosts:mx<n>.acme.example"},
		Builtin:     true, // ignored: With adds user profiles
		Origin:      "my.yaml:3",
	}
	reg, err := base.With(user)
	require.NoError(t, err)
	assert.Len(t, reg.All(), len(base.All())+1)
	assert.Len(t, base.All(), 22, "With leaves the receiver alone")

	got, err := reg.Get("acme-gw")
	require.NoError(t, err)
	assert.False(t, got.Builtin)
	assert.Equal(t, "my.yaml:3", got.Origin)
	assert.Equal(t, []string{"spf.acme.example"}, got.SPFIncludes, "normalised like a file profile")
	assert.Equal(t, []string{"mx<n>.acme.example"}, got.MXHosts)
	assert.True(t, got.ValueUncertain(KeyMXHosts, "MX<N>.acme.example"))

	ids := []string{}
	for _, p := range reg.DetectMX("mx7.acme.example") {
		ids = append(ids, p.ID)
	}
	assert.Equal(t, []string{"acme-gw"}, ids)

	// A user profile may not take a built-in id.
	dup := &Profile{ID: "mimecast-eu", Name: "My Mimecast", Kind: KindGateway, Origin: "my.yaml:10"}
	_, err = base.With(dup)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrDuplicateID)
	assert.Contains(t, err.Error(), "my.yaml:10")
	assert.Contains(t, err.Error(), `"mimecast-eu" is already used by the built-in profile`)
	assert.Contains(t, err.Error(), "mimecast-eu-custom")

	// Nor may two user profiles share one.
	_, err = base.With(user, user.Clone())
	assert.ErrorIs(t, err, ErrDuplicateID)
	assert.Contains(t, err.Error(), "the profile defined at my.yaml:3")

	// Go-built profiles are validated like file ones.
	bad := &Profile{ID: "Bad_ID", Kind: "relay",
		IPRanges: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 24), {}}}
	_, err = base.With(bad, nil)
	require.Error(t, err)
	for _, w := range []string{
		`"Bad_ID" is not a valid id`,
		"name: missing",
		`"relay" is not a kind`,
		`"10.0.0.1/24" is not a network address, did you mean 10.0.0.0/24?`,
		`"invalid Prefix" is not an IP range`,
		"nil profile",
	} {
		assert.Contains(t, err.Error(), w)
	}
	var perr *Error
	require.True(t, errors.As(err, &perr))
	assert.Equal(t, KeyID, perr.Field)
}

func TestEditDistance(t *testing.T) {
	assert.Equal(t, 0, suggest.EditDistance("abc", "abc"))
	assert.Equal(t, 1, suggest.EditDistance("mimecast-ue", "mimecast-eu"), "a transposition is one edit")
	assert.Equal(t, 1, suggest.EditDistance("mimecast-eu1", "mimecast-eu"))
	assert.Equal(t, 3, suggest.EditDistance("", "abc"))
	assert.Equal(t, "a, b or c", orList([]string{"a", "b", "c"}))
	assert.Equal(t, "a or b", orList([]string{"a", "b"}))
	assert.Equal(t, "a", orList([]string{"a"}))
}

// Builtin and the registry are shared by concurrent checks; the race
// detector checks this.
func TestConcurrentUse(t *testing.T) {
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			reg := Builtin()
			for range 50 {
				_, _ = reg.Get("mimecast-eu")
				_ = reg.DetectMX("eu-smtp-inbound-1.mimecast.com")
				_ = reg.All()
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func TestErrorFormat(t *testing.T) {
	assert.Equal(t, `f.yaml:3: profile "a": mx_hosts: bad`, (&Error{Source: "f.yaml", Line: 3, Profile: "a", Field: "mx_hosts", Msg: "bad"}).Error())
	assert.Equal(t, `line 3: bad`, (&Error{Line: 3, Msg: "bad"}).Error())
	assert.Equal(t, `profile "a": bad`, (&Error{Profile: "a", Msg: "bad"}).Error())
}
