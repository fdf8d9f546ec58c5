// Package report holds the data every mfcheck check returns (Report, Finding,
// Status) and renders it as a table, JSON, JUnit XML or Markdown.
//
// The package depends only on the standard library and the table renderer:
// checks build findings, this package never performs a check.
package report

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Schema is the value of the "schema" member of every JSON report. It changes
// only when the JSON shape changes incompatibly.
const Schema = "mfcheck.report/v1"

// Status is the outcome of one finding. Pass, Info, Warn and Fail describe the
// domain ("misconfigured" is Warn or Fail); Error means the check could not run
// (timeout, SERVFAIL, connection refused) and says nothing about the domain.
type Status string

const (
	StatusPass  Status = "pass"
	StatusInfo  Status = "info"
	StatusWarn  Status = "warn"
	StatusFail  Status = "fail"
	StatusError Status = "error"
)

// severity orders the statuses that describe the domain. Error is kept out of
// the order on purpose: "could not check" is neither better nor worse than a
// failure, it is a different kind of answer.
var severity = map[Status]int{StatusPass: 0, StatusInfo: 1, StatusWarn: 2, StatusFail: 3}

// Valid reports whether s is one of the five statuses.
func (s Status) Valid() bool {
	_, ok := severity[s]
	return ok || s == StatusError
}

// AtLeast reports whether s is a domain status at or above threshold
// (pass < info < warn < fail). Error is never at or above anything.
func (s Status) AtLeast(threshold Status) bool {
	a, ok1 := severity[s]
	b, ok2 := severity[threshold]
	return ok1 && ok2 && a >= b
}

// ParseStatus accepts a status name, case-insensitively.
func ParseStatus(s string) (Status, error) {
	st := Status(strings.ToLower(strings.TrimSpace(s)))
	if !st.Valid() {
		return "", fmt.Errorf("unknown status %q (want pass, info, warn, fail or error)", s)
	}
	return st, nil
}

// Finding is one observation about the domain, with the evidence behind it.
type Finding struct {
	// ID is stable and dotted, e.g. "mx.null"; every ID is listed in docs/checks.md.
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Subject is what the finding is about: a domain, a host, "host [address]".
	Subject string `json:"subject"`
	// Message is one sentence, with the numbers.
	Message string `json:"message"`
	// Remediation says what to change, where we know it.
	Remediation string `json:"remediation,omitempty"`
	// Evidence holds the raw data: records, counts, TTLs, transcripts.
	Evidence map[string]any `json:"evidence,omitempty"`
	// Suppressed is set when a config file accepts this finding for now
	// (a known exception, with its reason and expiry). A suppressed
	// finding keeps its status but counts toward neither the summary's
	// worst status nor the exit code.
	Suppressed *Suppression `json:"suppressed,omitempty"`
}

// Suppression is the config entry that accepted a finding.
type Suppression struct {
	Reason string `json:"reason"`
	// Expires is the last day (YYYY-MM-DD) the suppression applies.
	Expires string `json:"expires,omitempty"`
	// Source is where it was written, "mfcheck.yaml:42".
	Source string `json:"source,omitempty"`
}

// Area is the part of the ID before the first dot ("mx" for "mx.null"); the
// renderers group by it.
func (f Finding) Area() string {
	if i := strings.IndexByte(f.ID, '.'); i > 0 {
		return f.ID[:i]
	}
	return f.ID
}

// DNSStats summarises the DNS traffic of a run.
type DNSStats struct {
	Queries  int        `json:"queries"`
	Distinct int        `json:"distinct"`
	Errors   int        `json:"errors"`
	Log      []DNSQuery `json:"log,omitempty"`
}

// DNSQuery is one query the run sent, as the resolver logged it.
type DNSQuery struct {
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	Server  string  `json:"server"`
	Proto   string  `json:"proto"`
	Rcode   string  `json:"rcode"`
	RTTMS   float64 `json:"rtt_ms"`
	Answers int     `json:"answers"`
	Error   string  `json:"error,omitempty"`
}

// Report is everything one run found about one domain.
type Report struct {
	Schema     string    `json:"schema"`
	Tool       Tool      `json:"tool"`
	Domain     string    `json:"domain"`
	Mode       string    `json:"mode"`
	Profile    string    `json:"profile,omitempty"`
	Simulation bool      `json:"simulation,omitempty"`
	Notes      []string  `json:"notes,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS float64   `json:"duration_ms"`
	Summary    Summary   `json:"summary"`
	Findings   []Finding `json:"findings"`
	SPF        *SPF      `json:"spf,omitempty"` // set when the run expanded the SPF record
	// TLS lists the SMTP endpoints probed, in probe order (MX hosts by
	// preference, then smart hosts); absent when nothing was probed.
	TLS []TLSEndpoint `json:"tls,omitempty"`
	// Trace is the Received chain of a message read by `mfcheck trace`.
	Trace *Trace    `json:"trace,omitempty"`
	DNS   *DNSStats `json:"dns,omitempty"`
}

// Tool names the program that wrote the report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Summary counts findings by status and names the worst domain status.
type Summary struct {
	// Worst is the worst of pass, info, warn and fail among the findings
	// ("pass" when there are none). Error findings never raise it: they are
	// counted in Errors instead.
	Worst Status `json:"worst"`
	// Counts has one entry for each of the five statuses, zero included, so
	// consumers can index it without checking for presence.
	Counts map[Status]int `json:"counts"`
	// Errors is the number of findings whose check could not run.
	Errors int `json:"errors"`
	// Suppressed is the number of findings a config file accepted; they
	// are not in Counts, Worst or Errors.
	Suppressed int `json:"suppressed,omitempty"`
}

// statuses lists every status in display order: worst domain status first,
// "could not check" last.
var statuses = []Status{StatusFail, StatusWarn, StatusInfo, StatusPass, StatusError}

// New starts an empty report for domain; the caller fills in Tool.Version,
// Profile, DNS and the duration, adds findings and calls Finalize.
func New(domain, mode string) *Report {
	return &Report{
		Schema:    Schema,
		Tool:      Tool{Name: "mfcheck"},
		Domain:    domain,
		Mode:      mode,
		StartedAt: time.Now(),
		Findings:  []Finding{},
	}
}

// Add appends findings. It does not sort: checks run concurrently and add in
// whatever order they finish, and Finalize puts the result in order once.
// Add is not safe for concurrent use; collect per check and add from one
// goroutine.
func (r *Report) Add(f ...Finding) {
	r.Findings = append(r.Findings, f...)
}

// Finalize sorts the findings into display order and recomputes the Summary.
// It is idempotent, and the renderers apply it to a copy, so calling it is
// only needed when the Report itself is inspected (exit code, tests).
//
// Order: by area (see areaRank), then worst first, then ID, then subject;
// findings equal in all of these keep the order they were added in.
// Inside an area, error sorts before fail: a check that could not run is
// something the reader must act on (re-run, fix reachability) before the
// rest of that area can be trusted, so it leads the area.
func (r *Report) Finalize() {
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	slices.SortStableFunc(r.Findings, compareFindings)

	s := Summary{Worst: StatusPass, Counts: make(map[Status]int, len(statuses))}
	for _, st := range statuses {
		s.Counts[st] = 0
	}
	for _, f := range r.Findings {
		if f.Suppressed != nil {
			s.Suppressed++
			continue
		}
		if _, known := s.Counts[f.Status]; known {
			// An unknown status is a bug in a check (Validate reports
			// it); counting it would add a member the schema forbids.
			s.Counts[f.Status]++
		}
		if f.Status == StatusError {
			s.Errors++
		}
		if f.Status.AtLeast(s.Worst) {
			s.Worst = f.Status
		}
	}
	r.Summary = s
}

// areaOrder is the reading order of a cutover: where mail goes (mx), who may
// send it (spf), the published policies, transport security, the gateway's
// allow list, then the live tests. Areas not listed follow alphabetically.
var areaOrder = []string{
	"mx", "spf", "dmarc", "mtasts", "tlsrpt", "dkim",
	"tls", "allowlist", "send", "bypass", "trace", "config",
}

// areaRank gives known areas their position in areaOrder and every other
// area the same rank after them (ties are then broken by name).
func areaRank(area string) int {
	if i := slices.Index(areaOrder, area); i >= 0 {
		return i
	}
	return len(areaOrder)
}

// displayRank orders statuses inside an area: error, fail, warn, info, pass,
// and anything unknown last.
func displayRank(s Status) int {
	if i := slices.Index(statuses, s); i >= 0 {
		if s == StatusError {
			return -1
		}
		return i
	}
	return len(statuses)
}

func compareFindings(a, b Finding) int {
	aa, ba := a.Area(), b.Area()
	return cmp.Or(
		cmp.Compare(areaRank(aa), areaRank(ba)),
		strings.Compare(aa, ba),
		cmp.Compare(displayRank(a.Status), displayRank(b.Status)),
		strings.Compare(a.ID, b.ID),
		strings.Compare(a.Subject, b.Subject),
	)
}

// finalized returns a copy of r with its own, sorted findings slice and a
// fresh Summary, so renderers never reorder or rewrite the caller's report.
func (r *Report) finalized() *Report {
	c := *r
	c.Findings = slices.Clone(r.Findings)
	c.Finalize()
	return &c
}

// idPattern is the shape of a finding ID, the same pattern as in
// docs/report.schema.json: lower-case dotted words, at least two.
var idPattern = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)+$`)

// Validate reports findings that would break the JSON contract: an ID that is
// not dotted lower case, or an unknown status. Checks' tests call it so a
// typo fails there rather than in a consumer of the JSON.
func (r *Report) Validate() error {
	var errs []error
	for i, f := range r.Findings {
		if !idPattern.MatchString(f.ID) {
			errs = append(errs, fmt.Errorf("finding %d: id %q is not dotted lower case (e.g. \"spf.lookup-limit\")", i, f.ID))
		}
		if !f.Status.Valid() {
			errs = append(errs, fmt.Errorf("finding %d (%s): unknown status %q", i, f.ID, f.Status))
		}
	}
	return errors.Join(errs...)
}
