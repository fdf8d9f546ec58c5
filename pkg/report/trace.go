package report

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/tw"
)

// Trace is the received-message section of a report (`mfcheck trace`):
// the message's identity and its Received chain as hops from the sender to
// the mailbox, the evidence behind the trace.* findings. Plain data filled
// in by the caller; this package only renders it.
type Trace struct {
	// Source is where the message was read: a file path, "-" (stdin) or
	// "maildir DIR, token T".
	Source    string     `json:"source"`
	MessageID string     `json:"message_id,omitempty"`
	Token     string     `json:"token,omitempty"`
	From      string     `json:"from,omitempty"`
	To        string     `json:"to,omitempty"`
	Subject   string     `json:"subject,omitempty"`
	Date      string     `json:"date,omitempty"` // RFC 3339
	Hops      []TraceHop `json:"hops"`
}

// TraceHop is one Received header, numbered from the sender's side.
type TraceHop struct {
	Index  int    `json:"index"`
	From   string `json:"from,omitempty"`
	FromIP string `json:"from_ip,omitempty"`
	By     string `json:"by,omitempty"`
	With   string `json:"with,omitempty"`
	// TLS is whether the hop says it used TLS (ESMTPS, "using TLSv1.3",
	// "version=TLS1_2"); TLSVersion and Cipher when it names them.
	TLS        bool   `json:"tls"`
	TLSVersion string `json:"tls_version,omitempty"`
	Cipher     string `json:"cipher,omitempty"`
	Time       string `json:"time,omitempty"` // RFC 3339
	// DelayS is the seconds since the previous hop (negative: clock skew).
	DelayS *float64 `json:"delay_s,omitempty"`
	// Gateway marks the hop through the gateway profile's hosts.
	Gateway bool `json:"gateway,omitempty"`
	// ParseError says what could not be read from the header.
	ParseError string `json:"parse_error,omitempty"`
}

func traceHeadline(t *Trace) string {
	s := "Received chain of " + t.Source + ": " + plural(len(t.Hops), "hop", "hops")
	if t.Token != "" {
		s += ", token " + t.Token
	}
	return s
}

func hopCells(h TraceHop) (with, delay string) {
	with = h.With
	if h.TLS {
		tlsWord := "TLS"
		if h.TLSVersion != "" {
			tlsWord = h.TLSVersion
		}
		with = strings.TrimSpace(with + " " + tlsWord)
	}
	if h.Gateway {
		with += " [gateway]"
	}
	if h.DelayS != nil {
		delay = strconv.FormatFloat(*h.DelayS, 'f', 0, 64) + " s"
	}
	return with, delay
}

func hopFrom(h TraceHop) string {
	if h.FromIP == "" {
		return h.From
	}
	return strings.TrimSpace(h.From + " [" + h.FromIP + "]")
}

// Widths of the trace table's free-text columns.
const (
	traceHostWidth = 40
	traceWithWidth = 24
)

// receivedTable renders # | FROM | BY | WITH | TIME | DELAY.
func receivedTable(ew *errWriter, t *Trace) error {
	ew.printf("\n%s\n", sanitize(traceHeadline(t)))
	if len(t.Hops) == 0 {
		ew.printf("The message has no Received header.\n")
		return ew.err
	}
	var buf bytes.Buffer
	align := []tw.Align{tw.AlignRight, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight}
	tb := newTable(&buf, tw.MergeNone, align)
	tb.Header("#", "FROM", "BY", "WITH", "TIME", "DELAY")
	for _, h := range t.Hops {
		with, delay := hopCells(h)
		by := h.By
		if h.ParseError != "" {
			by = strings.TrimSpace(by + " (unreadable: " + h.ParseError + ")")
		}
		row := []string{strconv.Itoa(h.Index), wrap(sanitize(hopFrom(h)), traceHostWidth), wrap(sanitize(by), traceHostWidth),
			wrap(sanitize(with), traceWithWidth), sanitize(h.Time), delay}
		if err := tb.Append(row); err != nil {
			return err
		}
	}
	if err := tb.Render(); err != nil {
		return fmt.Errorf("report: received table: %w", err)
	}
	ew.printf("%s", buf.String())
	return ew.err
}

func writeMarkdownTrace(ew *errWriter, t *Trace) {
	ew.printf("\n### Received chain\n\n**%s**\n\n", mdEscape(traceHeadline(t), " "))
	if len(t.Hops) == 0 {
		ew.printf("The message has no Received header.\n")
		return
	}
	ew.printf("| # | From | By | With | Time | Delay |\n|---:|---|---|---|---|---:|\n")
	for _, h := range t.Hops {
		with, delay := hopCells(h)
		by := h.By
		if h.ParseError != "" {
			by = strings.TrimSpace(by + " (unreadable: " + h.ParseError + ")")
		}
		ew.printf("| %d | %s | %s | %s | %s | %s |\n", h.Index, mdEscape(hopFrom(h), " "), mdEscape(by, " "), mdEscape(with, " "), mdEscape(h.Time, " "), delay)
	}
}
