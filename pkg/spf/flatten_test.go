package spf

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publishFlattened returns data with domain's SPF record replaced by the
// flattened set's records.
func publishFlattened(data map[string][]string, domain string, f *Flattened) map[string][]string {
	out := map[string][]string{}
	for name, lines := range data {
		for _, l := range lines {
			if name == domain && strings.HasPrefix(l, "TXT v=spf1") {
				continue
			}
			out[name] = append(out[name], l)
		}
	}
	for _, p := range f.Records {
		out[p.Name] = append(out[p.Name], "TXT "+strings.Join(p.Strings, ""))
	}
	return out
}

// exactlyKnown reports whether a coverage gives every address a known
// pass, fail, softfail or neutral.
func exactlyKnown(c *Coverage) bool {
	if !c.Exact() {
		return false
	}
	for _, r := range []Result{None, PermError, TempError} {
		if s := c.Results[r]; s != nil && len(s.Ranges()) > 0 {
			return false
		}
	}
	return true
}

// assertEquivalent flattens domain's record and checks, by comparing the
// address sets of every result, that the published set gives every client
// what the original gives it without processing limits; it returns the
// flattened set.
func assertEquivalent(t *testing.T, data map[string][]string, domain string, opt FlattenOptions, label string) *Flattened {
	t.Helper()
	ctx := context.Background()
	tree := Expand(ctx, zoneOf(t, data), domain, ExpandOptions{})
	f, err := tree.Flatten(opt)
	require.NoError(t, err, label)
	for _, p := range f.Records {
		assert.LessOrEqual(t, p.AnswerOctets, maxAnswerOctets, "%s: %s answer", label, p.Name)
		for _, s := range p.Strings {
			assert.LessOrEqual(t, len(s), maxStringOctets, "%s: %s string", label, p.Name)
		}
		_, err := Parse(p.Text)
		assert.NoError(t, err, "%s: %s", label, p.Text)
	}
	flat := Expand(ctx, zoneOf(t, publishFlattened(data, domain, f)), domain, ExpandOptions{})
	assert.Equal(t, f.Lookups, flat.Lookups, "%s: the set's own count", label)
	want := tree.Coverage(noLimits)
	got := flat.Coverage(Limits{})
	require.True(t, exactlyKnown(want), "%s: only fully known trees can be compared", label)
	for _, r := range []Result{Pass, Fail, SoftFail, Neutral} {
		assert.Equal(t, resultPrefixes(want, r), resultPrefixes(got, r),
			"%s: addresses with result %s\noriginal %q\nflattened %q", label, r, tree.Root.Text, f.Records[0].Text)
	}
	return f
}

func resultPrefixes(c *Coverage, r Result) []string {
	if s := c.Results[r]; s != nil {
		return prefixStrings(s.Prefixes())
	}
	return []string{}
}

func TestFlattenRandomEquivalence(t *testing.T) {
	exact := 0
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		data, _ := randomZone(r)
		if _, ok := data["d0.test"]; !ok || strings.HasPrefix(data["d0.test"][0], "TIMEOUT") || !strings.HasPrefix(data["d0.test"][0], "TXT v=spf1") {
			continue
		}
		tree := Expand(context.Background(), zoneOf(t, data), "d0.test", ExpandOptions{})
		if !exactlyKnown(tree.Coverage(noLimits)) {
			continue
		}
		exact++
		label := fmt.Sprintf("seed %d\n%s", seed, dumpZone(data))
		for _, max := range []int{0, 1, 10} {
			f := assertEquivalent(t, data, "d0.test", FlattenOptions{MaxLookups: max}, label)
			if max == 0 {
				// Budget 0: whatever is left live cannot be replaced,
				// and says why.
				warnings := strings.Join(f.Warnings, "\n")
				for _, k := range f.Kept {
					assert.Contains(t, warnings, k+" is kept live: ", label)
				}
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d random trees were fully known and checked", exact)
	assert.Greater(t, exact, 30)
}

// A large include tree: the flattened record outgrows one 512-octet answer
// and is chained through _spfN records, each within the limits.
func TestFlattenChains(t *testing.T) {
	data := map[string][]string{
		"big.test": {"TXT v=spf1 include:v1.test include:v2.test include:v3.test mx ~all",
			"TXT google-site-verification=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "MX 10 mail.big.test"},
		"mail.big.test": {"A 192.0.2.25"},
	}
	for v := 1; v <= 3; v++ {
		var terms []string
		for i := 0; i < 40; i++ {
			terms = append(terms, fmt.Sprintf("ip4:10.%d.%d.0/24", v, i*2)) // not adjacent: no merging
		}
		name := fmt.Sprintf("v%d.test", v)
		data[name] = []string{"TXT v=spf1 " + strings.Join(terms[:20], " ") + " include:more." + name + " -all"}
		data["more."+name] = []string{"TXT v=spf1 " + strings.Join(terms[20:], " ") + " -all"}
	}
	within := assertEquivalent(t, data, "big.test", FlattenOptions{MaxLookups: 10}, "within the budget")
	assert.Empty(t, within.Replaced, "7 lookups need no flattening")
	require.Len(t, within.Records, 1)
	assert.Equal(t, "v=spf1 include:v1.test include:v2.test include:v3.test mx ~all", within.Records[0].Text)

	f := assertEquivalent(t, data, "big.test", FlattenOptions{MaxLookups: 0}, "chains")
	require.Greater(t, len(f.Records), 1, "120 ranges do not fit one answer")
	assert.Equal(t, len(f.Records)-1, f.Lookups, "only the chained includes cost lookups")
	assert.Equal(t, "big.test", f.Records[0].Name)
	assert.Equal(t, "_spf1.big.test", f.Records[1].Name)
	assert.Contains(t, f.Records[0].Text, "include:_spf1.big.test")
	assert.True(t, strings.HasSuffix(f.Records[0].Text, " ~all"), f.Records[0].Text)
	for _, w := range f.Warnings {
		t.Log(w)
	}
	assert.Contains(t, strings.Join(f.Warnings, "\n"), "freezes")
}

// With a budget the costliest includes are replaced first, the preferred
// (gateway) include last, and terms that depend on the client stay.
func TestFlattenKeepsCheapAndPreferredLive(t *testing.T) {
	data := map[string][]string{
		"c.test":     {"TXT v=spf1 include:gw.test include:crm.test include:news.test exists:%{i}.allow.test -all"},
		"gw.test":    {"TXT v=spf1 include:gw2.test ip4:192.0.2.0/24 -all"},
		"gw2.test":   {"TXT v=spf1 ip4:198.51.100.0/24 -all"},
		"crm.test":   {"TXT v=spf1 include:crm1.test include:crm2.test include:crm3.test -all"},
		"crm1.test":  {"TXT v=spf1 ip4:203.0.113.0/26 -all"},
		"crm2.test":  {"TXT v=spf1 ip4:203.0.113.64/26 -all"},
		"crm3.test":  {"TXT v=spf1 ip4:203.0.113.128/26 -all"},
		"news.test":  {"TXT v=spf1 include:news1.test -all"},
		"news1.test": {"TXT v=spf1 ip4:100.64.0.0/24 -all"},
	}
	tree := Expand(context.Background(), zoneOf(t, data), "c.test", ExpandOptions{})
	require.Equal(t, 9, tree.Lookups) // gw 2, crm 4, news 2, exists 1
	f, err := tree.Flatten(FlattenOptions{MaxLookups: 3, Prefer: []string{"gw.test"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"include:crm.test", "include:news.test"}, f.Replaced)
	assert.Equal(t, []string{"include:gw.test", "exists:%{i}.allow.test"}, f.Kept)
	assert.Equal(t, 3, f.Lookups)
	// crm's and news's ranges are adjacent terms of one qualifier now:
	// one run, merged and sorted.
	assert.Equal(t, "v=spf1 include:gw.test ip4:100.64.0.0/24 ip4:203.0.113.0/25 ip4:203.0.113.128/26 exists:%{i}.allow.test -all", f.Records[0].Text)
}

func TestFlattenNoRecord(t *testing.T) {
	z := zoneOf(t, map[string][]string{"c.test": {"TXT hello"}})
	_, err := Expand(context.Background(), z, "c.test", ExpandOptions{}).Flatten(FlattenOptions{})
	assert.ErrorIs(t, err, ErrCannotFlatten)
}
