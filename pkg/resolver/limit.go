package resolver

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// limiter is a token bucket shared by a Client and its Views: rate tokens a
// second, holding at most burst. A caller takes a token, waiting for it to
// accrue if the bucket is empty; turns are handed out in arrival order
// (reservations), so waiting callers do not race each other.
//
// golang.org/x/time/rate would do, but it is not in go.mod, and this is the
// one operation we need (reserve, wait honouring ctx, give the token back on
// cancellation).
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64 // may go negative: tokens reserved by waiting callers
	last   time.Time
}

func newLimiter(rate float64, now func() time.Time) *limiter {
	burst := math.Max(1, math.Floor(rate/20))
	return &limiter{rate: rate, burst: burst, now: now, tokens: burst, last: now()}
}

// reserve takes a token and says how long to wait before using it. If the
// wait would end after deadline (when set), it takes nothing and ok is false.
func (l *limiter) reserve(deadline time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.After(l.last) {
		l.tokens = math.Min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
	}
	if l.tokens < 1 {
		wait = time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
	}
	if !deadline.IsZero() && now.Add(wait).After(deadline) {
		return wait, false
	}
	l.tokens--
	return wait, true
}

// cancel gives back a reserved token that was not used.
func (l *limiter) cancel() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = math.Min(l.burst, l.tokens+1)
}

// wait blocks until the caller may send one exchange, or returns an error
// wrapping the context's error (context.DeadlineExceeded when the turn would
// come after the deadline).
func (l *limiter) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	d, ok := l.reserve(dl)
	if !ok {
		return fmt.Errorf("rate limit of %g queries/s: no turn before the deadline (%v away): %w", l.rate, d.Round(time.Millisecond), context.DeadlineExceeded)
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.cancel()
		return ctx.Err()
	}
}
