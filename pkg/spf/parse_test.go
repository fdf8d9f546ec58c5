package spf

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseErrorPositions(t *testing.T) {
	tests := []struct {
		record string
		term   int    // want SyntaxError.Term
		offset int    // want SyntaxError.Offset
		text   string // want SyntaxError.Text
		reason string // substring of SyntaxError.Reason
	}{
		{"v=spf1 a mx include:_spf.example.com ip4:10.0.0.0/33 -all", 4, 37, "ip4:10.0.0.0/33", "prefix length 33 is over 32"},
		{"v=spf1  a   ip4:1.2.3.4/032", 2, 12, "ip4:1.2.3.4/032", "leading zero"},
		{"v=spf1 ip4:1.2.3", 1, 7, "ip4:1.2.3", "not an IPv4 address"},
		{"v=spf1 ip4:1.2.3.04", 1, 7, "ip4:1.2.3.04", "not an IPv4 address"},
		{"v=spf1 ip4:1.2.3.4:8080", 1, 7, "ip4:1.2.3.4:8080", "not an IPv4 address"},
		{"v=spf1 ip4", 1, 7, "ip4", "needs \":\" and an address"},
		{"v=spf1 ip4:1.2.3.4//32", 1, 7, "ip4:1.2.3.4//32", "not a number"},
		{"v=spf1 ip6:1.2.3.4", 1, 7, "ip6:1.2.3.4", "not an IPv6 address"},
		{"v=spf1 ip6::CAFE::BABE", 1, 7, "ip6::CAFE::BABE", "not an IPv6 address"},
		{"v=spf1 ip6:::1/129", 1, 7, "ip6:::1/129", "prefix length 129 is over 128"},
		{"v=spf1 ip6:fe80::1%eth0", 1, 7, "ip6:fe80::1%eth0", "not an IPv6 address"},
		{"v=spf1 a/24/64", 1, 7, "a/24/64", "prefix length 64 is over 32"},
		{"v=spf1 a//129", 1, 7, "a//129", "prefix length 129 is over 128"},
		{"v=spf1 mx/33", 1, 7, "mx/33", "prefix length 33 is over 32"},
		{"v=spf1 a:", 1, 7, "a:", "expected \":\" and a domain"},
		{"v=spf1 ptr/0", 1, 7, "ptr/0", "\"ptr\" takes only"},
		{"v=spf1 ptr:", 1, 7, "ptr:", "\"ptr\" takes only"},
		{"v=spf1 -all.", 1, 7, "-all.", "unknown mechanism \"all.\""},
		{"v=spf1 -all:foo", 1, 7, "-all:foo", "takes no argument"},
		{"v=spf1 all/8", 1, 7, "all/8", "takes no argument"},
		{"v=spf1 include", 1, 7, "include", "needs \":\" and a domain"},
		{"v=spf1 include:", 1, 7, "include:", "needs \":\" and a domain"},
		{"v=spf1 exists:a.example.com/24", 1, 7, "exists:a.example.com/24", "not a valid top label"},
		{"v=spf1 a:foo-bar", 1, 7, "a:foo-bar", "must end with"},
		{"v=spf1 a:museum.", 1, 7, "a:museum.", "must end with"},
		{"v=spf1 a:111.222.33.44", 1, 7, "a:111.222.33.44", "\"44\" is not a valid top label"},
		{"v=spf1 a:example.-com", 1, 7, "a:example.-com", "not a valid top label"},
		{"v=spf1 a:example.com:8080", 1, 7, "a:example.com:8080", "not a valid top label"},
		{"v=spf1 moo", 1, 7, "moo", "unknown mechanism \"moo\""},
		{"v=spf1 redirect:example.com", 1, 7, "redirect:example.com", "is a modifier"},
		{"v=spf1 1up=foo", 1, 7, "1up=foo", "not a valid modifier name"},
		{"v=spf1 =all", 1, 7, "=all", "empty name"},
		{"v=spf1 moo.cow/far_out=man:dog/cat", 1, 7, "moo.cow/far_out=man:dog/cat", "unknown mechanism"},
		{"v=spf1 foo=%abc", 1, 7, "foo=%abc", "'%' followed by 'a'"},
		{"v=spf1 exp=", 1, 7, "exp=", "exp= needs a domain"},
		{"v=spf1 redirect=-all", 1, 7, "redirect=-all", "not a valid domain-spec"},
		{"v=spf1 exp=%{r}.example.com", 1, 7, "exp=%{r}.example.com", "only allowed in explanation text"},
		{"v=spf1 a:%{a}.example.com", 1, 7, "a:%{a}.example.com", "unknown macro-letter 'a'"},
		{"v=spf1 exists:%{d0}.example.com", 1, 7, "exists:%{d0}.example.com", "must be nonzero"},
		{"v=spf1 exists:%(ir).sbl.example.com", 1, 7, "exists:%(ir).sbl.example.com", "'%' followed by '('"},
		{"v=spf1 exists:foo%.sbl.example.com", 1, 7, "exists:foo%.sbl.example.com", "'%' followed by '.'"},
		{"v=spf1 redirect=a.example.com -all redirect=b.example.com", 3, 35, "redirect=b.example.com", "second redirect= modifier (term 1 is the first)"},
		{"v=spf1 exp=a.example.com exp=b.example.com", 2, 25, "exp=b.example.com", "second exp="},
		{"v=spf1 a:\xef\xbb\xbfgarbage.example.net -all", 1, 7, "a:\xef\xbb\xbfgarbage.example.net", "non-ASCII byte 0xef at offset 9"},
		{"v=spf1 a:example.net \x96all", 2, 21, "\x96all", "non-ASCII byte 0x96"},
		{"v=spf1 a:ctrl.example.com\rptr -all", 1, 7, "a:ctrl.example.com\rptr", "control character 0x0d"},
		{"v=spf1 ip4:192.0.2.5\n include:x.example.com", 1, 7, "ip4:192.0.2.5\n", "control character 0x0a"},
		{"v=spf1 a:foo.example.com\x00", 1, 7, "a:foo.example.com\x00", "control character 0x00"},
	}
	for _, tc := range tests {
		t.Run(tc.record, func(t *testing.T) {
			rec, err := Parse(tc.record)
			require.Error(t, err)
			assert.Nil(t, rec)
			var se *SyntaxError
			require.True(t, errors.As(err, &se), "want *SyntaxError, got %T", err)
			assert.True(t, errors.Is(err, ErrSyntax))
			assert.Equal(t, tc.term, se.Term, "term index")
			assert.Equal(t, tc.offset, se.Offset, "offset")
			assert.Equal(t, tc.text, se.Text, "term text")
			assert.Contains(t, se.Reason, tc.reason)
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	_, err := Parse("v=spf1 a mx include:_spf.example.com ip4:10.0.0.0/33 -all")
	require.Error(t, err)
	assert.Equal(t, `term 4 "ip4:10.0.0.0/33": prefix length 33 is over 32`, err.Error())
}

func TestParseVersion(t *testing.T) {
	for _, rec := range []string{"v=spf1", "V=SPF1", "v=SpF1 ~all", "v=spf1 ", "v=spf1  a  -all  "} {
		_, err := Parse(rec)
		assert.NoError(t, err, rec)
		assert.True(t, IsSPF(rec), rec)
	}
	for _, rec := range []string{"", "v=spf", "v=spf10", "v=spf1mx", "v=spf1\tmx", " v=spf1", "v=spf2.0/pra", "spf1"} {
		assert.False(t, IsSPF(rec), rec)
		_, err := Parse(rec)
		var se *SyntaxError
		require.True(t, errors.As(err, &se), rec)
		assert.Equal(t, 0, se.Term, rec)
	}
}

func TestParseTerms(t *testing.T) {
	rec, err := Parse("v=spf1  +a:foo.example.com/24//64 ~mx//0 -ptr ?ip4:192.0.2.1 ip4:192.0.2.0/24 IP6:2001:DB8::/32 " +
		"exists:%{ir}.%{l1r-}.sbl.%{d2} Include:_spf.example.com all redirect=_spf.%{d} exp=explain.%{d2}. moo.cow-far_out=man:dog/cat ")
	require.NoError(t, err)
	require.Len(t, rec.Terms, 12)

	type want struct {
		offset int
		text   string
		q      Qualifier
		kind   MechanismKind
		domain string
		c4, c6 int
		net    string
	}
	wants := []want{
		{8, "+a:foo.example.com/24//64", '+', MechA, "foo.example.com", 24, 64, ""},
		{34, "~mx//0", '~', MechMX, "", 32, 0, ""},
		{41, "-ptr", '-', MechPTR, "", 32, 128, ""},
		{46, "?ip4:192.0.2.1", '?', MechIP4, "", 32, 128, "192.0.2.1/32"},
		{61, "ip4:192.0.2.0/24", '+', MechIP4, "", 32, 128, "192.0.2.0/24"},
		{78, "IP6:2001:DB8::/32", '+', MechIP6, "", 32, 128, "2001:db8::/32"},
		{96, "exists:%{ir}.%{l1r-}.sbl.%{d2}", '+', MechExists, "%{ir}.%{l1r-}.sbl.%{d2}", 32, 128, ""},
		{127, "Include:_spf.example.com", '+', MechInclude, "_spf.example.com", 32, 128, ""},
		{152, "all", '+', MechAll, "", 32, 128, ""},
	}
	for i, w := range wants {
		tm := rec.Terms[i]
		assert.Equal(t, i+1, tm.Index)
		assert.Equal(t, w.offset, tm.Offset, w.text)
		assert.Equal(t, w.text, tm.Text)
		assert.Equal(t, w.text, rec.Text[tm.Offset:tm.Offset+len(tm.Text)])
		require.NotNil(t, tm.Mechanism, w.text)
		m := tm.Mechanism
		assert.Equal(t, w.q, m.Qualifier, w.text)
		assert.Equal(t, w.kind, m.Kind, w.text)
		assert.Equal(t, w.domain, m.Domain.String(), w.text)
		if w.kind == MechA || w.kind == MechMX {
			assert.Equal(t, w.c4, m.CIDR4, w.text)
			assert.Equal(t, w.c6, m.CIDR6, w.text)
		}
		if w.net != "" {
			assert.Equal(t, w.net, m.Network.String(), w.text)
		}
	}
	require.NotNil(t, rec.Redirect)
	assert.Equal(t, 10, rec.Redirect.Index)
	assert.Equal(t, "_spf.%{d}", rec.Redirect.Modifier.Value.String())
	require.NotNil(t, rec.Exp)
	assert.Equal(t, "explain.%{d2}.", rec.Exp.Modifier.Value.String())
	unknown := rec.Terms[11].Modifier
	require.NotNil(t, unknown)
	assert.Equal(t, "moo.cow-far_out", unknown.Name)
	assert.Equal(t, "man:dog/cat", unknown.Value.String())
	assert.False(t, unknown.Known())
	assert.True(t, rec.HasAll())

	assert.Equal(t, "v=spf1 a:foo.example.com/24//64 ~mx//0 -ptr ?ip4:192.0.2.1 ip4:192.0.2.0/24 ip6:2001:db8::/32 "+
		"exists:%{ir}.%{l1r-}.sbl.%{d2} include:_spf.example.com all redirect=_spf.%{d} exp=explain.%{d2}. moo.cow-far_out=man:dog/cat",
		rec.String())
}

func TestParseAccepts(t *testing.T) {
	for _, rec := range []string{
		"v=spf1 a:foo:bar/baz.example.com",     // ':' and '/' before the top label
		"v=spf1 a:foo.example.xn--zckzah -all", // dashes in the top label
		"v=spf1 a:example.1-2",                 // all digits, but with a dash
		"v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all",
		"v=spf1 exists:%{i}.%{l2r-}.user.%{d2}",
		"v=spf1 exists:%{l2r+-}.user.%{d2}",
		"v=spf1 redirect=%{d}.d.spf.example.com.",
		"v=spf1 a:%{H}.bar -all",
		"v=spf1 exists:%{p}.%%",
		"v=spf1 default=+",
		"v=spf1 foo=",
		"v=spf1 foo=%{c}%{r}%{t}", // unknown modifiers are never expanded
		"v=spf1 ip6:::FFFF:1.2.3.4 ip6:::1.1.1.1/0",
		"v=spf1 a/0 a//0 mx/0//0",
		"v=spf1 ptr:example.com",
		"v=spf1 exp=%{d}.",
	} {
		_, err := Parse(rec)
		assert.NoError(t, err, rec)
	}
}

func TestParseIP4WithoutPrefixAndMapped(t *testing.T) {
	rec, err := Parse("v=spf1 ip4:192.0.2.1 ip6:::ffff:192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParsePrefix("192.0.2.1/32"), rec.Terms[0].Mechanism.Network)
	assert.Equal(t, 128, rec.Terms[1].Mechanism.Network.Bits())
	assert.True(t, rec.Terms[1].Mechanism.Network.Addr().Is4In6())
}

func TestMechanismCountsLookup(t *testing.T) {
	for k, want := range map[MechanismKind]bool{
		MechAll: false, MechIP4: false, MechIP6: false,
		MechInclude: true, MechA: true, MechMX: true, MechPTR: true, MechExists: true,
	} {
		assert.Equal(t, want, k.CountsLookup(), k)
	}
}

func TestMacroStringHelpers(t *testing.T) {
	rec, err := Parse("v=spf1 include:_spf.example.com exists:%{ir}.%{p}.%{i}.x.example")
	require.NoError(t, err)
	lit, ok := rec.Terms[0].Mechanism.Domain.Literal()
	assert.True(t, ok)
	assert.Equal(t, "_spf.example.com", lit)
	_, ok = rec.Terms[1].Mechanism.Domain.Literal()
	assert.False(t, ok)
	assert.Equal(t, "ip", rec.Terms[1].Mechanism.Domain.Letters())
}
