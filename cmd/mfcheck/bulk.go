package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mfcheck/mfcheck/pkg/bulk"
	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/config"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// bulkFlags are the flags of mfcheck bulk alone.
type bulkFlags struct {
	concurrency int
	perDomain   time.Duration
	shard       string
	rate        float64
	cacheSize   int
	smtp        bool
	config      string
}

func (a *app) bulkCommand() *cobra.Command {
	var bf bulkFlags
	cmd := &cobra.Command{
		Use:   "bulk FILE|-",
		Short: "Check many domains, one per line, streaming one JSON report per domain",
		Long: `bulk checks every domain of a list (one per line; blank lines and # comments are
skipped; - reads standard input) with one shared DNS cache, --concurrency domains at a time,
and writes each domain's report as soon as it is done: JSON Lines on standard output (the
default output for bulk), in the order the domains finish, each naming its domain. Every
line gets exactly one report: a line that is not a domain name gets a bulk.input error, a
domain whose checks run out of --per-domain-timeout its partial report with a bulk.timeout
error. A summary table goes to standard error at the end, and a progress line while it runs
when standard error is a terminal.

--output junit writes one test suite per domain at the end (every report is held until
then); --output table writes only the summary, to standard output.

SMTP probes are off in bulk (--smtp turns them on): probing port 25 of thousands of MX
hosts is a different job from reading DNS, slow, and the kind of traffic that gets an
address blocklisted. The tls area lists the endpoints as not probed. Use 'mfcheck check' or
'mfcheck tls' for the domains that need it.

--timeout bounds the whole run only when given (the domains not reached are not checked,
and the exit code is then at least 3); by default only --per-domain-timeout applies.
Exit codes as for check, over all domains: 1 if any finding is at or above --fail-on,
else 3 if any check could not run (including invalid lines and timeouts), else 0.`,
		Example: `  mfcheck bulk domains.txt > reports.jsonl
  mfcheck bulk domains.txt --profile mimecast-eu --mode readiness --fail-on warn
  grep -v staging domains.txt | mfcheck bulk - --concurrency 128 --rate 500
  mfcheck bulk domains.txt --shard 0/4 --output junit > shard0.xml   # job 1 of 4`,
		Args: func(cmd *cobra.Command, args []string) error {
			if bf.config != "" {
				return exactArgs(0, "")(cmd, args) // the domains are the file's
			}
			return exactArgs(1, "a file of domains, or - for standard input (or -c FILE)")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			input := ""
			if len(args) == 1 {
				input = args[0]
			}
			return a.runBulk(cmd, input, bf)
		},
	}
	f := cmd.Flags()
	f.IntVar(&bf.concurrency, "concurrency", bulk.DefaultConcurrency, "domains checked at once")
	f.DurationVar(&bf.perDomain, "per-domain-timeout", bulk.DefaultPerDomainTimeout, "deadline for each domain's checks")
	f.StringVar(&bf.shard, "shard", "", "check only shard i of n, i/n (0-based): line k of the list (not counting blank and comment lines) when k mod n = i")
	f.Float64Var(&bf.rate, "rate", 0, "at most this many DNS queries per second over the whole run (0 = no limit)")
	f.IntVar(&bf.cacheSize, "cache-size", bulk.DefaultCacheSize, "DNS answers kept in the shared cache, least recently used dropped first (0 = no bound: memory grows with the list)")
	f.BoolVar(&bf.smtp, "smtp", false, "also probe each MX host's SMTP, STARTTLS and certificate on port 25 (off in bulk: see above)")
	f.StringVarP(&bf.config, "config", "c", "", "mfcheck.yaml: check its domains, each with its own settings and suppressions (instead of FILE)")
	a.addTLSTrustFlags(cmd)
	return cmd
}

func (a *app) runBulk(cmd *cobra.Command, input string, bf bulkFlags) error {
	if !cmd.Flags().Changed("output") {
		a.output = string(report.FormatJSON)
	}
	opts, err := a.parseOptions()
	if err != nil {
		return err
	}
	switch opts.format {
	case report.FormatJSON, report.FormatJUnit, report.FormatTable:
	default:
		return fmt.Errorf("bulk writes json (JSON Lines), junit or table (the summary only), not %s", opts.format)
	}
	if bf.concurrency < 1 || bf.concurrency > 10000 {
		return fmt.Errorf("--concurrency %d: want 1 to 10000", bf.concurrency)
	}
	if bf.perDomain <= 0 {
		return fmt.Errorf("--per-domain-timeout must be positive, got %v", bf.perDomain)
	}
	if bf.rate < 0 {
		return fmt.Errorf("--rate %g: want 0 (no limit) or more", bf.rate)
	}
	if bf.cacheSize < 0 {
		return fmt.Errorf("--cache-size %d: want 0 (no bound) or more", bf.cacheSize)
	}
	var shard bulk.Shard
	if bf.shard != "" {
		if shard, err = bulk.ParseShard(bf.shard); err != nil {
			return err
		}
	}
	smtpCfg, policyCfg, err := a.smtpConfig()
	if err != nil {
		return err
	}
	smtpCfg.Skip = !bf.smtp
	roots, err := a.roots()
	if err != nil {
		return err
	}

	var in io.Reader
	var fromFile map[string]check.Config
	var suppress map[string]config.Domain
	var configPath string
	if bf.config != "" {
		// The file's domains, one per line, each with its settings.
		f, err := config.Load(bf.config, opts.registry)
		if err != nil {
			return err
		}
		configPath = f.Path
		fromFile, suppress = map[string]check.Config{}, map[string]config.Domain{}
		var names strings.Builder
		for _, d := range f.Domains {
			c, _, err := a.domainConfig(cmd, opts, f, d, roots)
			if err != nil {
				return err
			}
			c.SMTP.Skip = !bf.smtp
			fromFile[d.Name], suppress[d.Name] = c, d
			names.WriteString(d.Name + "\n")
		}
		in = strings.NewReader(names.String())
	} else if input == "-" {
		in = cmd.InOrStdin()
	} else {
		file, err := os.Open(input)
		if err != nil {
			return fmt.Errorf("reading the domain list: %w", err)
		}
		defer file.Close()
		in = file
	}
	client, err := resolver.New(resolver.Config{
		Servers: a.resolvers, ResolvConf: a.resolvConf,
		CacheSize: bf.cacheSize, NoLog: true, Rate: bf.rate,
		// A burst of queries loses some UDP packets even to a local
		// server; one lost packet for a shared name must not become an
		// error for every later domain.
		Attempts: 2, ForgetFailures: true,
	})
	if err != nil {
		return err
	}

	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if cmd.Flags().Changed("timeout") {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	version := versionString()
	cfg := func(domain string) check.Config {
		if c, ok := fromFile[domain]; ok {
			return c
		}
		return check.Config{
			Domain: domain, Mode: a.mode, Profile: opts.profile, Profiles: opts.registry,
			NSPort: a.nsPort, Trace: a.trace, Version: version,
			SMTP: smtpCfg, Policy: policyCfg, Roots: roots,
		}
	}

	var held []*report.Report // junit only: rendered at the end
	var done, failing, errs atomic.Int64
	emit := func(r *report.Report) error {
		if d, ok := suppress[r.Domain]; ok {
			d.ApplySuppressions(r, time.Now(), configPath)
		}
		done.Add(1)
		if r.Summary.Worst.AtLeast(opts.failOn) {
			failing.Add(1)
		}
		if r.Summary.Errors > 0 {
			errs.Add(1)
		}
		switch opts.format {
		case report.FormatJSON:
			return report.WriteJSONLine(a.stdout, r)
		case report.FormatJUnit:
			held = append(held, r)
		}
		return nil
	}
	stopProgress := a.startProgress(&done, &failing, &errs)
	sum, runErr := bulk.Run(ctx, bulk.Lines(in), cfg, bulk.Options{
		Concurrency: bf.concurrency, PerDomainTimeout: bf.perDomain, Shard: shard, FailOn: opts.failOn,
	}, bulk.Deps{Resolver: client}, emit)
	stopProgress()

	if opts.format == report.FormatJUnit && runErr == nil {
		if err := report.Render(a.stdout, report.FormatJUnit, report.Options{FailOn: opts.failOn}, held...); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	summaryTo := a.stderr
	if opts.format == report.FormatTable {
		summaryTo = a.stdout
	}
	if err := writeBulkSummary(summaryTo, sum, shard, opts.failOn); err != nil && runErr == nil {
		runErr = fmt.Errorf("writing the summary: %w", err)
	}
	if runErr != nil && cmd.Flags().Changed("timeout") && errors.Is(runErr, context.DeadlineExceeded) {
		// The run-wide --timeout is a limit the user set, not a usage
		// error: what was checked stands, the rest could not be checked.
		fmt.Fprintf(a.stderr, "mfcheck bulk: --timeout %v reached after %d domains; the rest of the list was not checked\n", a.timeout, sum.Domains)
		a.exitCode = report.ExitIncomplete
		if sum.ExitCode == report.ExitFindings {
			a.exitCode = report.ExitFindings
		}
		return nil
	}
	if runErr != nil {
		return runErr
	}
	a.exitCode = sum.ExitCode
	return nil
}

// startProgress shows "N domains, R/s, F at or above --fail-on, E with
// errors" on stderr, rewritten in place (\r) at most four times a second,
// only when stderr is a terminal. The returned func stops it and clears the
// line.
func (a *app) startProgress(done, failing, errs *atomic.Int64) func() {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprint(f, "\r\x1b[K")
				return
			case <-t.C:
				n := done.Load()
				rate := float64(n) / time.Since(start).Seconds()
				fmt.Fprintf(f, "\r\x1b[K%d domains, %.0f/s, %d failing, %d with errors", n, rate, failing.Load(), errs.Load())
			}
		}
	})
	return func() {
		close(stop)
		wg.Wait()
	}
}

// writeBulkSummary writes the end-of-run summary: a line with the totals,
// a table of domains by worst status and with errors, and the DNS saving.
func writeBulkSummary(w io.Writer, s bulk.Summary, shard bulk.Shard, failOn report.Status) error {
	head := fmt.Sprintf("mfcheck bulk: %d domains in %v (%.0f domains/s)", s.Domains, s.Duration.Round(time.Millisecond), s.PerSecond)
	if shard.Count > 1 {
		head += ", shard " + shard.String()
	}
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	cfg := tablewriter.NewConfigBuilder().
		WithHeaderAutoFormat(tw.Off).
		WithHeaderAlignment(tw.AlignLeft).
		WithRowAutoWrap(tw.WrapNone).
		Row().Alignment().WithPerColumn([]tw.Align{tw.AlignLeft, tw.AlignRight, tw.AlignLeft}).Build().
		Build()
	t := tablewriter.NewTable(w, tablewriter.WithConfig(cfg))
	t.Header("WORST", "DOMAINS", "")
	for _, st := range []report.Status{report.StatusFail, report.StatusWarn, report.StatusInfo, report.StatusPass} {
		note := ""
		if st.AtLeast(failOn) {
			note = "at or above --fail-on " + string(failOn)
		}
		if err := t.Append([]string{string(st), fmt.Sprint(s.Worst[st]), note}); err != nil {
			return err
		}
	}
	var why []string
	if s.Invalid > 0 {
		why = append(why, fmt.Sprintf("%d not a domain name", s.Invalid))
	}
	if s.TimedOut > 0 {
		why = append(why, fmt.Sprintf("%d timed out", s.TimedOut))
	}
	note := "some check could not run"
	if len(why) > 0 {
		note += " (" + strings.Join(why, ", ") + ")"
	}
	if err := t.Append([]string{"with errors", fmt.Sprint(s.Errors), note}); err != nil {
		return err
	}
	if err := t.Render(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "DNS: %d queries sent (%d failed); per-domain caches would have sent %d, %d were answered by the shared cache\n",
		s.DNS.Queries, s.DNS.Failed, s.DNS.Asked, s.DNS.Shared)
	return err
}
