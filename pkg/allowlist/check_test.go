package allowlist_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// mimecastEU is eu._netblocks.mimecast.com as resolved in the ≈2025 snapshot
// of GATEWAYS.md §1.5.
var mimecastEU = []string{"195.130.217.0/24", "91.220.42.0/24", "146.101.78.0/24", "207.82.80.0/24", "213.167.81.0/25",
	"193.7.207.0/25", "213.167.75.0/25", "185.58.85.0/24", "185.58.86.0/24", "193.7.206.0/25", "147.28.36.0/24"}

func gateway(t testing.TB, ranges ...string) allowlist.Gateway {
	return allowlist.Gateway{
		Name:   `Mimecast (Europe excluding Germany, "UK" grid)`,
		Ranges: prefixes(t, ranges...),
		Source: "live SPF of eu._netblocks.mimecast.com",
	}
}

// valid fails the test if the finding would break the JSON contract.
func valid(t *testing.T, f report.Finding) {
	t.Helper()
	r := report.New("contoso.example", "readiness")
	r.Add(f)
	require.NoError(t, r.Validate())
	assert.Equal(t, allowlist.IDGatewayRanges, f.ID)
}

func TestCheckPass(t *testing.T) {
	l, err := allowlist.ParseFile("testdata/exo-format-list.txt")
	require.NoError(t, err)
	f := allowlist.Check(l, gateway(t, mimecastEU...))
	valid(t, f)
	assert.Equal(t, report.StatusPass, f.Status)
	assert.Equal(t, "testdata/exo-format-list.txt", f.Subject)
	assert.Equal(t, `The allow list (12 entries) covers all 11 sending ranges of Mimecast (Europe excluding Germany, "UK" grid); `+
		`ranges from live SPF of eu._netblocks.mimecast.com`, f.Message)
	assert.Empty(t, f.Remediation)
	assert.Equal(t, 12, f.Evidence["entries"])
	assert.Len(t, f.Evidence["gateway_ranges"], 11)
	assert.Equal(t, "live SPF of eu._netblocks.mimecast.com", f.Evidence["source"])
}

func TestCheckPassBySetCoverage(t *testing.T) {
	// Two entries of different forms cover one wider gateway range.
	l := listOf(t, "185.58.84.0/24\n185.58.85.0 - 185.58.85.255\n")
	f := allowlist.Check(l, gateway(t, "185.58.84.0/23"))
	assert.Equal(t, report.StatusPass, f.Status, f.Message)
}

func TestCheckFailExactMissing(t *testing.T) {
	l := listOf(t, "185.58.85.0/24\n")
	f := allowlist.Check(l, gateway(t, "185.58.84.0/22"))
	valid(t, f)
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Equal(t, []string{"185.58.84.0/24", "185.58.86.0/23"}, f.Evidence["missing"])
	assert.Equal(t, []string{"185.58.84.0/24", "185.58.86.0/24", "185.58.87.0/24"}, f.Evidence["missing_exchange"])
	assert.Equal(t, 3, f.Evidence["missing_exchange_count"])
	assert.Equal(t, []string{}, f.Evidence["ipv6_not_allowed"])
	assert.Equal(t, 1, f.Evidence["entries"])
	assert.Equal(t, []string{"185.58.84.0/22"}, f.Evidence["gateway_ranges"])
	assert.Equal(t, "live SPF of eu._netblocks.mimecast.com", f.Evidence["source"])
	assert.Equal(t, `The allow list (1 entry) does not cover 768 of the 1024 IPv4 addresses Mimecast (Europe excluding Germany, "UK" grid) sends from: `+
		`missing 185.58.84.0/24, 185.58.86.0/23; ranges from live SPF of eu._netblocks.mimecast.com`, f.Message)
	assert.Equal(t, `Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @{Add="185.58.84.0/24","185.58.86.0/24","185.58.87.0/24"} `+
		`Microsoft recommends Enhanced Filtering for Connectors on the gateway's partner inbound connector (Set-InboundConnector -EFSkipLastIP $true) over the IP Allow List.`,
		f.Remediation)
}

var addCommand = regexp.MustCompile(`Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @\{Add=([^}]*)\}`)

// TestCheckRemediationParsesBack feeds the remediation's entries back to
// Parse: what the administrator pastes must be exactly what is missing, in
// Exchange Online's form, and must then make the check pass.
func TestCheckRemediationParsesBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		list    string
		gateway []string
	}{
		{"one /24 of a /22 present", "185.58.85.0/24\n", []string{"185.58.84.0/22"}},
		{"empty list, Mimecast EU", "", mimecastEU},
		{"Mimecast ZA, half there", "41.74.192.0/24\n41.74.196.0/23\n41.74.206.0/24\n",
			[]string{"41.74.192.0/22", "41.74.200.0/23", "41.74.196.0/22", "41.74.204.0/23", "41.74.206.0/24"}},
		{"US A with /32s and /29s", "207.211.31.0/25\n170.10.132.56/29\n",
			[]string{"207.211.31.0/25", "205.139.110.0/24", "185.58.84.93/32", "207.211.41.113/32", "170.10.132.56/29", "170.10.132.64/29"}},
		{"IPv6 left out of the command", "", []string{"185.58.85.0/24", "2a01:111:f400::/48"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listOf(t, tc.list)
			gw := gateway(t, tc.gateway...)
			f := allowlist.Check(l, gw)
			require.Equal(t, report.StatusFail, f.Status)
			m := addCommand.FindStringSubmatch(f.Remediation)
			require.NotNil(t, m, f.Remediation)
			back, err := allowlist.Parse(strings.NewReader(m[1]), "remediation")
			require.NoError(t, err)
			assert.Equal(t, f.Evidence["missing_exchange"], strs(back.Prefixes()))
			assert.Empty(t, allowlist.ReviewForExchange(back).Rejected, "every entry of the command is one Exchange Online accepts")

			// Applying it: the list plus the command's entries covers
			// the gateway's IPv4 ranges.
			fixed := listOf(t, tc.list+"\n"+m[1])
			after := allowlist.Check(fixed, gw)
			assert.NotEqual(t, report.StatusFail, after.Status, after.Message)
		})
	}
}

func TestCheckFailWithIPv6AndMany(t *testing.T) {
	gw := gateway(t, append(append([]string{}, mimecastEU...), "2a01:111:f400::/48")...)
	f := allowlist.Check(listOf(t, "91.220.42.0/24"), gw)
	valid(t, f)
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Equal(t, []string{"2a01:111:f400::/48"}, f.Evidence["ipv6_not_allowed"])
	missing := f.Evidence["missing"].([]string)
	assert.Len(t, missing, 11, "the 10 IPv4 ranges left, 193.7.206.0/25 and 193.7.207.0/25 merged into one /24, plus the IPv6 one")
	assert.Contains(t, f.Message, "and 6 more")
	assert.Contains(t, f.Message, "of which 1 range is IPv6, which the Exchange Online IP Allow List cannot hold")
	assert.Contains(t, f.Remediation, "The IPv6 ranges (2a01:111:f400::/48) cannot be added: the IP Allow List takes IPv4 only.")
	assert.Len(t, f.Evidence["missing_exchange"], 10)
}

func TestCheckFailTooManyForExchange(t *testing.T) {
	f := allowlist.Check(listOf(t, ""), gateway(t, "10.0.0.0/8"))
	valid(t, f)
	assert.Equal(t, report.StatusFail, f.Status)
	assert.NotContains(t, f.Evidence, "missing_exchange", "65,536 /24s are not built")
	assert.Equal(t, 65536, f.Evidence["missing_exchange_count"])
	assert.Equal(t, []string{"10.0.0.0/8"}, f.Evidence["missing"])
	assert.Contains(t, f.Remediation, "would take 65536 /24 entries, more than the 1273")
	assert.NotContains(t, f.Remediation, "@{Add=")
}

func TestCheckFailOverLimitAfterAdding(t *testing.T) {
	f := allowlist.Check(listOf(t, addresses(1272)), gateway(t, "185.58.84.0/23"))
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Remediation, "@{Add=")
	assert.Contains(t, f.Remediation, "This takes the list to 1274 entries, over the limit of 1273")
}

func TestCheckWarnRejectedEntries(t *testing.T) {
	l := listOf(t, "# aggregates\n185.58.84.0/22\n2001:db8::/32\n195.130.217.0/24\n")
	f := allowlist.Check(l, gateway(t, "185.58.85.0/24", "185.58.86.0/24", "195.130.217.0/24"))
	valid(t, f)
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Equal(t, `The allow list (3 entries) covers all 3 sending ranges of Mimecast (Europe excluding Germany, "UK" grid), `+
		`but Exchange Online would not accept 2 of its 3 entries: 185.58.84.0/22 (line 2, wider than /24), 2001:db8::/32 (line 3, IPv6); `+
		`ranges from live SPF of eu._netblocks.mimecast.com`, f.Message)
	assert.Equal(t, []string{"185.58.84.0/24", "185.58.85.0/24", "185.58.86.0/24", "185.58.87.0/24"}, f.Evidence["split"])
	assert.Equal(t, 5, f.Evidence["entries_for_exchange"])
	rejected := f.Evidence["rejected"].([]allowlist.Rejection)
	require.Len(t, rejected, 2)
	assert.Equal(t, "185.58.84.0/22", rejected[0].Entry)
	assert.Equal(t, `Replace 185.58.84.0/22 with 185.58.84.0/24, 185.58.85.0/24, 185.58.86.0/24, 185.58.87.0/24. `+
		`Drop 2001:db8::/32: the IP Allow List takes IPv4 only. `+
		`In Exchange Online: Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @{Add="185.58.84.0/24","185.58.85.0/24","185.58.86.0/24","185.58.87.0/24"} `+
		`Microsoft recommends Enhanced Filtering for Connectors on the gateway's partner inbound connector (Set-InboundConnector -EFSkipLastIP $true) over the IP Allow List.`,
		f.Remediation)
	assert.NotContains(t, f.Evidence, "missing")
}

func TestCheckWarnOverLimit(t *testing.T) {
	f := allowlist.Check(listOf(t, addresses(1300)+"185.58.85.0/24\n"), gateway(t, "185.58.85.0/24"))
	valid(t, f)
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Contains(t, f.Message, "it needs 1301 entries in Exchange Online, over the limit of 1273")
	assert.Equal(t, 1273, f.Evidence["max_entries"])
	assert.Contains(t, f.Remediation, "Bring the list under 1274 entries")
}

func TestCheckWarnOnlyIPv6Missing(t *testing.T) {
	f := allowlist.Check(listOf(t, "185.58.85.0/24"), gateway(t, "185.58.85.0/24", "2a01:111:f400::/48", "2a01:111:f403::/49"))
	valid(t, f)
	assert.Equal(t, report.StatusWarn, f.Status, "the IP Allow List cannot hold IPv6: a gap nobody can fix there is not a failure of the list")
	assert.Equal(t, `The allow list (1 entry) covers every IPv4 sending range of Mimecast (Europe excluding Germany, "UK" grid), `+
		`but 2 IPv6 ranges are not covered, and the Exchange Online IP Allow List cannot hold IPv6: 2a01:111:f400::/48, 2a01:111:f403::/49; `+
		`ranges from live SPF of eu._netblocks.mimecast.com`, f.Message)
	assert.Equal(t, []string{"2a01:111:f400::/48", "2a01:111:f403::/49"}, f.Evidence["ipv6_not_allowed"])
	assert.Contains(t, f.Remediation, "Enhanced Filtering for Connectors")
}

func TestCheckUnverified(t *testing.T) {
	gw := gateway(t, "185.58.84.0/23")
	gw.Source = "stored snapshot ~2025 (fallback: SPF lookup timed out)"
	gw.Unverified = true
	pass := allowlist.Check(listOf(t, "185.58.84.0/24, 185.58.85.0/24"), gw)
	assert.Equal(t, report.StatusPass, pass.Status)
	assert.Contains(t, pass.Message, "ranges from stored snapshot ~2025 (fallback: SPF lookup timed out) (an unverified or stale source: confirm them with the vendor)")
	assert.Equal(t, true, pass.Evidence["unverified"])

	fail := allowlist.Check(listOf(t, ""), gw)
	assert.Equal(t, report.StatusFail, fail.Status)
	assert.Contains(t, fail.Message, "unverified or stale source")
	assert.Contains(t, fail.Remediation, "Confirm the ranges with the vendor's current list before adding them.")
}

func TestCheckErrors(t *testing.T) {
	l := listOf(t, "185.58.85.0/24")
	for _, tc := range []struct {
		name string
		list *allowlist.List
		gw   allowlist.Gateway
		msg  string
	}{
		{"ranges unknown", l, allowlist.Gateway{Name: "Mimecast (Canada)", Source: "SPF lookup of ca._netblocks.mimecast.com timed out"},
			"The sending ranges of Mimecast (Canada) are unknown (SPF lookup of ca._netblocks.mimecast.com timed out), so the allow list could not be checked"},
		{"ranges unknown, no source", l, allowlist.Gateway{},
			"The sending ranges of the gateway are unknown (no source gave them), so the allow list could not be checked"},
		{"invalid range", l, allowlist.Gateway{Name: "X", Ranges: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), {}}, Source: "profile file"},
			"Gateway range 2 of X (profile file) is not a valid prefix, so the allow list could not be checked"},
		{"no list", nil, gateway(t, "185.58.85.0/24"),
			`No allow list was given, so it could not be compared with the sending ranges of Mimecast (Europe excluding Germany, "UK" grid)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := allowlist.Check(tc.list, tc.gw)
			valid(t, f)
			assert.Equal(t, report.StatusError, f.Status)
			assert.Equal(t, tc.msg, f.Message)
			assert.Empty(t, f.Remediation)
		})
	}
}
