// Package report holds the data every mfcheck check returns (Report, Finding,
// Status) and renders it as a table, JSON, JUnit XML or Markdown.
//
// The package depends only on the standard library and the table renderer:
// checks build findings, this package never performs a check.
package report

import (
	"fmt"
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
	DNS        *DNSStats `json:"dns,omitempty"`
}

// Tool names the program that wrote the report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Summary counts findings by status and names the worst domain status.
type Summary struct {
	Worst  Status         `json:"worst"`
	Counts map[Status]int `json:"counts"`
	Errors int            `json:"errors"`
}
