package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// manyZone has h0..h{n-1}.many.test, each with one A record 127.0.10.i.
func manyZone(t *testing.T, n int) *dnstest.Zone {
	var b strings.Builder
	b.WriteString("$ORIGIN many.test.\n$TTL 300\n@ IN SOA ns host 1 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.0.1\n")
	for i := range n {
		fmt.Fprintf(&b, "h%d IN A 127.0.%d.%d\n", i, 10+i/250, i%250)
	}
	return parse(t, b.String(), "many.test.")
}

func hostAddr(i int) string { return fmt.Sprintf("127.0.%d.%d", 10+i/250, i%250) }

func TestBoundedCacheEvictsLeastRecentlyUsed(t *testing.T) {
	srv := dnstest.MustStart(t, manyZone(t, 10))
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, CacheSize: 3})
	require.NoError(t, err)
	ask := func(i int) {
		t.Helper()
		ans, err := c.Lookup(ctx(t), fmt.Sprintf("h%d.many.test", i), dns.TypeA)
		require.NoError(t, err)
		require.Equal(t, []string{hostAddr(i)}, addrs(ans))
	}
	ask(0)
	ask(1)
	ask(2)
	ask(0) // h0 is now the most recently used; h1 the least
	ask(3) // evicts h1
	assert.Equal(t, 3, c.Counts().Cached)
	assert.Equal(t, 1, c.Counts().Evictions)
	ask(0)
	ask(2)
	assert.Equal(t, 1, srv.Count("h0.many.test", dns.TypeA), "kept: asked once")
	assert.Equal(t, 1, srv.Count("h2.many.test", dns.TypeA), "kept: asked once")
	ask(1)
	assert.Equal(t, 2, srv.Count("h1.many.test", dns.TypeA), "evicted, so asked again")

	// CacheSize 0 is today's behaviour: nothing is ever evicted.
	c0 := newClient(t, srv.Addr())
	for i := range 10 {
		_, err := c0.Lookup(ctx(t), fmt.Sprintf("h%d.many.test", i), dns.TypeA)
		require.NoError(t, err)
	}
	assert.Equal(t, 10, c0.Counts().Cached)
	assert.Zero(t, c0.Counts().Evictions)
}

func addrs(a *resolver.Answer) []string {
	var out []string
	for _, ip := range a.Addrs() {
		out = append(out, ip.String())
	}
	return out
}

// Under -race: many callers over more names than the cache holds, with the
// server slow enough that questions are in flight while others are evicted.
// Every caller gets its own name's answer, every ask is a question sent or
// a hit, and the cache stays within its bound plus what is in flight.
func TestEvictionAndDedupeUnderConcurrency(t *testing.T) {
	const names, size, rounds = 40, 8, 3
	srv := dnstest.MustStart(t, manyZone(t, names))
	srv.SetDelay(5 * time.Millisecond)
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, CacheSize: size, NoLog: true})
	require.NoError(t, err)

	var wg sync.WaitGroup
	var maxCached int
	var mu sync.Mutex
	for r := range rounds {
		for i := range names {
			for k := range 5 { // five askers per name per round, through views and the client
				wg.Go(func() {
					name := fmt.Sprintf("h%d.many.test", i)
					var ans *resolver.Answer
					var err error
					if k%2 == 0 {
						ans, err = c.View().Lookup(ctx(t), name, dns.TypeA)
					} else {
						ans, err = c.Lookup(ctx(t), strings.ToUpper(name), dns.TypeA)
					}
					if assert.NoError(t, err, "round %d", r) {
						assert.Equal(t, []string{hostAddr(i)}, addrs(ans))
					}
					n := c.Counts().Cached
					mu.Lock()
					maxCached = max(maxCached, n)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
	}
	counts := c.Counts()
	assert.LessOrEqual(t, counts.Cached, size, "nothing in flight at the end")
	assert.LessOrEqual(t, maxCached, size+names, "bounded by the size plus the questions in flight")
	assert.Greater(t, counts.Evictions, 0)
	assert.Equal(t, len(srv.Log()), counts.Queries)
	assert.Greater(t, counts.Hits, 0, "concurrent askers of one name share its query")
	assert.Equal(t, rounds*names*5, counts.Questions+counts.Hits, "every ask is either a question sent or a hit")
}

// A View shares the cache and the in-flight dedupe, and counts its own run.
func TestViewsShareTheCacheAndCountTheirOwnRun(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, NoLog: true})
	require.NoError(t, err)

	v1 := c.View()
	_, err = v1.Lookup(ctx(t), "a.test", dns.TypeMX)
	require.NoError(t, err)
	_, err = v1.Lookup(ctx(t), "mx.a.test", dns.TypeA)
	require.NoError(t, err)
	_, err = v1.Lookup(ctx(t), "mx.a.test", dns.TypeA) // its own repeat: one question
	require.NoError(t, err)
	_, err = v1.QueryServer(ctx(t), srv.Addr(), "a.test", dns.TypeMX) // direct: its own question
	require.NoError(t, err)

	v2 := c.View()
	_, err = v2.Lookup(ctx(t), "mx.a.test", dns.TypeA) // shared
	require.NoError(t, err)
	_, err = v2.Lookup(ctx(t), "nope.a.test", dns.TypeA) // its own
	require.NoError(t, err)

	assert.Equal(t, resolver.ViewStats{Queries: 3, Asked: 3, Sent: 3, Shared: 0}, v1.Detail())
	assert.Equal(t, resolver.ViewStats{Queries: 1, Asked: 2, Sent: 1, Shared: 1}, v2.Detail())
	q, distinct, failed := v2.Stats()
	assert.Equal(t, []int{1, 2, 0}, []int{q, distinct, failed}, "queries sent by this run; distinct questions it asked")
	require.Len(t, v2.Log(), 1)
	assert.Equal(t, "nope.a.test.", v2.Log()[0].Name)
	require.Len(t, v1.Log(), 3)

	// The Client counts everything, with no log kept.
	assert.Nil(t, c.Log())
	q, distinct, failed = c.Stats()
	assert.Equal(t, []int{4, 4, 0}, []int{q, distinct, failed})
	assert.Equal(t, 4, c.Counts().Questions)
	assert.Equal(t, 2, c.Counts().Hits)
	assert.Len(t, srv.Log(), 4)
}

// One domain's deadline must not become another domain's error: a waiter on
// a question whose asker gave up asks again with its own, live, context.
func TestWaiterDoesNotInheritAnotherRunsTimeout(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	srv.SetFault("mx.a.test", dnstest.Fault{Delay: 300 * time.Millisecond})
	c := newClient(t, srv.Addr())

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.View().Lookup(short, "mx.a.test", dns.TypeA)
		firstErr <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the short run ask first (if it has not, the test still holds)
	ans, err := c.View().Lookup(ctx(t), "mx.a.test", dns.TypeA)
	require.NoError(t, err, "the live run gets the answer, not the other run's timeout")
	assert.Equal(t, resolver.OutcomeOK, ans.Outcome)
	assert.True(t, errors.Is(<-firstErr, resolver.ErrTimeout))
}

// A rate limit spaces the exchanges of all views together. Only a lower
// bound on the elapsed time is asserted: a slow machine makes it longer,
// never shorter, so it cannot flake.
func TestRateLimitAcrossViews(t *testing.T) {
	const n, rate = 30, 100.0 // burst 5: the last of 30 queries goes out no earlier than 250ms in
	srv := dnstest.MustStart(t, manyZone(t, n))
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, Rate: rate})
	require.NoError(t, err)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := c.View().Lookup(ctx(t), fmt.Sprintf("h%d.many.test", i), dns.TypeA)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 240*time.Millisecond, "30 queries at 100/s with a burst of 5")
	log := srv.Log()
	require.Len(t, log, n)
	first, last := log[0].At, log[n-1].At
	assert.GreaterOrEqual(t, last.Sub(first), 200*time.Millisecond)

	// A turn that cannot come before the deadline is a timeout, and sends nothing.
	slow, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, Rate: 1})
	require.NoError(t, err)
	_, err = slow.Lookup(ctx(t), "h0.many.test", dns.TypeA)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = slow.Lookup(short, "h1.many.test", dns.TypeA)
	assert.True(t, errors.Is(err, resolver.ErrTimeout), "%v", err)
	q, _, _ := slow.Stats()
	assert.Equal(t, 1, q)
}

// A lost UDP packet costs one attempt, not the answer, with Attempts > 1.
func TestAttemptsRetryALostUDPQuery(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		seen++
		first := seen == 1
		mu.Unlock()
		if first {
			return // lost
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 127.0.9.4")
		m.Answer = append(m.Answer, rr)
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &dns.Server{PacketConn: pc, Handler: mux}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })

	c, err := resolver.New(resolver.Config{Servers: []string{pc.LocalAddr().String()}, AttemptTimeout: 100 * time.Millisecond, Attempts: 2})
	require.NoError(t, err)
	ans, err := c.Lookup(ctx(t), "lossy.test", dns.TypeA)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.9.4"}, addrs(ans))
	q, distinct, failed := c.Stats()
	assert.Equal(t, []int{2, 1, 1}, []int{q, distinct, failed}, "two exchanges for one question, the first failed")
}

func TestForgetFailures(t *testing.T) {
	for _, forget := range []bool{false, true} {
		t.Run(fmt.Sprint("forget=", forget), func(t *testing.T) {
			srv := dnstest.MustStart(t, bigZoneA(t))
			srv.SetFault("a.test", dnstest.Fault{Rcode: dns.RcodeServerFailure})
			c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, ForgetFailures: forget})
			require.NoError(t, err)
			_, err = c.Lookup(ctx(t), "a.test", dns.TypeMX)
			require.ErrorIs(t, err, resolver.ErrServFail)
			srv.ClearFaults()
			_, err = c.Lookup(ctx(t), "a.test", dns.TypeMX)
			if forget {
				assert.NoError(t, err, "the failure was not kept: asked again")
				assert.Equal(t, 2, srv.Count("a.test", dns.TypeMX))
			} else {
				assert.ErrorIs(t, err, resolver.ErrServFail, "today's behaviour: one run asks a failing question once")
				assert.Equal(t, 1, srv.Count("a.test", dns.TypeMX))
			}
		})
	}
}
