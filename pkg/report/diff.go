package report

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// DiffSchema is the value of the "schema" member of `mfcheck diff --output
// json`, described by docs/diff.schema.json.
const DiffSchema = "mfcheck.diff/v1"

// Change is what happened to one finding (or one TLS endpoint) between two
// runs.
type Change string

const (
	// ChangeNew: only in AFTER.
	ChangeNew Change = "new"
	// ChangeFixed: a finding that was info, warn or fail is now pass, or is
	// no longer reported.
	ChangeFixed Change = "fixed"
	// ChangeWorse: the status rose (pass < info < warn < fail).
	ChangeWorse Change = "worse"
	// ChangeBetter: the status fell, but not to pass.
	ChangeBetter Change = "better"
	// ChangeUnverifiable: a domain status before, error ("could not
	// check") now.
	ChangeUnverifiable Change = "unverifiable"
	// ChangeVerifiable: error before, a domain status now ("verifiable
	// again").
	ChangeVerifiable Change = "verifiable"
	// ChangeSuppressed: same status, but a config file now accepts it.
	ChangeSuppressed Change = "suppressed"
	// ChangeUnsuppressed: same status, but the suppression is gone
	// (removed or expired), so the finding counts again.
	ChangeUnsuppressed Change = "unsuppressed"
	// ChangeRemoved: only in BEFORE, where it was pass or error: nothing
	// was wrong, the check just no longer reports it (not run, another
	// subject).
	ChangeRemoved Change = "removed"
	// ChangeUnchanged: same status (counted, never listed).
	ChangeUnchanged Change = "unchanged"
)

// changeOrder is the reading order of changes: what needs attention first.
var changeOrder = []Change{
	ChangeWorse, ChangeUnverifiable, ChangeNew, ChangeUnsuppressed,
	ChangeVerifiable, ChangeBetter, ChangeFixed, ChangeSuppressed, ChangeRemoved, ChangeUnchanged,
}

// Changes lists every change class in reading order.
func Changes() []Change { return slices.Clone(changeOrder) }

// Gate decides which changes make a diff "worse" (exit code 1). The zero
// value is the default: --fail-on fail, errors not counted.
type Gate struct {
	// FailOn is the lowest status that counts: info, warn or fail (zero:
	// fail).
	FailOn Status
	// ErrorsAreWorse also counts checks that could not run in AFTER: a new
	// error finding, or one that was a domain status before. Off by
	// default: a timeout or a runner that cannot reach port 25 says nothing
	// about the domain, the check run itself already exits 3 for it, and a
	// cutover diff should not fail on it. The diff always lists them.
	ErrorsAreWorse bool
}

func (g Gate) failOn() Status {
	return Options{FailOn: g.FailOn}.failOn()
}

// FindingChange is one finding that changed between two runs. Findings are
// paired by ID and Subject; see Diff for how subjects with ports and
// addresses are matched.
type FindingChange struct {
	Change Change `json:"change"`
	ID     string `json:"id"`
	// Subject is AFTER's subject (BEFORE's when the finding is only there);
	// BeforeSubject is BEFORE's when it differs (matched after dropping a
	// port or an address).
	Subject       string `json:"subject"`
	BeforeSubject string `json:"before_subject,omitempty"`
	// Before and After are the statuses; empty on the side without the
	// finding.
	Before Status `json:"before,omitempty"`
	After  Status `json:"after,omitempty"`
	// Message and Remediation are AFTER's (BEFORE's when only there).
	Message     string `json:"message"`
	Remediation string `json:"remediation,omitempty"`
	// SuppressedBefore and SuppressedAfter are the config entries that
	// accepted the finding on either side. A change suppressed in AFTER is
	// listed but never a regression.
	SuppressedBefore *Suppression `json:"suppressed_before,omitempty"`
	SuppressedAfter  *Suppression `json:"suppressed_after,omitempty"`
	// Regression is set by the renderers when this change makes the diff
	// worse under their Gate (see Gate.Regression).
	Regression bool `json:"regression"`
}

// status is the finding's status on the side shown (AFTER's if present).
func (c FindingChange) status() Status {
	if c.After != "" {
		return c.After
	}
	return c.Before
}

// Regression reports whether c makes a diff worse: a new finding at or above
// FailOn, a status that rose to or above it (also from error: a failure that
// was hidden behind "could not check"), a suppression that ended on a
// finding at or above it; with ErrorsAreWorse also a new error or a check
// that stopped being checkable. A change that AFTER's config suppresses
// never counts.
func (g Gate) Regression(c FindingChange) bool {
	if c.SuppressedAfter != nil {
		return false
	}
	switch c.Change {
	case ChangeNew:
		if c.After == StatusError {
			return g.ErrorsAreWorse
		}
		return c.After.AtLeast(g.failOn())
	case ChangeWorse, ChangeVerifiable, ChangeUnsuppressed:
		return c.After.AtLeast(g.failOn())
	case ChangeUnverifiable:
		return g.ErrorsAreWorse
	}
	return false
}

// ReportSide is what a diff keeps of one side's report.
type ReportSide struct {
	Mode       string    `json:"mode"`
	Profile    string    `json:"profile,omitempty"`
	Simulation bool      `json:"simulation,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	Summary    Summary   `json:"summary"`
}

// MXDiff is the change of the MX set, from the evidence of the mx.present
// finding: "preference host" entries, host lower case without the final dot.
type MXDiff struct {
	Before  []string `json:"before"`
	After   []string `json:"after"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// SPFState is the root SPF record and its lookup count on one side.
type SPFState struct {
	Record      string `json:"record"`
	Lookups     int    `json:"lookups"`
	LookupLimit int    `json:"lookup_limit"`
	Complete    bool   `json:"complete"`
}

// SPFDiff is set when the root record or its lookup count changed.
type SPFDiff struct {
	Before SPFState `json:"before"`
	After  SPFState `json:"after"`
}

// TLSChange is an SMTP endpoint of the reports' tls section whose verdict
// changed, or that only one side probed. Endpoints are paired by host and
// address like finding subjects (see Diff).
type TLSChange struct {
	Change Change `json:"change"`
	Host   string `json:"host"`
	// Address and Port are AFTER's (BEFORE's when only there);
	// BeforeAddress is BEFORE's when it differs.
	Address       string `json:"address"`
	Port          int    `json:"port,omitempty"`
	BeforeAddress string `json:"before_address,omitempty"`
	Role          string `json:"role"`
	Before        string `json:"before,omitempty"`
	After         string `json:"after,omitempty"`
	// Reason is AFTER's reason (why untrusted, failed, unreachable).
	Reason string `json:"reason,omitempty"`
}

// ReportDiff compares two reports of one domain.
type ReportDiff struct {
	Domain string     `json:"domain"`
	Before ReportSide `json:"before"`
	After  ReportSide `json:"after"`
	// Counts has one entry per change class, zero included.
	Counts map[Change]int `json:"counts"`
	// Changes lists every change except unchanged, in reading order
	// (changeOrder), then in the reports' finding order.
	Changes []FindingChange `json:"changes"`
	MX      *MXDiff         `json:"mx,omitempty"`
	SPF     *SPFDiff        `json:"spf,omitempty"`
	TLS     []TLSChange     `json:"tls,omitempty"`
	// GotWorse is set by the renderers under their Gate (see Worse).
	GotWorse bool `json:"worse"`
}

// Worse reports whether any change is a regression under g.
func (d *ReportDiff) Worse(g Gate) bool {
	for _, c := range d.Changes {
		if g.Regression(c) {
			return true
		}
	}
	return false
}

// Diff compares two reports of the same domain (the caller pairs them; see
// DiffAll). Findings are paired by ID and subject in three rounds, each on
// what the earlier rounds left: the exact subject; the subject without a
// port ("host [addr]:2525" → "host [addr]", "192.0.2.1:2525" → "192.0.2.1"),
// since a lab's SMTP port is random; and for "host [addr]" subjects the host
// and the address family, since a host's addresses may change (a gateway's
// pool, a lab), pairing that host's findings in address order. A
// paired finding whose subject differs keeps BEFORE's as BeforeSubject.
// Several findings with the same key pair in order. TLS endpoints pair the
// same way by host and address.
func Diff(before, after *Report) *ReportDiff {
	b, a := before.finalized(), after.finalized()
	d := &ReportDiff{
		Domain: a.Domain,
		Before: side(b), After: side(a),
		Counts:  make(map[Change]int, len(changeOrder)),
		Changes: []FindingChange{},
	}
	for _, c := range changeOrder {
		d.Counts[c] = 0
	}
	pairs := pairBy(len(b.Findings), len(a.Findings),
		func(i int) (string, string) { return b.Findings[i].ID, b.Findings[i].Subject },
		func(j int) (string, string) { return a.Findings[j].ID, a.Findings[j].Subject })
	type entry struct {
		c     FindingChange
		order Finding
	}
	var entries []entry
	for _, p := range pairs {
		var c FindingChange
		var order Finding
		switch {
		case p.b >= 0 && p.a >= 0:
			bf, af := b.Findings[p.b], a.Findings[p.a]
			c = changeOf(&bf, &af)
			order = af
		case p.a >= 0:
			af := a.Findings[p.a]
			c = changeOf(nil, &af)
			order = af
		default:
			bf := b.Findings[p.b]
			c = changeOf(&bf, nil)
			order = bf
		}
		d.Counts[c.Change]++
		if c.Change != ChangeUnchanged {
			entries = append(entries, entry{c, order})
		}
	}
	slices.SortStableFunc(entries, func(x, y entry) int {
		return cmp.Or(
			cmp.Compare(slices.Index(changeOrder, x.c.Change), slices.Index(changeOrder, y.c.Change)),
			compareFindings(x.order, y.order))
	})
	for _, e := range entries {
		d.Changes = append(d.Changes, e.c)
	}
	d.MX = mxDiff(b, a)
	d.SPF = spfDiff(b, a)
	d.TLS = tlsDiff(b.TLS, a.TLS)
	return d
}

func side(r *Report) ReportSide {
	return ReportSide{Mode: r.Mode, Profile: r.Profile, Simulation: r.Simulation, StartedAt: r.StartedAt, Summary: r.Summary}
}

// changeOf classifies one finding; b or a is nil when the finding is only on
// the other side.
func changeOf(b, a *Finding) FindingChange {
	var c FindingChange
	switch {
	case b == nil:
		c = FindingChange{Change: ChangeNew, ID: a.ID, Subject: a.Subject, After: a.Status}
	case a == nil:
		c = FindingChange{Change: ChangeFixed, ID: b.ID, Subject: b.Subject, Before: b.Status,
			Message: b.Message, Remediation: b.Remediation, SuppressedBefore: b.Suppressed}
		if b.Status == StatusPass || b.Status == StatusError {
			c.Change = ChangeRemoved
		}
		return c
	default:
		c = FindingChange{ID: a.ID, Subject: a.Subject, Before: b.Status, After: a.Status, SuppressedBefore: b.Suppressed}
		if b.Subject != a.Subject {
			c.BeforeSubject = b.Subject
		}
		c.Change = statusChange(b.Status, a.Status)
		if c.Change == ChangeUnchanged && a.Status != StatusPass && (b.Suppressed == nil) != (a.Suppressed == nil) {
			c.Change = ChangeSuppressed
			if a.Suppressed == nil {
				c.Change = ChangeUnsuppressed
			}
		}
	}
	c.Message, c.Remediation, c.SuppressedAfter = a.Message, a.Remediation, a.Suppressed
	return c
}

// statusChange classifies a status pair; "could not check" stays apart from
// the pass < info < warn < fail order.
func statusChange(b, a Status) Change {
	switch {
	case b == a:
		return ChangeUnchanged
	case a == StatusError:
		return ChangeUnverifiable
	case b == StatusError:
		return ChangeVerifiable
	case a == StatusPass:
		return ChangeFixed
	case severity[a] > severity[b]:
		return ChangeWorse
	}
	return ChangeBetter
}

// pair is an index into BEFORE and one into AFTER; -1 for the missing side.
type pair struct{ b, a int }

// pairBy pairs items by (id, subject) in the three rounds described at Diff
// and returns every item exactly once: pairs in AFTER's order, then AFTER's
// unpaired, then BEFORE's unpaired.
func pairBy(nb, na int, bKey, aKey func(int) (id, subject string)) []pair {
	bUsed, aOf := make([]bool, nb), make([]int, na)
	for j := range aOf {
		aOf[j] = -1
	}
	for level := range 3 {
		queue := map[string][]int{}
		var order []int
		for j := range na {
			if aOf[j] < 0 {
				order = append(order, j)
			}
		}
		sortBySubject(order, aKey)
		for _, j := range order {
			id, s := aKey(j)
			if k, ok := subjectKey(id, s, level); ok {
				queue[k] = append(queue[k], j)
			}
		}
		var border []int
		for i := range nb {
			if !bUsed[i] {
				border = append(border, i)
			}
		}
		sortBySubject(border, bKey)
		for _, i := range border {
			id, s := bKey(i)
			k, ok := subjectKey(id, s, level)
			if !ok || len(queue[k]) == 0 {
				continue
			}
			j := queue[k][0]
			queue[k] = queue[k][1:]
			aOf[j], bUsed[i] = i, true
		}
	}
	var out []pair
	for j, i := range aOf {
		out = append(out, pair{i, j})
	}
	for i, used := range bUsed {
		if !used {
			out = append(out, pair{i, -1})
		}
	}
	return out
}

// sortBySubject orders indices by their port-less subject, so rounds 2 and 3
// pair a host's addresses in address order rather than status order.
func sortBySubject(idx []int, key func(int) (string, string)) {
	slices.SortStableFunc(idx, func(x, y int) int {
		_, sx := key(x)
		_, sy := key(y)
		kx, _ := subjectKey("", sx, 1)
		ky, _ := subjectKey("", sy, 1)
		return strings.Compare(kx, ky)
	})
}

// endpointSubject matches "host [address]" with an optional ":port", and
// "[address]:port".
var endpointSubject = regexp.MustCompile(`^(.*?) ?\[([0-9A-Fa-f:.]+)\](?::[0-9]+)?$`)

// subjectKey is the pairing key of round level (0 exact, 1 without a port,
// 2 host and address family); ok is false when the round adds nothing for
// this subject (only "host [address]" subjects have a round 2).
func subjectKey(id, subject string, level int) (string, bool) {
	if level == 0 {
		return id + "\x00" + subject, true
	}
	host, addr, ok := splitEndpoint(subject)
	if !ok {
		return id + "\x00" + subject, level == 1
	}
	if level == 1 {
		if host == "" {
			return id + "\x00" + addr, true
		}
		return id + "\x00" + host + " [" + addr + "]", true
	}
	if host == "" {
		return "", false
	}
	family := "4"
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() && !a.Is4In6() {
		family = "6"
	}
	return id + "\x00" + host + "\x00" + family, true
}

// splitEndpoint takes "host [address]:port", "[address]:port" or
// "address:port" apart; ok is false for any other subject.
func splitEndpoint(s string) (host, addr string, ok bool) {
	if m := endpointSubject.FindStringSubmatch(s); m != nil {
		if _, err := netip.ParseAddr(m[2]); err == nil {
			return m[1], m[2], true
		}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return "", ap.Addr().String(), true
	}
	return "", "", false
}

// mxDiff compares the MX sets of the mx.present findings; nil when either
// side has none (MX not checked, or the lookup failed) or the sets are equal.
func mxDiff(b, a *Report) *MXDiff {
	bs, ok1 := mxSet(b)
	as, ok2 := mxSet(a)
	if !ok1 || !ok2 || slices.Equal(bs, as) {
		return nil
	}
	d := &MXDiff{Before: bs, After: as, Added: []string{}, Removed: []string{}}
	for _, m := range as {
		if !slices.Contains(bs, m) {
			d.Added = append(d.Added, m)
		}
	}
	for _, m := range bs {
		if !slices.Contains(as, m) {
			d.Removed = append(d.Removed, m)
		}
	}
	return d
}

// mxSet reads the "mx" evidence of mx.present ("10 host." strings: a
// []string in process, a []any from JSON) as sorted, deduplicated
// "preference host" entries.
func mxSet(r *Report) ([]string, bool) {
	for _, f := range r.Findings {
		if f.ID != "mx.present" {
			continue
		}
		var raw []string
		switch v := f.Evidence["mx"].(type) {
		case []string:
			raw = v
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok {
					raw = append(raw, s)
				}
			}
		default:
			return nil, false
		}
		set := make([]string, 0, len(raw))
		for _, s := range raw {
			set = append(set, normalizeMX(s))
		}
		slices.SortFunc(set, compareMX)
		return slices.Compact(set), true
	}
	return nil, false
}

func normalizeMX(s string) string {
	fs := strings.Fields(strings.ToLower(s))
	if len(fs) == 2 {
		if p, err := strconv.ParseUint(fs[0], 10, 16); err == nil {
			host := fs[1]
			if host != "." {
				host = strings.TrimSuffix(host, ".")
			}
			return strconv.FormatUint(p, 10) + " " + host
		}
	}
	return strings.Join(fs, " ")
}

// compareMX orders "preference host" by preference, then host.
func compareMX(x, y string) int {
	px, hx, _ := strings.Cut(x, " ")
	py, hy, _ := strings.Cut(y, " ")
	nx, e1 := strconv.Atoi(px)
	ny, e2 := strconv.Atoi(py)
	if e1 == nil && e2 == nil && nx != ny {
		return cmp.Compare(nx, ny)
	}
	return cmp.Or(strings.Compare(hx, hy), strings.Compare(x, y))
}

func spfDiff(b, a *Report) *SPFDiff {
	if b.SPF == nil || a.SPF == nil {
		return nil
	}
	d := &SPFDiff{Before: spfState(b.SPF), After: spfState(a.SPF)}
	if d.Before.Record == d.After.Record && d.Before.Lookups == d.After.Lookups {
		return nil
	}
	return d
}

func spfState(s *SPF) SPFState {
	st := SPFState{Lookups: s.Lookups, LookupLimit: s.LookupLimit, Complete: s.Complete}
	if s.Tree != nil {
		st.Record = s.Tree.Record
	}
	return st
}

// verdictStatus ranks a TLS verdict like a finding status; "skipped" and
// "unreachable" are "could not check".
func verdictStatus(v string) Status {
	if v == "skipped" {
		return StatusError
	}
	return tlsVerdictStatus(v)
}

func tlsDiff(b, a []TLSEndpoint) []TLSChange {
	key := func(es []TLSEndpoint) func(int) (string, string) {
		return func(i int) (string, string) { return es[i].Role, es[i].Endpoint() }
	}
	var out []TLSChange
	for _, p := range pairBy(len(b), len(a), key(b), key(a)) {
		var c TLSChange
		switch {
		case p.b >= 0 && p.a >= 0:
			be, ae := b[p.b], a[p.a]
			if be.Verdict == ae.Verdict {
				continue
			}
			c = tlsChange(ae, statusChange(verdictStatus(be.Verdict), verdictStatus(ae.Verdict)))
			c.Before, c.After = be.Verdict, ae.Verdict
			if be.Address != ae.Address {
				c.BeforeAddress = be.Address
			}
			if c.Change == ChangeUnchanged {
				// Two verdicts of the same rank (untrusted and
				// tls-failed): still a change worth showing.
				c.Change = ChangeWorse
			}
		case p.a >= 0:
			c = tlsChange(a[p.a], ChangeNew)
			c.After = a[p.a].Verdict
		default:
			c = tlsChange(b[p.b], ChangeRemoved)
			c.Before, c.Reason = b[p.b].Verdict, ""
		}
		out = append(out, c)
	}
	return out
}

func tlsChange(e TLSEndpoint, ch Change) TLSChange {
	return TLSChange{Change: ch, Host: e.Host, Address: e.Address, Port: e.Port, Role: e.Role, Reason: e.Reason}
}

// DiffSet is the result of `mfcheck diff`: the reports of BEFORE and AFTER
// paired by domain.
type DiffSet struct {
	Schema string     `json:"schema"`
	Tool   Tool       `json:"tool"`
	Before DiffSource `json:"before"`
	After  DiffSource `json:"after"`
	// FailOn, ErrorsAreWorse and GotWorse are set by the renderers from
	// their Gate.
	FailOn         Status `json:"fail_on"`
	ErrorsAreWorse bool   `json:"errors_are_worse"`
	GotWorse       bool   `json:"worse"`
	// Domains are the domains in both, in AFTER's order.
	Domains []*ReportDiff `json:"domains"`
	// OnlyBefore and OnlyAfter are domains on one side only. They are
	// listed but never make the diff worse: there is nothing to compare
	// them with (the check run's own exit code covers AFTER's).
	OnlyBefore []DomainSide `json:"only_before"`
	OnlyAfter  []DomainSide `json:"only_after"`
}

// DiffSource names one side: the file and how many reports it held.
type DiffSource struct {
	Source  string `json:"source"`
	Reports int    `json:"reports"`
}

// DomainSide is a domain found on one side only.
type DomainSide struct {
	Domain string `json:"domain"`
	ReportSide
}

// DuplicateDomainError reports a domain that appears more than once on one
// side, which would make the pairing a guess.
type DuplicateDomainError struct {
	After  bool // false: BEFORE
	Domain string
	Count  int
}

func (e *DuplicateDomainError) Error() string {
	return fmt.Sprintf("domain %s appears in %d reports; a diff pairs one report per domain", e.Domain, e.Count)
}

// domainKey compares domains case-insensitively and without a final dot.
func domainKey(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// DiffAll pairs the reports of both sides by domain and diffs each pair.
// Source names and Tool are left for the caller.
func DiffAll(before, after []*Report) (*DiffSet, error) {
	index := func(rs []*Report, isAfter bool) (map[string]*Report, error) {
		m := make(map[string]*Report, len(rs))
		n := map[string]int{}
		for _, r := range rs {
			k := domainKey(r.Domain)
			n[k]++
			m[k] = r
		}
		for _, r := range rs {
			if k := domainKey(r.Domain); n[k] > 1 {
				return nil, &DuplicateDomainError{After: isAfter, Domain: r.Domain, Count: n[k]}
			}
		}
		return m, nil
	}
	bm, err := index(before, false)
	if err != nil {
		return nil, err
	}
	am, err := index(after, true)
	if err != nil {
		return nil, err
	}
	s := &DiffSet{
		Schema: DiffSchema, Tool: Tool{Name: "mfcheck"},
		Before: DiffSource{Reports: len(before)}, After: DiffSource{Reports: len(after)},
		FailOn: StatusFail, Domains: []*ReportDiff{}, OnlyBefore: []DomainSide{}, OnlyAfter: []DomainSide{},
	}
	for _, a := range after {
		if b, ok := bm[domainKey(a.Domain)]; ok {
			s.Domains = append(s.Domains, Diff(b, a))
		} else {
			s.OnlyAfter = append(s.OnlyAfter, DomainSide{Domain: a.Domain, ReportSide: side(a.finalized())})
		}
	}
	for _, b := range before {
		if _, ok := am[domainKey(b.Domain)]; !ok {
			s.OnlyBefore = append(s.OnlyBefore, DomainSide{Domain: b.Domain, ReportSide: side(b.finalized())})
		}
	}
	return s, nil
}

// Worse reports whether any domain got worse under g.
func (s *DiffSet) Worse(g Gate) bool {
	for _, d := range s.Domains {
		if d.Worse(g) {
			return true
		}
	}
	return false
}

// ExitCode is 1 (ExitFindings) when something got worse under g, else 0.
func (s *DiffSet) ExitCode(g Gate) int {
	if s.Worse(g) {
		return ExitFindings
	}
	return ExitOK
}

// gated returns a copy with the Gate's outcome in FailOn, ErrorsAreWorse,
// GotWorse and every Regression, for the renderers; s is not modified.
func (s *DiffSet) gated(g Gate) *DiffSet {
	c := *s
	c.FailOn, c.ErrorsAreWorse, c.GotWorse = g.failOn(), g.ErrorsAreWorse, s.Worse(g)
	c.Domains = make([]*ReportDiff, len(s.Domains))
	for i, d := range s.Domains {
		dc := *d
		dc.Changes = slices.Clone(d.Changes)
		for j := range dc.Changes {
			dc.Changes[j].Regression = g.Regression(dc.Changes[j])
		}
		dc.GotWorse = d.Worse(g)
		c.Domains[i] = &dc
	}
	return &c
}

// ReadError is an input that is not an mfcheck report; Line is where the
// bad document starts or the JSON breaks (1-based).
type ReadError struct {
	Line int
	Err  error
}

func (e *ReadError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

// ErrNoReport is returned for an input without any JSON document.
var ErrNoReport = errors.New("report: no report in the input (empty file?)")

// ReadReports reads what `--output json` writes: one (indented) report, or
// JSON Lines with one report per line (bulk). Every document must be an
// object with "schema": "mfcheck.report/v1" and findings with known
// statuses. Errors say the line; the caller adds the file name.
func ReadReports(r io.Reader) ([]*Report, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	data = fromBOM(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []*Report
	for {
		start := int(dec.InputOffset())
		for start < len(data) && strings.IndexByte(" \t\r\n", data[start]) >= 0 {
			start++
		}
		if start >= len(data) {
			break
		}
		line := lineAt(data, start)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			var se *json.SyntaxError
			switch {
			case errors.As(err, &se):
				return nil, &ReadError{Line: lineAt(data, int(se.Offset)-1), Err: fmt.Errorf("not JSON: %v", se)}
			case errors.Is(err, io.ErrUnexpectedEOF):
				return nil, &ReadError{Line: line, Err: errors.New("not JSON: the document is cut off (unexpected end of input)")}
			}
			return nil, &ReadError{Line: line, Err: err}
		}
		rep, err := decodeReport(raw)
		if err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, &ReadError{Line: lineAt(data, start+int(te.Offset)),
					Err: fmt.Errorf("not an mfcheck report: member %q has the wrong type (JSON %s)", te.Field, te.Value)}
			}
			return nil, &ReadError{Line: line, Err: err}
		}
		out = append(out, rep)
	}
	if len(out) == 0 {
		return nil, ErrNoReport
	}
	return out, nil
}

func decodeReport(raw json.RawMessage) (*Report, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("not an mfcheck report: a JSON object was expected")
	}
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, err
	}
	switch {
	case head.Schema == nil:
		return nil, fmt.Errorf("not an mfcheck report: no \"schema\" member (want %q)", Schema)
	case *head.Schema == DiffSchema:
		return nil, fmt.Errorf("this is the output of mfcheck diff (%q), not a report", DiffSchema)
	case *head.Schema != Schema:
		return nil, fmt.Errorf("schema %q is not %q", *head.Schema, Schema)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, err
	}
	if strings.TrimSpace(rep.Domain) == "" {
		return nil, errors.New("the report has no domain")
	}
	for i, f := range rep.Findings {
		if !f.Status.Valid() {
			return nil, fmt.Errorf("finding %d (%s): unknown status %q", i+1, f.ID, f.Status)
		}
	}
	return &rep, nil
}

// fromBOM drops a UTF-8 byte-order mark and decodes UTF-16 text that starts
// with one: Windows PowerShell 5's ">" writes redirected output as UTF-16LE,
// and a report saved that way should still be read.
func fromBOM(data []byte) []byte {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return data[3:]
	case len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF):
		order := binary.ByteOrder(binary.LittleEndian)
		if data[0] == 0xFE {
			order = binary.BigEndian
		}
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			u = append(u, order.Uint16(data[i:]))
		}
		return []byte(string(utf16.Decode(u)))
	}
	return data
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}
