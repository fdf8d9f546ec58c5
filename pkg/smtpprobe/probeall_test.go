package smtpprobe

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counter counts simultaneous connections per address at the dialer.
// Counting on the server side would overcount: a server notices a close
// some time after the client made it, by when the next probe may be
// connected, so it cannot tell "2 at once" from "2 in quick succession".
type counter struct {
	mu     sync.Mutex
	active map[string]int
	peak   map[string]int
}

func newCounter() *counter { return &counter{active: map[string]int{}, peak: map[string]int{}} }

func (c *counter) dial(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := loopbackDial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	ip := netip.MustParseAddrPort(address).Addr().String()
	c.mu.Lock()
	c.active[ip]++
	c.peak[ip] = max(c.peak[ip], c.active[ip])
	c.mu.Unlock()
	return &countedConn{Conn: conn, done: func() {
		c.mu.Lock()
		c.active[ip]--
		c.mu.Unlock()
	}}, nil
}

func (c *counter) peakOf(ip string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak[ip]
}

type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.done)
	return c.Conn.Close()
}

func TestProbeAllPerAddressLimit(t *testing.T) {
	p := testPKI(t)
	cfg := serverConfig(p.leaf.TLSCertificate(true))
	slow := func(c net.Conn) net.Conn { return newDelayConn(c, 20*time.Millisecond) }
	// Three servers (ports) on 127.0.0.1 share one limit; two on 127.0.0.2
	// have their own.
	var servers []Target
	for _, ip := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"} {
		servers = append(servers, smtpServer{TLS: cfg, IP: ip, Wrap: slow}.start(t))
	}
	var ts []Target
	for range 3 {
		ts = append(ts, servers...)
	}
	cnt := newCounter()
	o := p.opts()
	o.Dial = cnt.dial
	start := time.Now()
	rs := ProbeAll(context.Background(), ts, o)
	elapsed := time.Since(start)
	require.Len(t, rs, len(ts))
	for i, r := range rs {
		assert.Equal(t, ts[i], r.Target, "results in input order")
		assert.Empty(t, r.Err)
		assert.NotNil(t, r.TLS)
	}
	assert.Equal(t, DefaultMaxPerAddress, cnt.peakOf("127.0.0.1"), "9 probes of one address, never more than 2 at once")
	assert.Equal(t, DefaultMaxPerAddress, cnt.peakOf("127.0.0.2"), "6 probes of the other, 2 at once")
	// 9 probes of one address, 2 at a time, each about six 20 ms replies:
	// well under the 9 x 6 x 20 ms of doing them one by one, and bounded.
	assert.Less(t, elapsed, 5*time.Second)

	// MaxPerAddress 1: strictly one after another.
	cnt = newCounter()
	o.Dial, o.MaxPerAddress = cnt.dial, 1
	rs = ProbeAll(context.Background(), ts[:3], o)
	assert.Equal(t, 1, cnt.peakOf("127.0.0.1"))
	assert.Len(t, rs, 3)
}

// Two ProbeAll calls at once (a run's MX and smart-host probes) that share
// a Limiter keep the per-address bound between them; without it each call
// would allow its own two.
func TestProbeAllSharedLimiter(t *testing.T) {
	p := testPKI(t)
	cfg := serverConfig(p.leaf.TLSCertificate(true))
	slow := func(c net.Conn) net.Conn { return newDelayConn(c, 20*time.Millisecond) }
	a := smtpServer{TLS: cfg, IP: "127.0.0.1", Wrap: slow}.start(t)
	b := smtpServer{TLS: cfg, IP: "127.0.0.1", Wrap: slow}.start(t)
	run := func(shared *Limiter) int {
		cnt := newCounter()
		o := p.opts()
		o.Dial, o.Limiter = cnt.dial, shared
		var wg sync.WaitGroup
		for _, tgt := range []Target{a, b} {
			wg.Go(func() { ProbeAll(context.Background(), []Target{tgt, tgt, tgt}, o) })
		}
		wg.Wait()
		return cnt.peakOf("127.0.0.1")
	}
	assert.Equal(t, DefaultMaxPerAddress, run(NewLimiter(0)), "shared: 2 at once for the run")
	assert.Greater(t, run(nil), DefaultMaxPerAddress, "unshared: each call has its own 2 (the reason for Limiter)")
}

func TestProbeAllCanceled(t *testing.T) {
	p := testPKI(t)
	tgt := script(t, func(c net.Conn, r *bufio.Reader) { _, _ = r.ReadByte() }) // silent
	o := p.opts()
	o.MaxPerAddress = 1
	o.Timeouts.Banner = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rs := ProbeAll(ctx, []Target{tgt, tgt, tgt}, o)
	within(t, start, 1300*time.Millisecond)
	require.Len(t, rs, 3)
	waited := 0
	for _, r := range rs {
		assert.Equal(t, KindCanceled, r.ErrKind, r.Err)
		if r.ErrPhase == PhaseConnect {
			waited++
		}
	}
	assert.Equal(t, 2, waited, "two never got their turn")
	assert.Empty(t, ProbeAll(ctx, nil, o))
}
