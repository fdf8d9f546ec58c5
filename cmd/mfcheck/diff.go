package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// maxReportInput bounds what diff reads from one file: bulk JSON Lines for
// thousands of domains fit easily.
const maxReportInput = 1 << 30

func (a *app) diffCommand() *cobra.Command {
	var errorsAreWorse bool
	cmd := &cobra.Command{
		Use:   "diff BEFORE AFTER",
		Short: "Compare two JSON reports: what got worse, what was fixed, MX, SPF and TLS changes",
		Long: `diff reads two outputs of 'mfcheck ... --output json' (one report, or JSON Lines from bulk;
- is standard input), pairs the reports by domain and the findings by ID and subject (a subject's
SMTP port, and a host's changed address, still match), and lists what is new, fixed, worse,
better, now unverifiable (error) or verifiable again, with the MX set, the SPF record and its
lookup count, and the TLS verdict of each SMTP endpoint before and after.

Exit codes: 0 nothing got worse at or above --fail-on; 1 a new finding at or above it, or a
status that rose to or above it; 2 unreadable input or a usage error. Checks that could not run
in AFTER are listed but count only with --errors-are-worse.`,
		Example: `  mfcheck diff readiness.json smoke.json
  mfcheck diff last-night.jsonl tonight.jsonl --fail-on warn --output markdown
  mfcheck diff previous/report.json report.json --errors-are-worse --output json`,
		Args: exactArgs(2, "two report files, BEFORE and AFTER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDiff(args[0], args[1], errorsAreWorse)
		},
	}
	cmd.Flags().BoolVar(&errorsAreWorse, "errors-are-worse", false, "also count checks that could not run in AFTER (new error findings, statuses that became error) as worse")
	return cmd
}

func (a *app) runDiff(beforePath, afterPath string, errorsAreWorse bool) error {
	format, err := report.ParseFormat(a.output)
	if err != nil {
		return err
	}
	if format == report.FormatJUnit {
		return errors.New("diff writes table, json or markdown, not junit")
	}
	failOn, err := report.ParseFailOn(a.failOn)
	if err != nil {
		return err
	}
	if beforePath == "-" && afterPath == "-" {
		return errors.New("diff: BEFORE and AFTER cannot both be standard input")
	}
	before, err := readReportFile(beforePath)
	if err != nil {
		return err
	}
	after, err := readReportFile(afterPath)
	if err != nil {
		return err
	}
	set, err := report.DiffAll(before, after)
	if err != nil {
		var dup *report.DuplicateDomainError
		if errors.As(err, &dup) {
			path := beforePath
			if dup.After {
				path = afterPath
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		return err
	}
	set.Tool.Version = versionString()
	set.Before.Source, set.After.Source = beforePath, afterPath
	gate := report.Gate{FailOn: failOn, ErrorsAreWorse: errorsAreWorse}
	if err := report.RenderDiff(a.stdout, format, report.DiffOptions{
		Gate: gate, Color: format == report.FormatTable && report.ColorFor(os.Stdout),
	}, set); err != nil {
		return fmt.Errorf("writing the diff: %w", err)
	}
	a.exitCode = set.ExitCode(gate)
	return nil
}

// readReportFile reads one side; every error names the file.
func readReportFile(path string) ([]*report.Report, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s: %v", path, pe.Err)
			}
			return nil, err
		}
		defer f.Close()
		r = f
	}
	lr := &io.LimitedReader{R: r, N: maxReportInput + 1}
	rs, err := report.ReadReports(lr)
	if lr.N <= 0 {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxReportInput>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}
