// Package bulk checks many domains with one shared resolver: a bounded pool
// of workers streams the domains from a reader and hands each domain's report
// on as soon as it is done, so memory stays flat however long the list is.
//
// Every selected input line yields exactly one report, whatever happens to
// it: a line that is not a domain name gets a report with a bulk.input error
// finding, a domain whose checks run out of time gets its partial report
// with a bulk.timeout error finding. Only cancelling the context (Ctrl-C, a
// failing writer) stops the run early, and then Run says so.
package bulk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Finding IDs of the bulk runner itself.
const (
	// IDInput: the input line is not a domain name (error: nothing was checked).
	IDInput = "bulk.input"
	// IDTimeout: the domain's checks did not finish within the per-domain
	// timeout; the report holds what was learned before it (error).
	IDTimeout = "bulk.timeout"
	// IDInternal: the checks of the domain panicked (error; a bug).
	IDInternal = "bulk.internal"
)

// Defaults of Options.
const (
	DefaultConcurrency      = 64
	DefaultPerDomainTimeout = 30 * time.Second
	// DefaultCacheSize is the resolver cache bound the CLI uses: the
	// shared names (gateway includes, shared MX hosts) stay in it because
	// every domain touches them, and each domain's own names, asked once,
	// are what gets evicted.
	DefaultCacheSize = 20000
)

// Options tune a bulk run.
type Options struct {
	// Concurrency is the number of domains checked at once (default 64).
	Concurrency int
	// PerDomainTimeout bounds each domain's checks (default 30s).
	PerDomainTimeout time.Duration
	// Shard selects the entries this run checks; zero = all.
	Shard Shard
	// FailOn is the --fail-on threshold for Summary.ExitCode (zero = fail).
	FailOn report.Status
}

// Deps are the run's connections to the outside world.
type Deps struct {
	// Resolver is shared by every domain: each domain's checks run on a
	// View of it (its own query log and stats, the shared cache). Give it
	// a CacheSize and NoLog for long lists.
	Resolver *resolver.Client
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// Summary describes a finished (or stopped) run.
type Summary struct {
	// Domains is the number of reports emitted: one per selected line.
	Domains int
	// Worst counts the reports by their worst domain status (pass, info,
	// warn, fail); every report is in exactly one.
	Worst map[report.Status]int
	// Errors is the number of reports with at least one error finding
	// (some check could not run); Invalid and TimedOut are among them.
	Errors int
	// Invalid is the number of lines that were not domain names.
	Invalid int
	// TimedOut is the number of domains that hit the per-domain timeout.
	TimedOut int
	// Duration is the wall time of the run; PerSecond is Domains/Duration.
	Duration  time.Duration
	PerSecond float64
	// ExitCode is report.ExitCode over every report, with Options.FailOn.
	ExitCode int
	// DNS sums the domains' DNS traffic.
	DNS DNSSummary
}

// DNSSummary is the shared-cache effect of the run.
type DNSSummary struct {
	// Queries is the number of exchanges the domains' checks sent.
	Queries int
	// Asked is the sum over the domains of the distinct questions each
	// asked: what per-domain caches would have sent (retries aside).
	Asked int
	// Shared is the part of Asked the shared cache (or another domain's
	// query in flight) answered.
	Shared int
	// Failed is the number of exchanges that failed.
	Failed int
}

// Run checks every entry of src that opts.Shard selects, opts.Concurrency at
// a time, and calls emit with each report as soon as it is done (so reports
// come in completion order, each naming its domain). emit is never called
// concurrently. cfg gives the check configuration for a domain (validated,
// without the final dot; Config.Domain is set to it when cfg leaves it
// empty); it is also called with the raw text of an invalid line, for the
// mode, profile and version of the bulk.input report.
//
// Run returns when the input is exhausted and every report is emitted. It
// returns an error, with the summary so far, when reading the input fails,
// when emit fails, or when ctx ends; entries not yet read then get no
// report, while those already started are still reported.
func Run(ctx context.Context, src DomainSource, cfg func(domain string) check.Config, opts Options, deps Deps, emit func(*report.Report) error) (Summary, error) {
	if deps.Resolver == nil {
		return Summary{}, errors.New("bulk: no resolver")
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	workers := opts.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}
	timeout := opts.PerDomainTimeout
	if timeout <= 0 {
		timeout = DefaultPerDomainTimeout
	}
	start := now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sum := Summary{Worst: map[report.Status]int{report.StatusPass: 0, report.StatusInfo: 0, report.StatusWarn: 0, report.StatusFail: 0}}
	var mu sync.Mutex // guards sum and emitErr, and serialises emit
	var emitErr error
	var wg sync.WaitGroup
	jobs := make(chan Entry) // unbuffered: the reader is never more than one line ahead
	r := &runner{cfg: cfg, timeout: timeout, deps: deps}
	for range workers {
		wg.Go(func() {
			for e := range jobs {
				res := r.one(ctx, e)
				mu.Lock()
				if emitErr == nil {
					if err := emit(res.rep); err != nil {
						emitErr = fmt.Errorf("bulk: writing the report of %s: %w", res.rep.Domain, err)
						cancel()
					} else {
						sum.add(res, opts.FailOn)
					}
				}
				mu.Unlock()
			}
		})
	}

	var readErr error
read:
	for {
		e, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("bulk: reading the domain list: %w", err)
			}
			break
		}
		if !opts.Shard.Keeps(e.Index) {
			continue
		}
		select {
		case jobs <- e:
		case <-ctx.Done():
			break read
		}
	}
	close(jobs)
	wg.Wait()

	sum.Duration = now().Sub(start)
	if s := sum.Duration.Seconds(); s > 0 {
		sum.PerSecond = float64(sum.Domains) / s
	}
	switch {
	case emitErr != nil:
		return sum, emitErr
	case readErr != nil:
		return sum, readErr
	case ctx.Err() != nil:
		return sum, fmt.Errorf("bulk: stopped after %d domains: %w", sum.Domains, context.Cause(ctx))
	}
	return sum, nil
}

type runner struct {
	cfg     func(string) check.Config
	timeout time.Duration
	deps    Deps
}

type result struct {
	rep      *report.Report
	invalid  bool
	timedOut bool
	dns      resolver.ViewStats
}

// one checks one entry; it always returns a finalized report.
func (r *runner) one(ctx context.Context, e Entry) result {
	domain, err := resolver.ValidateHostname(e.Text)
	if err != nil {
		c := r.cfg(e.Text)
		rep := report.New(e.Text, c.Mode)
		rep.StartedAt = r.now().UTC()
		rep.Tool = report.Tool{Name: "mfcheck", Version: c.Version}
		if c.Profile != nil {
			rep.Profile = c.Profile.ID
		}
		reason := strings.TrimPrefix(err.Error(), resolver.ErrBadName.Error()+": ")
		rep.Add(report.Finding{ID: IDInput, Status: report.StatusError, Subject: e.Text,
			Message:     fmt.Sprintf("Line %d is not a domain name: %s", e.Line, reason),
			Remediation: "Fix or remove the line in the domain list",
			Evidence:    map[string]any{"line": e.Line, "input": e.Text}})
		rep.Finalize()
		return result{rep: rep, invalid: true}
	}
	domain = strings.TrimSuffix(domain, ".")
	c := r.cfg(domain)
	if c.Domain == "" {
		c.Domain = domain
	}
	dctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	view := r.deps.Resolver.View()
	rep := r.run(dctx, c, view)
	res := result{rep: rep}
	// The deadline counts as hit once it has passed, even if the context's
	// timer has not fired yet: a lookup whose read deadline is the
	// context's returns a hair before dctx.Err() is set.
	dl, _ := dctx.Deadline()
	if (errors.Is(dctx.Err(), context.DeadlineExceeded) || !time.Now().Before(dl)) && ctx.Err() == nil {
		res.timedOut = true
		rep.Add(report.Finding{ID: IDTimeout, Status: report.StatusError, Subject: c.Domain,
			Message:     fmt.Sprintf("The checks did not finish within the per-domain timeout of %v; the other findings are what was learned before it", r.timeout),
			Remediation: "Run the domain again alone (mfcheck check), or raise --per-domain-timeout",
			Evidence:    map[string]any{"timeout_ms": r.timeout.Milliseconds()}})
	}
	rep.Finalize()
	res.dns = view.Detail()
	return res
}

// run is check.Run, turning a panic of the checks into a report rather than
// the end of the whole run. (Only a panic on this goroutine can be caught;
// the checks' own goroutines are theirs to guard.)
func (r *runner) run(ctx context.Context, c check.Config, view *resolver.View) (rep *report.Report) {
	defer func() {
		if p := recover(); p != nil {
			rep = report.New(c.Domain, c.Mode)
			rep.Tool = report.Tool{Name: "mfcheck", Version: c.Version}
			rep.Add(report.Finding{ID: IDInternal, Status: report.StatusError, Subject: c.Domain,
				Message: fmt.Sprintf("The checks stopped on an internal error: %v", p)})
		}
	}()
	return check.Run(ctx, c, check.Deps{DNS: view, Now: r.deps.Now})
}

func (r *runner) now() time.Time {
	if r.deps.Now != nil {
		return r.deps.Now()
	}
	return time.Now()
}

func (s *Summary) add(res result, failOn report.Status) {
	s.Domains++
	s.Worst[res.rep.Summary.Worst]++
	if res.rep.Summary.Errors > 0 {
		s.Errors++
	}
	if res.invalid {
		s.Invalid++
	}
	if res.timedOut {
		s.TimedOut++
	}
	switch code := report.ExitCode(failOn, res.rep); {
	case code == report.ExitFindings:
		s.ExitCode = code
	case code == report.ExitIncomplete && s.ExitCode == report.ExitOK:
		s.ExitCode = code
	}
	s.DNS.Queries += res.dns.Queries
	s.DNS.Asked += res.dns.Asked
	s.DNS.Shared += res.dns.Shared
	s.DNS.Failed += res.dns.Failed
}
