package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// Finding IDs this package adds to a report.
const (
	// IDSuppressionExpired: a suppression whose expiry has passed; it
	// suppresses nothing any more (warn).
	IDSuppressionExpired = "config.suppression-expired"
	// IDSuppressionUnused: an active suppression that matched no finding of
	// the run (info), so stale entries get cleaned up.
	IDSuppressionUnused = "config.suppression-unused"
)

// Active reports whether s still applies at now: until the end of its
// Expires day, in UTC. A day in UTC, not the local zone, so a nightly job
// gives the same answer on every machine.
func (s Suppression) Active(now time.Time) bool {
	return now.Before(s.Expires.AddDate(0, 0, 1))
}

// Matches reports whether f is a finding s is about: the same ID, and a
// subject equal to s.Subject (or starting with it, when it ends in "*"),
// compared without regard to case; an empty Subject matches any.
func (s Suppression) Matches(f report.Finding) bool {
	if f.ID != s.ID {
		return false
	}
	if s.Subject == "" {
		return true
	}
	if prefix, ok := strings.CutSuffix(s.Subject, "*"); ok {
		return len(f.Subject) >= len(prefix) && strings.EqualFold(f.Subject[:len(prefix)], prefix)
	}
	return strings.EqualFold(f.Subject, s.Subject)
}

// subjectOf names a suppression in messages: "spf.ptr", or "spf.ptr for
// contoso.com" when it has a subject.
func subjectOf(s Suppression) string {
	if s.Subject == "" {
		return s.ID
	}
	return s.ID + " for " + s.Subject
}

// ApplySuppressions marks the findings of rep that d's active suppressions
// accept, and reports the suppressions that need attention; path is the
// config file, for the sources ("mfcheck.yaml:42"). Call it once per report,
// after the run.
//
//   - An active suppression sets Suppressed on every finding it matches that
//     is not pass and not already suppressed (the first matching entry
//     wins). Pass findings are left alone: suppressing them would only move
//     them out of the counts, and a suppression whose problem is fixed is
//     one to clean up, so it counts as unused.
//   - An expired one suppresses nothing and adds config.suppression-expired
//     (warn): the accepted problem is back in the report, and the reason
//     the exception was made is shown next to it.
//   - An active one that matched nothing adds config.suppression-unused
//     (info).
//
// Then rep.Finalize re-sorts the findings and recounts the summary.
func (d Domain) ApplySuppressions(rep *report.Report, now time.Time, path string) {
	if rep == nil {
		return
	}
	// Only the run's findings can be suppressed, not the ones added here.
	n := len(rep.Findings)
	for _, s := range d.Suppress {
		src := fmt.Sprintf("%s:%d", path, s.Line)
		expires := s.Expires.Format(time.DateOnly)
		ev := map[string]any{"source": src, "id": s.ID, "reason": s.Reason, "expires": expires}
		if s.Subject != "" {
			ev["subject"] = s.Subject
		}
		if !s.Active(now) {
			rep.Add(report.Finding{
				ID: IDSuppressionExpired, Status: report.StatusWarn, Subject: subjectOf(s),
				Message: fmt.Sprintf("The suppression of %s (%s) expired on %s; it was accepted because: %s",
					subjectOf(s), src, expires, s.Reason),
				Remediation: "fix the finding or extend the expiry with a new reason",
				Evidence:    ev,
			})
			continue
		}
		matched := 0
		for i := range n {
			f := &rep.Findings[i]
			if f.Status == report.StatusPass || !s.Matches(*f) {
				continue
			}
			matched++
			if f.Suppressed == nil {
				f.Suppressed = &report.Suppression{Reason: s.Reason, Expires: expires, Source: src}
			}
		}
		if matched == 0 {
			rep.Add(report.Finding{
				ID: IDSuppressionUnused, Status: report.StatusInfo, Subject: subjectOf(s),
				Message: fmt.Sprintf("The suppression of %s (%s, until %s) matched no finding of this run that is not pass",
					subjectOf(s), src, expires),
				Remediation: "remove the entry if the problem is fixed for good (a run limited to some checks may simply not have reached it)",
				Evidence:    ev,
			})
		}
	}
	rep.Finalize()
}
