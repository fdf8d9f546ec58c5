package report

import (
	"fmt"
	"strings"
)

// Process exit codes of mfcheck (DESIGN.md, "Outputs and exit codes").
const (
	// ExitOK: no finding at or above --fail-on and every check ran.
	ExitOK = 0
	// ExitFindings: at least one finding at or above --fail-on.
	ExitFindings = 1
	// ExitUsage: bad flags or configuration; set by the CLI, never by ExitCode.
	ExitUsage = 2
	// ExitIncomplete: nothing at or above --fail-on, but some check could not
	// run, so a clean result cannot be claimed.
	ExitIncomplete = 3
)

// ExitCode maps the findings of one or more reports (bulk) to the process exit
// code: ExitFindings if any finding's status is at or above failOn, else
// ExitIncomplete if any finding is an error, else ExitOK.
//
// Findings take precedence over errors: a job that fails on a real
// misconfiguration should say so even if another check timed out. failOn
// should come from ParseFailOn; anything other than info, warn or fail
// (including the zero value) is treated as fail, the documented default,
// rather than as "pass", which would fail every run.
func ExitCode(failOn Status, reports ...*Report) int {
	switch failOn {
	case StatusInfo, StatusWarn, StatusFail:
	default:
		failOn = StatusFail
	}
	code := ExitOK
	for _, r := range reports {
		if r == nil {
			continue
		}
		for _, f := range r.Findings {
			switch {
			case f.Suppressed != nil:
				// Accepted in the config file, with a reason and an expiry.
			case f.Status.AtLeast(failOn):
				return ExitFindings
			case f.Status == StatusError:
				code = ExitIncomplete
			}
		}
	}
	return code
}

// ParseFailOn parses the --fail-on value: info, warn or fail (any case).
// pass is refused because it would fail every run, and error because "could
// not check" already has its own exit code.
func ParseFailOn(s string) (Status, error) {
	switch st := Status(strings.ToLower(strings.TrimSpace(s))); st {
	case StatusInfo, StatusWarn, StatusFail:
		return st, nil
	}
	return "", fmt.Errorf("invalid --fail-on %q (want info, warn or fail)", s)
}
