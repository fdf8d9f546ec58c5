package bulk_test

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/bulk"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Memory is flat in the number of domains: over one run of 20,000 domains,
// the peak live heap once 20,000 are done is the peak once 2,000 were done,
// within a generous factor. (One run rather than two: the GC's floating
// garbage grows with the heap it paces against, and two runs would serve
// zones of different sizes.) The cache bound is small so that it is full
// well before 2,000 domains; what remains is the in-flight domains of the
// workers, which do not depend on N.
//
// The live heap (as marked by the last GC) is measured, not the heap with
// its garbage, so the check does not depend on GC pacing. Skipped with
// -short and under the race detector (20,000 domains take minutes there);
// the benchmark measures 1,000 to 100,000.
func TestMemoryFlatInTheNumberOfDomains(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("20,000 domains: skipped with -short and under -race; see BenchmarkBulk")
	}
	const n, early = 20_000, 2_000
	w := startWorld(t, n)
	c := w.client(t, resolver.Config{CacheSize: 2000, NoLog: true})
	runtime.GC()
	runtime.GC()
	base, _ := heapNow()
	h := sampleHeap(w.srv)
	var atEarly uint64
	done := 0
	sum, err := bulk.Run(context.Background(), bulk.Lines(&generatedList{n: n}), w.config,
		bulk.Options{Concurrency: 64, PerDomainTimeout: 30 * time.Second},
		bulk.Deps{Resolver: c}, func(r *report.Report) error {
			if done++; done == early {
				atEarly = h.PeakLive()
			}
			return report.WriteJSONLine(io.Discard, r)
		})
	atEnd, _ := h.Stop()
	require.NoError(t, err)
	require.Equal(t, n, sum.Domains)
	require.Zero(t, sum.Errors)
	mb := func(v uint64) float64 { return float64(v-min(v, base)) / (1 << 20) }
	t.Logf("peak live heap above the loaded zone (%.1f MB): %.1f MB after %d domains, %.1f MB after %d",
		float64(base)/(1<<20), mb(atEarly), early, mb(atEnd), n)
	assert.Less(t, mb(atEnd), 2*mb(atEarly)+4, "10x the domains must not mean 10x the memory")
}
