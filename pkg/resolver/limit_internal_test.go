package resolver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock moves only when the test says so.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimiterSpacesTurnsAtTheRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	l := newLimiter(10, clk.now) // burst 1: one turn every 100ms
	var waits []time.Duration
	for range 5 {
		d, ok := l.reserve(time.Time{})
		require.True(t, ok)
		waits = append(waits, d)
	}
	assert.Equal(t, []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}, waits,
		"reservations queue up in arrival order")

	// After the reserved turns have passed, and a long idle spell, the
	// bucket holds no more than its burst.
	clk.advance(time.Hour)
	d, _ := l.reserve(time.Time{})
	assert.Zero(t, d)
	d, _ = l.reserve(time.Time{})
	assert.Equal(t, 100*time.Millisecond, d)
}

// Over any window of W, a limiter of rate r and burst b hands out at most
// b + r·W turns: count the turns a fake clock sees.
func TestLimiterCountOverWindow(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	const rate = 1000.0
	l := newLimiter(rate, clk.now)
	require.EqualValues(t, 50, l.burst)
	var turns []time.Time
	for range 5000 {
		d, ok := l.reserve(time.Time{})
		require.True(t, ok)
		turns = append(turns, clk.now().Add(d))
		clk.advance(100 * time.Microsecond) // callers arrive at 10,000/s, ten times the rate
	}
	window := time.Second
	for i, j := 0, 0; i < len(turns); i++ {
		for turns[i].Sub(turns[j]) >= window {
			j++
		}
		require.LessOrEqual(t, float64(i-j+1), l.burst+rate*window.Seconds(), "turns %d..%d within %v", j, i, window)
	}
	span := turns[len(turns)-1].Sub(turns[0])
	assert.InDelta(t, (5000-l.burst)/rate, span.Seconds(), 0.01)
}

func TestLimiterHonoursTheDeadline(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	l := newLimiter(1, clk.now)
	_, ok := l.reserve(time.Time{})
	require.True(t, ok)
	_, ok = l.reserve(clk.now().Add(500 * time.Millisecond))
	assert.False(t, ok, "the next turn is a second away, after the deadline")
	d, ok := l.reserve(clk.now().Add(2 * time.Second))
	assert.True(t, ok, "the failed reservation took nothing")
	assert.Equal(t, time.Second, d)

	// wait() with a real context: a turn past the deadline fails at once.
	real := newLimiter(1, time.Now)
	require.NoError(t, real.wait(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := real.wait(ctx)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Less(t, time.Since(start), 40*time.Millisecond, "no point waiting for a turn that comes too late")

	// A cancelled wait gives its token back.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	real2 := newLimiter(2, time.Now)
	require.NoError(t, real2.wait(context.Background()))
	assert.ErrorIs(t, real2.wait(ctx2), context.Canceled)
	real2.mu.Lock()
	assert.Greater(t, real2.tokens, -0.5)
	real2.mu.Unlock()
}
