package msgtrace

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Finding IDs; every one is described in docs/checks.md.
const (
	IDMessage     = "trace.message"
	IDGatewayHop  = "trace.gateway-hop"
	IDAuthResults = "trace.auth-results"
	IDTLSHops     = "trace.tls-hops"
	IDDKIM        = "trace.dkim"
)

// MaxHops bounds the Received fields analysed. RFC 5321 §6.3 suggests
// treating a message with 100 or more Received fields as looping.
const MaxHops = 100

// TokenHeader is the header field mfcheck's test messages carry.
const TokenHeader = "X-Mfcheck-Token"

// Resolver is the DNS the DKIM verification uses for key records
// (TXT <selector>._domainkey.<domain>); resolver.Client satisfies it. It is
// never the system resolver.
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error)
}

// Options configure Analyze. The zero value analyses the chain without a
// gateway, without DKIM verification and with the time of the call.
type Options struct {
	// Profile is the gateway. Its MX, smart-host, SMTP outbound and journal
	// host patterns, its stored IP ranges and its vendor domain identify
	// the gateway hop.
	Profile *profile.Profile
	// Mailbox is the mail platform behind the gateway (optional); hops it
	// received are marked, and the gateway must come before the first.
	Mailbox *profile.Profile
	// Resolver looks up DKIM keys; nil skips DKIM verification (and a
	// finding says so).
	Resolver Resolver
	// Now is the clock (hop times in the future are flagged); nil is
	// time.Now.
	Now func() time.Time
	// AuthServID, when set, is the only authserv-id whose
	// Authentication-Results are trusted (RFC 8601 §5: a receiver trusts
	// only its own). Empty trusts the topmost one and says so.
	AuthServID string
}

// Trace is what a received message says about its path.
type Trace struct {
	From      string    `json:"from,omitempty"`
	To        string    `json:"to,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Token     string    `json:"token,omitempty"`
	Date      time.Time `json:"date,omitzero"`
	// Hops are the Received fields from the sender's side (Index 1) to the
	// mailbox; at most MaxHops, ReceivedCount says how many there were.
	Hops          []Hop `json:"hops"`
	ReceivedCount int   `json:"received_count"`
	// AuthResults are the results of every Authentication-Results field,
	// the topmost field's first.
	AuthResults []AuthResult     `json:"auth_results,omitempty"`
	DKIM        []DKIMCheck      `json:"dkim,omitempty"`
	Findings    []report.Finding `json:"findings"`
}

// Analyze reads a whole message and returns its trace and findings. It
// never fails: a message it cannot read gives a trace.message error finding.
func Analyze(ctx context.Context, raw []byte, o Options) *Trace {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := &Trace{Hops: []Hop{}, Findings: []report.Finding{}}
	m, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Findings = append(t.Findings, report.Finding{ID: IDMessage, Status: report.StatusError, Subject: "message",
			Message:     "Could not read the message: " + err.Error(),
			Remediation: "Give mfcheck trace the whole message as received (headers and body, e.g. the .eml file or the Maildir file), not a copy of the body or a screenshot.",
			Evidence:    map[string]any{"bytes": len(raw), "start": abbreviate(string(raw[:min(len(raw), 200)]), 200)}})
		return t
	}
	t.fillIdentity(m)
	subject := t.subject()

	t.Hops, t.ReceivedCount = buildHops(m.Values("Received"))
	var msgProblems []report.Finding
	if f, ok := t.hopProblems(subject, now()); ok {
		msgProblems = append(msgProblems, f)
	}
	t.Findings = append(t.Findings, msgProblems...)
	t.Findings = append(t.Findings, gatewayFinding(t, o, subject))
	t.Findings = append(t.Findings, tlsFindings(t, subject)...)

	var arFinding report.Finding
	t.AuthResults, arFinding = authResultsFinding(m.Values("Authentication-Results"), o.AuthServID, subject)
	t.Findings = append(t.Findings, arFinding)

	var dk []report.Finding
	t.DKIM, dk = verifyDKIM(ctx, raw[m.Offset:], m, o.Resolver, t.From, subject)
	t.Findings = append(t.Findings, dk...)
	return t
}

// fillIdentity copies the identifying headers, decoding RFC 2047 words.
func (t *Trace) fillIdentity(m *Message) {
	dec := new(mime.WordDecoder)
	decode := func(s string) string {
		if d, err := dec.DecodeHeader(s); err == nil {
			return d
		}
		return s
	}
	t.From = decode(m.Get("From"))
	t.To = decode(m.Get("To"))
	t.Subject = decode(m.Get("Subject"))
	t.MessageID = m.Get("Message-Id")
	t.Token = strings.TrimSpace(m.Get(TokenHeader))
	if d, err := parseDate(m.Get("Date")); err == nil {
		t.Date = d
	}
}

// subject names the message in findings.
func (t *Trace) subject() string {
	switch {
	case t.MessageID != "":
		return "message " + abbreviate(t.MessageID, 200)
	case t.Token != "":
		return "message with token " + abbreviate(t.Token, 100)
	default:
		return "message"
	}
}

// buildHops parses the Received values (topmost first, as in the message)
// into hops numbered from the sender's side, with delays between them.
func buildHops(values []string) ([]Hop, int) {
	n := len(values)
	if len(values) > MaxHops {
		// Keep the MaxHops closest to the mailbox: those were written by
		// the systems the reader runs or chose; the bottom ones may be
		// anything the sender wrote.
		values = values[:MaxHops]
	}
	hops := make([]Hop, len(values))
	for i, v := range values {
		h, _ := ParseReceived(v)
		h.Index = len(values) - i
		hops[len(values)-1-i] = h
	}
	for i := 1; i < len(hops); i++ {
		if hops[i].Time.IsZero() || hops[i-1].Time.IsZero() {
			continue
		}
		d := hops[i].Time.Sub(hops[i-1].Time).Seconds()
		hops[i].DelayS = &d
	}
	return hops, n
}

// hopProblems is the trace.message finding about the chain itself:
// unparsable Received fields, clocks that disagree, hops in the future,
// a chain cut at MaxHops. ok is false when there is nothing to say.
func (t *Trace) hopProblems(subject string, now time.Time) (report.Finding, bool) {
	var bad, skew, future []string
	for _, h := range t.Hops {
		if h.ParseError != "" {
			bad = append(bad, fmt.Sprintf("hop %d: %s", h.Index, h.ParseError))
		}
		if h.DelayS != nil && *h.DelayS < 0 {
			skew = append(skew, fmt.Sprintf("hop %d (%s) is %.0f s before hop %d", h.Index, hopName(h), -*h.DelayS, h.Index-1))
		}
		if !h.Time.IsZero() && h.Time.After(now.Add(15*time.Minute)) {
			future = append(future, fmt.Sprintf("hop %d (%s) is dated %s, in the future", h.Index, hopName(h), h.Time.UTC().Format(time.RFC3339)))
		}
	}
	if len(bad) == 0 && len(skew) == 0 && len(future) == 0 && t.ReceivedCount <= MaxHops {
		return report.Finding{}, false
	}
	var parts []string
	if len(bad) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d Received fields could not be fully read", len(bad), len(t.Hops)))
	}
	if len(skew)+len(future) > 0 {
		parts = append(parts, fmt.Sprintf("%d hop times disagree (clock skew)", len(skew)+len(future)))
	}
	if t.ReceivedCount > MaxHops {
		parts = append(parts, fmt.Sprintf("the message has %d Received fields; only the %d closest to the mailbox were read (RFC 5321 §6.3 treats 100 as a mail loop)", t.ReceivedCount, MaxHops))
	}
	return report.Finding{ID: IDMessage, Status: report.StatusWarn, Subject: subject,
		Message:     strings.Join(parts, "; "),
		Remediation: "Unreadable Received fields are kept raw in the evidence; a clock that disagrees belongs to the host named (set up NTP there); hop delays next to it are not real.",
		Evidence: map[string]any{"parse_errors": bad, "clock_skew": append(skew, future...),
			"received_count": t.ReceivedCount, "hops": hopTable(t.Hops)}}, true
}

// hopName is "from X by Y" for messages.
func hopName(h Hop) string {
	var b strings.Builder
	if from := hopFrom(h); from != "" {
		b.WriteString("from " + from + " ")
	}
	if h.By != "" {
		b.WriteString("by " + h.By)
	} else {
		b.WriteString("(no by)")
	}
	return strings.TrimSpace(b.String())
}

func hopFrom(h Hop) string {
	name := h.From
	if h.FromRDNS != "" && !strings.EqualFold(h.FromRDNS, h.From) {
		name += " (" + h.FromRDNS + ")"
	}
	if h.FromIP != "" {
		name += " [" + h.FromIP + "]"
	}
	return strings.TrimSpace(name)
}

// hopRow is one line of the hops table in evidence: the parsed fields
// without the raw header (which is kept once, in hopsRaw).
type hopRow struct {
	Index     int       `json:"index"`
	From      string    `json:"from,omitempty"`
	By        string    `json:"by,omitempty"`
	With      string    `json:"with,omitempty"`
	Transport Transport `json:"transport"`
	TLS       string    `json:"tls,omitempty"`
	Time      string    `json:"time,omitempty"`
	DelayS    *float64  `json:"delay_s,omitempty"`
	Gateway   string    `json:"gateway,omitempty"`
	Mailbox   string    `json:"mailbox,omitempty"`
	Error     string    `json:"parse_error,omitempty"`
}

func hopTable(hops []Hop) []hopRow {
	rows := make([]hopRow, 0, len(hops))
	for _, h := range hops {
		r := hopRow{Index: h.Index, From: hopFrom(h), By: h.By, With: h.With, Transport: h.Transport,
			DelayS: h.DelayS, Gateway: h.GatewayMatch, Mailbox: h.MailboxMatch, Error: h.ParseError}
		if h.TLS {
			r.TLS = strings.TrimSpace(h.TLSVersion + " " + h.TLSCipher)
			if r.TLS == "" {
				r.TLS = "yes"
			}
		}
		if !h.Time.IsZero() {
			r.Time = h.Time.UTC().Format(time.RFC3339)
		}
		rows = append(rows, r)
	}
	return rows
}

// maxRawEvidence bounds the raw header values copied into one finding.
const maxRawEvidence = 50

// hopsRaw is the raw Received values, sender side first, bounded.
func hopsRaw(hops []Hop) []string {
	out := make([]string, 0, min(len(hops), maxRawEvidence))
	for _, h := range hops {
		if len(out) == maxRawEvidence {
			break
		}
		out = append(out, abbreviate(h.Raw, 1024))
	}
	return out
}

// fromDomain is the domain of the first From address, lower case.
func fromDomain(from string) string {
	addr, err := mail.ParseAddress(from)
	s := from
	if err == nil {
		s = addr.Address
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return strings.ToLower(strings.Trim(s[i+1:], "<> "))
	}
	return ""
}
