package bulk_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/bulk"
	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// generatedList is an io.Reader of n domain names, made as it is read: the
// input is streamed, as a file would be, and costs no memory of its own.
type generatedList struct {
	n, next int
	buf     []byte
}

func (g *generatedList) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.next < g.n {
		g.buf = append(g.buf, domainName(g.next)...)
		g.buf = append(g.buf, '\n')
		g.next++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	k := copy(p, g.buf)
	g.buf = g.buf[k:]
	return k, nil
}

// countingServer serves the dnstest zone through a handler that counts the
// queries for the shared names, on a UDP socket with a large receive buffer
// (a real authoritative server tunes its own). dnstest's own query log
// grows with every query; it is emptied as the run goes, so the memory
// measured is the client's.
type countingServer struct {
	srv            *dnstest.Server
	addr           string
	nsPort         int
	total, gw, gw2 atomic.Int64
	mx1            atomic.Int64
	udp            *dns.Server
	tcp            *dns.Server
}

func (c *countingServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	c.total.Add(1)
	if len(r.Question) == 1 {
		switch q := r.Question[0]; {
		case q.Qtype == dns.TypeTXT && strings.EqualFold(q.Name, gatewaySPF):
			c.gw.Add(1)
		case q.Qtype == dns.TypeTXT && strings.EqualFold(q.Name, gateway2):
			c.gw2.Add(1)
		case q.Qtype == dns.TypeA && strings.EqualFold(q.Name, "mx1.bulk.test."):
			c.mx1.Add(1)
		}
	}
	c.srv.ServeDNS(w, r)
}

func startCounting(b *testing.B, n int) *countingServer {
	b.Helper()
	srv, err := dnstest.NewServer(bulkZone(n))
	require.NoError(b, err)
	cs := &countingServer{srv: srv}
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(b, err)
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		require.Less(b, try, 10, "no free port pair: %v", err)
	}
	_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	cs.addr = pc.LocalAddr().String()
	_, port, _ := net.SplitHostPort(cs.addr)
	cs.nsPort, _ = strconv.Atoi(port)
	var started sync.WaitGroup
	started.Add(2)
	cs.udp = &dns.Server{PacketConn: pc, Handler: cs, NotifyStartedFunc: started.Done}
	cs.tcp = &dns.Server{Listener: ln, Handler: cs, NotifyStartedFunc: started.Done}
	go func() { _ = cs.udp.ActivateAndServe() }()
	go func() { _ = cs.tcp.ActivateAndServe() }()
	started.Wait()
	b.Cleanup(func() { _ = cs.udp.Shutdown(); _ = cs.tcp.Shutdown() })
	return cs
}

// heapSampler records, while a run goes on, the peak of the live heap (as
// marked by the latest GC) and of the heap's objects, garbage not yet
// collected included (runtime/metrics: no stop-the-world), and keeps
// dnstest's query log empty.
//
// The live heap is the measure of "memory flat": the objects heap peaks
// near GOGC's goal, twice the live heap, so it grows with the server's zone
// (which grows with N) even when the client's memory does not.
type heapSampler struct {
	stop       chan struct{}
	done       chan struct{}
	peakLive   atomic.Uint64
	peakObject atomic.Uint64
}

func heapNow() (live, objects uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func sampleHeap(srv *dnstest.Server) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		sample := func() {
			live, obj := heapNow()
			h.peakLive.Store(max(h.peakLive.Load(), live))
			h.peakObject.Store(max(h.peakObject.Load(), obj))
		}
		for i := 0; ; i++ {
			sample()
			if i%20 == 0 && srv != nil {
				srv.ResetLog()
			}
			select {
			case <-h.stop:
				sample()
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() (live, objects uint64) {
	close(h.stop)
	<-h.done
	return h.peakLive.Load(), h.peakObject.Load()
}

// PeakLive is the peak live heap so far.
func (h *heapSampler) PeakLive() uint64 { return h.peakLive.Load() }

// BenchmarkBulk checks N generated domains (MX, SPF, DMARC/MTA-STS/TLS-RPT;
// no SMTP) against the in-process authoritative server on loopback, with
// one shared resolver, and reports:
//   - domains/s;
//   - peak-live-MB: the peak live heap during the run, above zone-heap-MB,
//     the live heap once the server's zone was loaded (the zone grows with
//     N; the client must not). The live heap is what the last GC found
//     reachable plus what was allocated while it marked, so it still grows
//     somewhat with the zone: a bigger heap means longer GC cycles;
//   - peak-heap-MB: the peak of all heap objects, garbage included (GC
//     pacing lets it reach about twice the live heap, zone included);
//   - retained-MB: the live heap after the run and a GC, above the zone:
//     the resolver's bounded cache, still referenced;
//   - queries/domain: queries sent with the shared cache, and
//     own-cache-queries/domain: what per-domain caches would have sent
//     (each domain's distinct questions);
//   - gateway-queries: how often the shared _spf.gateway include was asked
//     (1 = once for the whole run);
//   - error-domains: domains with an error finding (0 expected).
//
// Run it with:
//
//	go test -run '^$' -bench Bulk -benchtime 1x ./pkg/bulk/
func BenchmarkBulk(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("domains=%d", n), func(b *testing.B) {
			benchBulk(b, n, 128)
		})
	}
}

func benchBulk(b *testing.B, n, concurrency int) {
	cs := startCounting(b, n)
	w := &world{addr: cs.addr, nsPort: cs.nsPort}
	runtime.GC()
	runtime.GC()
	base, _ := heapNow()
	b.ResetTimer()
	for range b.N {
		cs.total.Store(0)
		cs.gw.Store(0)
		cs.gw2.Store(0)
		c, err := resolver.New(resolver.Config{Servers: []string{cs.addr}, CacheSize: bulk.DefaultCacheSize,
			NoLog: true, Attempts: 3, ForgetFailures: true})
		require.NoError(b, err)
		h := sampleHeap(cs.srv)
		start := time.Now()
		sum, err := bulk.Run(context.Background(), bulk.Lines(&generatedList{n: n}), w.config,
			bulk.Options{Concurrency: concurrency, PerDomainTimeout: 30 * time.Second},
			bulk.Deps{Resolver: c}, func(r *report.Report) error { return report.WriteJSONLine(io.Discard, r) })
		elapsed := time.Since(start)
		peakLive, peakObjects := h.Stop()
		require.NoError(b, err)
		runtime.GC()
		retained, _ := heapNow()
		require.Equal(b, n, sum.Domains)

		b.ReportMetric(float64(n)/elapsed.Seconds(), "domains/s")
		b.ReportMetric(float64(peakLive-min(peakLive, base))/(1<<20), "peak-live-MB")
		b.ReportMetric(float64(peakObjects)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(retained-min(retained, base))/(1<<20), "retained-MB")
		b.ReportMetric(float64(base)/(1<<20), "zone-heap-MB")
		b.ReportMetric(float64(cs.total.Load())/float64(n), "queries/domain")
		b.ReportMetric(float64(sum.DNS.Asked)/float64(n), "own-cache-queries/domain")
		b.ReportMetric(float64(cs.gw.Load()), "gateway-queries")
		b.ReportMetric(float64(sum.Errors), "error-domains")
		b.ReportMetric(0, "ns/op") // one op is the whole run; domains/s says it
		if testing.Verbose() {
			cnt := c.Counts()
			b.Logf("n=%d: %v, %.0f domains/s; server saw %d queries (%d gateway, %d gateway include, %d mx1 A); summary %+v; client %+v",
				n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), cs.total.Load(), cs.gw.Load(), cs.gw2.Load(), cs.mx1.Load(), sum.DNS, cnt)
		}
	}
}
