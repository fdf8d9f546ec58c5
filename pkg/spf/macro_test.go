package spf

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rfcEnv is the setting of the RFC 7208 §7.4 examples.
func rfcEnv(ip string) *macroEnv {
	return &macroEnv{
		sender:   "strong-bad@email.example.com",
		local:    "strong-bad",
		senderD:  "email.example.com",
		domain:   "email.example.com",
		ip:       netip.MustParseAddr(ip),
		helo:     "mx.example.org",
		receiver: "mx.example.net",
		now:      func() time.Time { return time.Unix(1700000000, 0) },
		ptr:      func(string) string { return "mx.example.org" },
	}
}

func expandString(t *testing.T, s string, ctx macroContext, env *macroEnv) string {
	t.Helper()
	ms, err := parseMacroString(s, ctx)
	require.NoError(t, err, s)
	return ms.expand(env)
}

func TestMacroExpandRFC7208Examples(t *testing.T) {
	// RFC 7208 §7.4, IPv4 client 192.0.2.3.
	env := rfcEnv("192.0.2.3")
	for _, tc := range []struct{ in, want string }{
		{"%{s}", "strong-bad@email.example.com"},
		{"%{o}", "email.example.com"},
		{"%{d}", "email.example.com"},
		{"%{d4}", "email.example.com"},
		{"%{d3}", "email.example.com"},
		{"%{d2}", "example.com"},
		{"%{d1}", "com"},
		{"%{dr}", "com.example.email"},
		{"%{d2r}", "example.email"},
		{"%{l}", "strong-bad"},
		{"%{l-}", "strong.bad"},
		{"%{lr}", "strong-bad"},
		{"%{lr-}", "bad.strong"},
		{"%{l1r-}", "strong"},
		{"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
	} {
		assert.Equal(t, tc.want, expandString(t, tc.in, inDomainSpec, env), tc.in)
	}

	// RFC 7208 §7.4, IPv6 client 2001:db8::cb01. The RFC prints the
	// nibbles in lower case; we write them upper-case like pyspf, which the
	// suite's v-macro-ip6 requires in explanations. DNS names compare
	// case-insensitively, so the lookup is the same.
	env6 := rfcEnv("2001:db8::cb01")
	got := expandString(t, "%{ir}.%{v}._spf.%{d2}", inDomainSpec, env6)
	const rfc = "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
	assert.True(t, strings.EqualFold(rfc, got), "got %s", got)
	assert.Equal(t, "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com", got)
}

func TestMacroExpandLetters(t *testing.T) {
	env := rfcEnv("192.0.2.3")
	env6 := rfcEnv("2001:db8::cb01")
	for _, tc := range []struct {
		in   string
		env  *macroEnv
		want string
	}{
		{"%{i}", env, "192.0.2.3"},
		{"%{v}", env, "in-addr"},
		{"%{v}", env6, "ip6"},
		{"%{c}", env, "192.0.2.3"},
		{"%{c}", env6, "2001:db8::cb01"},
		{"%{h}", env, "mx.example.org"},
		{"%{p}", env, "mx.example.org"},
		{"%{r}", env, "mx.example.net"},
		{"%{t}", env, "1700000000"},
		{"%{S}", env, "strong-bad%40email.example.com"},
		{"%{L}", &macroEnv{local: "~jack&jill=up-a_b3.c"}, "~jack%26jill%3Dup-a_b3.c"},
		{"%{D}", env, "email.example.com"},
		{"%%%_%-", env, "% %20"},
		{"%{d2}.%{lr-}", env, "example.com.bad.strong"},
		{"%{l+-}", &macroEnv{local: "foo-bar+zip"}, "foo.bar.zip"},
		{"%{l2r+-}", &macroEnv{local: "foo-bar+zip+quux"}, "bar.foo"},
		{"%{d200}", env, "email.example.com"},
		{"%{r}", &macroEnv{}, "unknown"},
		{"%{p}", &macroEnv{}, "unknown"},
		{"See http://%{d}/why?s=%{S}&ip=%{C} %{r}", env, "See http://email.example.com/why?s=strong-bad%40email.example.com&ip=192.0.2.3 mx.example.net"},
	} {
		assert.Equal(t, tc.want, expandString(t, tc.in, inExplanation, tc.env), tc.in)
	}
}

func TestMacroParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ctx    macroContext
		reason string
	}{
		{"%", inDomainSpec, "at the end"},
		{"foo%", inDomainSpec, "at the end"},
		{"%a", inDomainSpec, "'%' followed by 'a'"},
		{"%{d", inDomainSpec, "no closing"},
		{"%{}", inDomainSpec, "no macro-letter"},
		{"%{x}", inDomainSpec, "unknown macro-letter 'x'"},
		{"%{d0}", inDomainSpec, "nonzero"},
		{"%{dr2}", inDomainSpec, "not a delimiter"},
		{"%{d;}", inDomainSpec, "not a delimiter"},
		{"%{c}", inDomainSpec, "only allowed in explanation text"},
		{"%{R}", inDomainSpec, "only allowed in explanation text"},
		{"%{t}", inDomainSpec, "only allowed in explanation text"},
		{"a b", inDomainSpec, "byte 0x20"},
		{"a\tb", inExplanation, "byte 0x09"},
		{"caf\xc3\xa9", inExplanation, "byte 0xc3"},
	} {
		_, err := parseMacroString(tc.in, tc.ctx)
		if assert.Error(t, err, tc.in) {
			assert.Contains(t, err.Error(), tc.reason, tc.in)
		}
	}
	// Spaces and c, r, t are fine in explanations and unknown modifiers.
	_, err := parseMacroString("The %{x}-files", inExplanation)
	assert.Error(t, err)
	_, err = parseMacroString("from %{c} at %{t} by %{r}", inExplanation)
	assert.NoError(t, err)
	_, err = parseMacroString("%{c}%{r}%{t}", inModifier)
	assert.NoError(t, err)
}

func TestTruncateDomain(t *testing.T) {
	label := strings.Repeat("a", 59)
	rest := strings.Join([]string{label, label, label, label, "example.com"}, ".") // 4*60+11 = 251
	got := truncateDomain("xx.yy." + rest + ".")                                   // 257 with the final dot dropped
	assert.Equal(t, rest, got, "labels are dropped from the left until at most 253 remain")
	assert.Equal(t, "y."+rest, truncateDomain("y."+rest), "253 is kept")
	assert.Equal(t, "example.com", truncateDomain("example.com."))
}

func TestDottedAndReverse(t *testing.T) {
	assert.Equal(t, "3.2.0.192.in-addr.arpa", reverseName(netip.MustParseAddr("192.0.2.3")))
	assert.Equal(t, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", reverseName(netip.MustParseAddr("2001:db8::cb01")))
	assert.Equal(t, "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1", dottedIP(netip.MustParseAddr("2001:db8::cb01")))
}
