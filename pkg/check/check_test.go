package check_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/lab"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

func startZones(tb testing.TB) *lab.World {
	tb.Helper()
	w, err := lab.StartDir("../../testdata/zones", "127.0.53.1", "127.0.53.2")
	require.NoError(tb, err)
	tb.Cleanup(w.Close)
	return w
}

func config(tb testing.TB, w *lab.World, domain string) check.Config {
	p, err := profile.Builtin().Get("mimecast-eu")
	require.NoError(tb, err)
	// No SMTP server listens on the test zones' MX addresses (the Postfix
	// lab is test/e2e's); the probes have their own tests in smtpprobe.
	return check.Config{Domain: domain, Mode: mx.ModeSmoke, Profile: p, Profiles: profile.Builtin(), NSPort: w.NSPort, Trace: true,
		SMTP: check.SMTPConfig{Skip: true}}
}

func newClient(tb testing.TB, w *lab.World) *resolver.Client {
	c, err := resolver.New(resolver.Config{Servers: []string{w.Resolver}})
	require.NoError(tb, err)
	return c
}

func TestRunReport(t *testing.T) {
	w := startZones(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep := check.Run(ctx, config(t, w, "bypass.test"), check.Deps{DNS: newClient(t, w)})
	assert.Equal(t, report.Schema, rep.Schema)
	assert.Equal(t, "bypass.test", rep.Domain)
	assert.Equal(t, "mimecast-eu", rep.Profile)
	assert.Equal(t, report.StatusFail, rep.Summary.Worst)
	require.NotNil(t, rep.DNS)
	assert.Equal(t, rep.DNS.Queries, len(rep.DNS.Log))
	assert.Equal(t, rep.DNS.Distinct, rep.DNS.Queries, "no duplicate lookups")
	assert.Equal(t, report.ExitFindings, report.ExitCode(report.StatusFail, rep))
}

// Several checks of the same world through one client, at once: every
// (name, type) still reaches the server once (run with -race).
func TestConcurrentRunsShareOneQueryPerQuestion(t *testing.T) {
	w := startZones(t)
	w.DNS[0].SetDelay(5 * time.Millisecond)
	c := newClient(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			domain := "good-gw.test"
			if i%2 == 1 {
				domain = "eu.good-gw.test" // shares the MX hosts and the zone's servers
			}
			rep := check.Run(ctx, config(t, w, domain), check.Deps{DNS: c})
			assert.False(t, rep.Summary.Worst.AtLeast(report.StatusWarn), "%s: %+v", domain, rep.Summary)
			assert.Zero(t, rep.Summary.Errors, domain)
		}()
	}
	wg.Wait()
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"eu-smtp-inbound-1.mimecast.com.", dns.TypeA},
		{"eu-smtp-inbound-2.mimecast.com.", dns.TypeAAAA},
		{"good-gw.test.", dns.TypeNS},
		{"ns1.zones.test.", dns.TypeA},
	} {
		assert.Equal(t, 1, w.DNS[0].Count(q.name, q.qtype), "%s %s", q.name, dns.TypeToString[q.qtype])
	}
	queries, distinct, _ := c.Stats()
	assert.Equal(t, distinct, queries)
}

// criticalPathRoundTrips is the longest chain of dependent DNS round trips
// in the MX check: NS of the domain -> address of each name server -> MX and
// SOA asked of each server directly. (The MX chain, MX -> A/AAAA of the
// targets, is one shorter and runs beside it.)
const criticalPathRoundTrips = 3

// BenchmarkCheckMX measures one MX check against pkg/dnstest with 20 ms
// injected per query and reports wall time against the critical-path bound
// (dependent round trips x 20 ms) and against what a sequential resolver
// would pay (queries x 20 ms).
func BenchmarkCheckMX(b *testing.B) {
	const perQuery = 20 * time.Millisecond
	w := startZones(b)
	for _, s := range w.DNS {
		s.SetDelay(perQuery)
	}
	cfg := config(b, w, "good-gw.test")
	cfg.Areas = []string{check.AreaMX}
	cfg.Trace = false
	var queries int
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		c := newClient(b, w) // a fresh cache: every run pays its round trips
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rep := check.Run(ctx, cfg, check.Deps{DNS: c})
		cancel()
		if rep.Summary.Worst.AtLeast(report.StatusWarn) || rep.Summary.Errors > 0 {
			b.Fatalf("unexpected report: %+v", rep.Summary)
		}
		queries, _, _ = c.Stats()
	}
	perOp := time.Since(start) / time.Duration(b.N)
	bound := criticalPathRoundTrips * perQuery
	b.ReportMetric(float64(perOp.Microseconds())/1000, "wall-ms")
	b.ReportMetric(float64(bound.Milliseconds()), "bound-ms")
	b.ReportMetric(float64(perOp)/float64(bound), "ratio")
	b.ReportMetric(float64(queries), "queries")
	b.ReportMetric(float64(time.Duration(queries)*perQuery/time.Millisecond), "sequential-ms")
}

// The SPF analysis runs beside the MX one through the same client, fills
// the report's SPF section, and feeds the gateway's live ranges to the
// allow-list comparison.
func TestRunSPFAndAllowlist(t *testing.T) {
	w := startZones(t)
	list, err := allowlist.Parse(strings.NewReader("127.0.56.0/25\n"), "allow.txt")
	require.NoError(t, err)
	cfg := config(t, w, "bypass.test")
	cfg.Allowlist = list
	cfg.SPF = check.SPFConfig{IPs: []netip.Addr{netip.MustParseAddr("127.0.57.9")}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := newClient(t, w)
	rep := check.Run(ctx, cfg, check.Deps{DNS: c})
	require.NoError(t, rep.Validate())
	require.NotNil(t, rep.SPF)
	assert.Equal(t, "bypass.test", rep.SPF.Domain)
	assert.Equal(t, 1, rep.SPF.Lookups)
	status := map[string]report.Status{}
	for _, f := range rep.Findings {
		status[f.ID+" "+f.Subject] = f.Status
	}
	assert.Equal(t, report.StatusFail, status["spf.gateway-include bypass.test"], "bypass.test names only Microsoft 365")
	assert.Equal(t, report.StatusPass, status["spf.ip-authorized bypass.test [127.0.57.9]"])
	assert.Equal(t, report.StatusFail, status["allowlist.gateway-ranges allow.txt"], "half of 127.0.56.0/24 is missing")
	queries, distinct, _ := c.Stats()
	assert.Equal(t, distinct, queries, "the MX and SPF checks share every answer")
}

// --flatten on a domain without a record says why nothing was flattened.
func TestRunFlattenWithoutRecordSaysWhy(t *testing.T) {
	w := startZones(t)
	cfg := config(t, w, "zones.test") // serves no SPF record
	cfg.Areas = []string{check.AreaSPF}
	cfg.SPF = check.SPFConfig{Flatten: true, FlattenLookups: 10}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep := check.Run(ctx, cfg, check.Deps{DNS: newClient(t, w)})
	require.NotNil(t, rep.SPF)
	assert.Nil(t, rep.SPF.Flattened)
	require.Len(t, rep.Notes, 1)
	assert.Contains(t, rep.Notes[0], "--flatten: spf: cannot flatten: zones.test")
}
