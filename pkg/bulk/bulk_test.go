package bulk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/bulk"
	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

func collectEntries(t *testing.T, src bulk.DomainSource) []bulk.Entry {
	t.Helper()
	var out []bulk.Entry
	for {
		e, err := src.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, e)
	}
}

func TestLinesSkipsCommentsAndBlankLines(t *testing.T) {
	in := "\uFEFFcontoso.com\r\n# a comment\n\n   \n  fabrikam.com   # prod\nfoo#bar.com\n\t# indented comment\nlast.example"
	got := collectEntries(t, bulk.Lines(strings.NewReader(in)))
	assert.Equal(t, []bulk.Entry{
		{Line: 1, Index: 0, Text: "contoso.com"},
		{Line: 5, Index: 1, Text: "fabrikam.com"},
		{Line: 6, Index: 2, Text: "foo#bar.com"}, // not a comment: reported as not a domain name
		{Line: 8, Index: 3, Text: "last.example"},
	}, got)

	// A line longer than any name neither stops the run nor swallows the next line.
	long := strings.Repeat("x", 100_000)
	got = collectEntries(t, bulk.Lines(strings.NewReader("a.test\n"+long+"\nb.test\n")))
	require.Len(t, got, 3)
	assert.Equal(t, "a.test", got[0].Text)
	assert.Greater(t, len(got[1].Text), 253)
	assert.Less(t, len(got[1].Text), 5000, "only the start of the line is kept")
	assert.Equal(t, bulk.Entry{Line: 3, Index: 2, Text: "b.test"}, got[2])
}

func TestParseShard(t *testing.T) {
	s, err := bulk.ParseShard("2/5")
	require.NoError(t, err)
	assert.Equal(t, bulk.Shard{Index: 2, Count: 5}, s)
	for _, bad := range []string{"", "1", "5/5", "-1/3", "a/b", "0/0", "1/2/3"} {
		_, err := bulk.ParseShard(bad)
		assert.Error(t, err, bad)
	}
}

// The union of the shards i/n for i in 0..n-1 is the whole list, and they
// are disjoint; each shard is stable whatever the comments around the lines.
func TestShardsPartitionTheList(t *testing.T) {
	var b strings.Builder
	var all []string
	for i := range 1000 {
		if i%17 == 0 {
			b.WriteString("# comment\n\n")
		}
		name := fmt.Sprintf("s%04d.test", i)
		all = append(all, name)
		b.WriteString(name + "\n")
	}
	input := b.String()
	for _, n := range []int{1, 2, 3, 7, 16} {
		seen := map[string]int{}
		for i := range n {
			shard := bulk.Shard{Index: i, Count: n}
			for _, e := range collectEntries(t, bulk.Lines(strings.NewReader(input))) {
				if shard.Keeps(e.Index) {
					seen[e.Text]++
				}
			}
		}
		require.Len(t, seen, len(all), "n=%d: the union is the whole list", n)
		for _, name := range all {
			require.Equal(t, 1, seen[name], "n=%d: %s in exactly one shard", n, name)
		}
	}

	// Stable across jobs: comments moved around do not move lines between shards.
	plain := strings.Join(all, "\n")
	shard := bulk.Shard{Index: 3, Count: 7}
	keep := func(in string) []string {
		var out []string
		for _, e := range collectEntries(t, bulk.Lines(strings.NewReader(in))) {
			if shard.Keeps(e.Index) {
				out = append(out, e.Text)
			}
		}
		return out
	}
	assert.Equal(t, keep(plain), keep(input))
}

// jsonLines runs bulk.Run over input and returns the emitted JSON Lines,
// decoded, plus the summary.
func runJSON(t *testing.T, w *world, c *resolver.Client, input string, opts bulk.Options) ([]report.Report, bulk.Summary) {
	t.Helper()
	var out bytes.Buffer
	sum, err := bulk.Run(context.Background(), bulk.Lines(strings.NewReader(input)), w.config, opts,
		bulk.Deps{Resolver: c}, func(r *report.Report) error { return report.WriteJSONLine(&out, r) })
	require.NoError(t, err)
	var reps []report.Report
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r report.Report
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		reps = append(reps, r)
	}
	require.NoError(t, sc.Err())
	return reps, sum
}

func hasFinding(r report.Report, id string) bool {
	return slices.ContainsFunc(r.Findings, func(f report.Finding) bool { return f.ID == id })
}

// 1,000 lines: every 7th domain's server never answers (per-domain timeout),
// every 11th line is not a domain name, every 13th repeats an earlier
// domain, with comments and blank lines between. Exactly one JSON line per
// selected input line, each naming its line's domain.
func TestNeverLosesADomain(t *testing.T) {
	const n = 1000
	w := startWorld(t, n)
	var b strings.Builder
	var want []string // domain of each selected line, as the report names it
	timedOut := map[string]bool{}
	for i := range n {
		if i%50 == 0 {
			b.WriteString("# batch\n\n")
		}
		var line string
		switch {
		case i%11 == 0:
			line = fmt.Sprintf("bad..name%d.bulk.test", i)
		case i%13 == 0:
			line = strings.ToUpper(domainName(i - 1)) // a duplicate, in another spelling
		default:
			line = domainName(i)
		}
		if i%7 == 0 && i%11 != 0 {
			d := strings.ToLower(line)
			w.srv.SetFault(d, dnstest.Fault{Drop: true})
			timedOut[d] = true
		}
		b.WriteString(line + "\n")
		if i%11 == 0 {
			want = append(want, line)
		} else {
			want = append(want, strings.ToLower(line))
		}
	}
	c := w.client(t, resolver.Config{CacheSize: 500, NoLog: true})
	reps, sum := runJSON(t, w, c, b.String(), bulk.Options{Concurrency: 64, PerDomainTimeout: timeoutFor(t)})

	got := make([]string, 0, len(reps))
	for _, r := range reps {
		got = append(got, r.Domain)
		switch {
		case strings.Contains(r.Domain, ".."):
			assert.True(t, hasFinding(r, bulk.IDInput), "%s: bulk.input", r.Domain)
			assert.Equal(t, 1, r.Summary.Errors)
		case timedOut[r.Domain]:
			assert.True(t, hasFinding(r, bulk.IDTimeout), "%s: bulk.timeout %+v", r.Domain, r.Findings)
		default:
			assert.Zero(t, r.Summary.Errors, "%s: %+v", r.Domain, r.Findings)
			assert.True(t, hasFinding(r, "spf.present"), "%s", r.Domain)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got, "one report per selected line, each for its own domain")
	assert.Equal(t, n, sum.Domains)
	assert.Equal(t, 91, sum.Invalid)
	wantTimedOut := 0
	for _, d := range want {
		if timedOut[d] {
			wantTimedOut++ // a duplicate of a dropped domain times out too
		}
	}
	assert.Equal(t, wantTimedOut, sum.TimedOut)
	assert.Equal(t, sum.Invalid+sum.TimedOut, sum.Errors)
	total := 0
	for _, k := range sum.Worst {
		total += k
	}
	assert.Equal(t, n, total, "every report counted once by worst status")
	assert.Equal(t, report.ExitIncomplete, sum.ExitCode)
}

func TestShardedRunsCoverTheList(t *testing.T) {
	const n, shards = 120, 3
	w := startWorld(t, n)
	var b strings.Builder
	for i := range n {
		b.WriteString(domainName(i) + "\n")
	}
	c := w.client(t, resolver.Config{CacheSize: 1000, NoLog: true})
	seen := map[string]int{}
	for i := range shards {
		reps, sum := runJSON(t, w, c, b.String(), bulk.Options{Concurrency: 16, Shard: bulk.Shard{Index: i, Count: shards}})
		assert.Equal(t, n/shards, sum.Domains)
		for _, r := range reps {
			seen[r.Domain]++
		}
	}
	require.Len(t, seen, n)
	for d, k := range seen {
		assert.Equal(t, 1, k, d)
	}
}

// Each report's dns section is about its own domain: the shared names are
// asked once for the whole run, and the gateway's include is sent once.
func TestSharedCacheAndPerDomainStats(t *testing.T) {
	const n = 200
	w := startWorld(t, n)
	var b strings.Builder
	for i := range n {
		b.WriteString(domainName(i) + "\n")
	}
	c := w.client(t, resolver.Config{CacheSize: 5000, NoLog: true})
	reps, sum := runJSON(t, w, c, b.String(), bulk.Options{Concurrency: 32})
	require.Len(t, reps, n)
	counts := c.Counts()
	// A lost UDP packet (rare, even on loopback) adds a retry; the exact
	// counts hold when no exchange failed, the question counts always.
	if counts.Failed == 0 {
		assert.Equal(t, 1, w.srv.Count(gatewaySPF, 16), "the gateway's include is asked once for the whole run")
		assert.Equal(t, 1, w.srv.Count(gateway2, 16))
		assert.Equal(t, 1, w.srv.Count("mx1.bulk.test", 1))
		assert.Equal(t, len(w.srv.Log()), sum.DNS.Queries, "the summary counts every query the server saw")
		for _, r := range reps {
			require.NotNil(t, r.DNS)
			assert.LessOrEqual(t, r.DNS.Queries, r.DNS.Distinct, "%s: a domain sends at most what it asks", r.Domain)
		}
	}
	assert.Greater(t, sum.DNS.Shared, 0)
	assert.Equal(t, sum.DNS.Asked-sum.DNS.Shared, counts.Questions, "every question was sent by one domain or shared")
}

// A failing writer stops the run and says so; nothing is emitted after it.
func TestEmitErrorStopsTheRun(t *testing.T) {
	w := startWorld(t, 50)
	var b strings.Builder
	for i := range 50 {
		b.WriteString(domainName(i) + "\n")
	}
	c := w.client(t, resolver.Config{NoLog: true})
	var mu sync.Mutex
	calls := 0
	sum, err := bulk.Run(context.Background(), bulk.Lines(strings.NewReader(b.String())), w.config, bulk.Options{Concurrency: 4},
		bulk.Deps{Resolver: c}, func(r *report.Report) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 5 {
				return io.ErrClosedPipe
			}
			return nil
		})
	require.ErrorIs(t, err, io.ErrClosedPipe)
	assert.Equal(t, 4, sum.Domains)
	assert.Equal(t, 5, calls)
}

// timeoutFor is the per-domain timeout of the never-lose test: short enough
// that the dropped domains cost little, long enough that a healthy domain
// finishes well within it even under the race detector on 2 cores.
func timeoutFor(t *testing.T) time.Duration {
	// Below the 3 attempts of 1s each that a dropped query costs, so the
	// dropped domains end on this timeout; above 2 attempts, so a healthy
	// domain survives a lost packet.
	return 2500 * time.Millisecond
}
