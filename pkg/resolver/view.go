package resolver

import (
	"context"
	"sync"
)

// View is one run's handle on a shared Client: a bulk run gives each domain
// its own View, so that domain's report can say what its own checks asked and
// sent, while the cache and the in-flight dedupe stay shared by every domain
// (the gateway's SPF include, the shared MX hosts, asked once for all).
//
// A View satisfies the same interfaces as the Client (Lookup, QueryServer,
// Log, Stats). It is safe for concurrent use, and cheap: its state is one
// domain's questions and exchanges, dropped with the View.
type View struct {
	c *Client

	mu        sync.Mutex
	log       []LogEntry
	queries   int
	failed    int
	questions map[cacheKey]uint8 // every question this run asked, with viewSent/viewShared bits
}

const (
	viewSent   uint8 = 1 << iota // this run's lookup put the question on the wire
	viewShared                   // answered from the cache or another run's query in flight
)

// ViewStats are a View's counters; see View.Detail.
type ViewStats struct {
	// Queries is the number of exchanges this run's questions put on the
	// wire (retries over TCP and on the next server included).
	Queries int
	// Asked is the number of distinct questions this run asked: what it
	// would have sent with a cache of its own.
	Asked int
	// Sent is the number of those this run was the first to ask, so it
	// sent them.
	Sent int
	// Shared is the number answered without a query of this run's own:
	// from the shared cache, or by waiting on another run's query.
	Shared int
	// Failed is the number of this run's exchanges that failed.
	Failed int
}

// View returns a new View of c.
func (c *Client) View() *View {
	return &View{c: c, questions: make(map[cacheKey]uint8)}
}

// Lookup is Client.Lookup, charged to this View.
func (v *View) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	return v.c.lookup(ctx, v, name, qtype)
}

// QueryServer is Client.QueryServer, charged to this View.
func (v *View) QueryServer(ctx context.Context, server, name string, qtype uint16) (*Answer, error) {
	return v.c.queryServer(ctx, v, server, name, qtype)
}

// Log returns the exchanges this View's questions put on the wire, in the
// order they finished. Answers taken from the shared cache are not in it:
// they cost no exchange. The View keeps its log whatever Config.NoLog says.
func (v *View) Log() []LogEntry {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]LogEntry(nil), v.log...)
}

// Stats is what a report's dns section shows for this run:
//   - queries: the exchanges this run sent (Detail().Queries);
//   - distinct: the distinct questions this run asked, whether it sent them
//     or the shared cache answered them (Detail().Asked) — the number a run
//     with its own cache would have sent. In a bulk run queries is usually
//     below distinct: the difference is what the shared cache saved;
//   - failed: this run's exchanges that failed.
func (v *View) Stats() (queries, distinct, failed int) {
	d := v.Detail()
	return d.Queries, d.Asked, d.Failed
}

// Detail returns all of the View's counters.
func (v *View) Detail() ViewStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := ViewStats{Queries: v.queries, Asked: len(v.questions), Failed: v.failed}
	for _, bits := range v.questions {
		if bits&viewSent != 0 {
			s.Sent++
		}
		if bits&viewShared != 0 && bits&viewSent == 0 {
			// A run's repeat of its own question is not a saving.
			s.Shared++
		}
	}
	return s
}

// record logs one exchange this View caused. A nil View (the Client's own
// callers) records nothing.
func (v *View) record(e LogEntry) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.log = append(v.log, e)
	v.queries++
	if e.failed() {
		v.failed++
	}
}

// noteAnswer records that this View asked key, and whether this run sent it
// or got a shared answer.
func (v *View) noteAnswer(key cacheKey, sent, shared bool) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	bits := v.questions[key]
	if sent {
		bits |= viewSent
	}
	if shared {
		bits |= viewShared
	}
	v.questions[key] = bits
}
