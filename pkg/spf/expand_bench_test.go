package spf

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// The cost of expanding a realistic, wide record tree over the network:
// every answer is delayed as a remote server would delay it, so the wall
// time shows whether the expansion pays the depth of the tree in round
// trips (concurrent) or the number of questions (sequential).

const (
	benchRTT    = 20 * time.Millisecond
	benchDomain = "root.bench.test"
)

// benchFanout is how many includes a record has at each level: the root
// includes 3 records, each of those 3, each of those 2, which gives
// 3 + 9 + 18 = 30 include nodes over 4 levels of records. One of the two
// includes of each third-level record is the same shared record, so 9
// branches include _shared.bench.test and its questions are asked once.
var benchFanout = []int{3, 3, 2}

// benchTreeZone builds the tree: the root has a and mx terms, each record of
// levels 1 and 2 an a: term, each unique deepest record an a: term, and
// the shared deepest record an mx: term (an MX question, then its host's
// addresses: the longest dependent chain of the tree).
func benchTreeZone(tb testing.TB) *dnstest.Zone {
	tb.Helper()
	var b strings.Builder
	host, records := 0, 0
	addrTerm := func() string {
		host++
		fmt.Fprintf(&b, "h%d IN A 192.0.2.%d\n", host, host)
		return fmt.Sprintf("a:h%d.bench.test", host)
	}
	// record writes name's TXT record: ip4 range, the extra terms, the
	// includes, -all.
	record := func(name string, extra, includes []string) {
		records++
		terms := append([]string{fmt.Sprintf("ip4:198.51.100.%d", records)}, extra...)
		for _, inc := range includes {
			terms = append(terms, "include:"+inc+".bench.test")
		}
		fmt.Fprintf(&b, "%s IN TXT \"v=spf1 %s -all\"\n", name, strings.Join(terms, " "))
	}
	level := []string{"root"}
	for depth, fan := range benchFanout {
		var next []string
		for _, parent := range level {
			var includes []string
			for j := range fan {
				if depth == len(benchFanout)-1 && j == fan-1 {
					includes = append(includes, "_shared")
					continue
				}
				child := fmt.Sprintf("l%d-%d", depth+1, len(next))
				includes = append(includes, child)
				next = append(next, child)
			}
			var extra []string
			if parent == "root" {
				extra = []string{"a", "mx"}
			} else {
				extra = []string{addrTerm()}
			}
			record(parent, extra, includes)
		}
		level = next
	}
	for _, leaf := range level {
		record(leaf, []string{addrTerm()}, nil)
	}
	record("_shared", []string{"mx:_shared.bench.test"}, nil)
	b.WriteString("_shared IN MX 10 mx1.bench.test.\nmx1 IN A 192.0.2.250\n")
	b.WriteString("root IN A 192.0.2.251\nroot IN MX 10 mx0.bench.test.\nmx0 IN A 192.0.2.252\n")
	return netZone(tb, "bench.test", b.String())
}

// startBench serves the tree with every answer delayed by benchRTT.
func startBench(tb testing.TB) *dnstest.Server {
	tb.Helper()
	srv := dnstest.MustStart(tb, benchTreeZone(tb))
	srv.SetDelay(benchRTT)
	return srv
}

// roundTrips is the critical path of n's expansion in dependent DNS
// round trips: its own TXT question, then the longest chain below it (an
// include's subtree, an address lookup, an MX lookup and then its hosts'
// addresses).
func roundTrips(n *Node) int {
	longest := 0
	for _, ti := range n.Terms {
		d := 0
		switch {
		case ti.Child != nil:
			d = roundTrips(ti.Child)
		case ti.Addr != nil:
			d = 1
		case ti.MX != nil && len(ti.MX.Hosts) > 0:
			d = 2
		case ti.MX != nil:
			d = 1
		}
		longest = max(longest, d)
	}
	return 1 + longest
}

// includeNodes counts the include targets of the tree, each time met.
func includeNodes(n *Node) int {
	count := 0
	for _, ti := range n.Terms {
		if ti.Child != nil {
			count += 1 + includeNodes(ti.Child)
		}
	}
	return count
}

// distinctQuestions counts the (name, type) pairs of a query log.
func distinctQuestions(log []dnstest.Query) int {
	seen := map[string]bool{}
	for _, q := range log {
		seen[q.Name+" "+dns.TypeToString[q.Type]] = true
	}
	return len(seen)
}

func benchClient(tb testing.TB, srv *dnstest.Server) *resolver.Client {
	tb.Helper()
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, AttemptTimeout: 2 * time.Second})
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return c
}

func TestExpandAsksEachQuestionOnce(t *testing.T) {
	srv := startBench(t)
	ctx, cancel := context.WithTimeout(context.Background(), hostileDeadline)
	defer cancel()
	res := benchClient(t, srv)
	tree := Expand(ctx, res, benchDomain, ExpandOptions{})

	require.Empty(t, tree.Incomplete)
	assert.Equal(t, 30, includeNodes(tree.Root))
	// Four levels of records, then the shared record's MX question and
	// its host's addresses.
	assert.Equal(t, len(benchFanout)+1+2, roundTrips(tree.Root))

	log := srv.Log()
	assert.Len(t, log, distinctQuestions(log), "each (name, type) reaches the server once")
	assert.Equal(t, tree.Queries, len(log))
	queries, distinct, failed := res.Stats()
	assert.Equal(t, distinct, queries)
	assert.Zero(t, failed)

	// _shared.bench.test is included by 9 branches, asked once.
	shared := 0
	walkNodes(tree.Root, func(n *Node) {
		if n.Domain == "_shared.bench.test" {
			shared++
			assert.NotNil(t, n.Record)
		}
	})
	assert.Equal(t, 9, shared)
	for _, q := range []uint16{dns.TypeTXT, dns.TypeMX} {
		assert.Equal(t, 1, srv.Count("_shared.bench.test", q), dns.TypeToString[q])
	}
	assert.Equal(t, 1, srv.Count("mx1.bench.test", dns.TypeA))
	assert.Equal(t, 1, srv.Count("mx1.bench.test", dns.TypeAAAA))
}

// benchExpand expands the tree b.N times, each through a fresh client so
// nothing is cached across iterations, and reports the critical-path bound
// (roundTrips of the tree times benchRTT), the ratio of the wall time to
// it, and the questions the server received.
func benchExpand(b *testing.B, opt ExpandOptions) {
	srv := startBench(b)
	ctx := context.Background()
	warm := Expand(ctx, benchClient(b, srv), benchDomain, opt)
	if len(warm.Incomplete) > 0 {
		b.Fatalf("incomplete: %q", warm.Incomplete)
	}
	bound := float64(roundTrips(warm.Root)) * float64(benchRTT) / float64(time.Millisecond)

	queries, distinct := 0, 0
	var wall time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		srv.ResetLog()
		res := benchClient(b, srv)
		b.StartTimer()
		start := time.Now()
		Expand(ctx, res, benchDomain, opt)
		wall += time.Since(start)
		b.StopTimer()
		log := srv.Log()
		queries += len(log)
		distinct += distinctQuestions(log)
		b.StartTimer()
	}
	n := float64(b.N)
	ms := float64(wall) / float64(time.Millisecond) / n
	b.ReportMetric(bound, "bound_ms")
	b.ReportMetric(ms/bound, "x_bound")
	b.ReportMetric(float64(queries)/n, "queries/op")
	b.ReportMetric(float64(distinct)/n, "distinct/op")
}

// BenchmarkExpandTree is the concurrent expansion: its wall time should be
// close to bound_ms, however many questions the tree needs.
func BenchmarkExpandTree(b *testing.B) { benchExpand(b, ExpandOptions{}) }

// BenchmarkExpandTreeSequential is the baseline: one question in flight at
// a time, so the wall time is queries/op round trips.
func BenchmarkExpandTreeSequential(b *testing.B) { benchExpand(b, ExpandOptions{Parallel: 1}) }
