package report

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/tw"
)

// TLSEndpoint is one SMTP endpoint a run probed: one address of an MX host
// or of a smart host. It is the at-a-glance row behind the tls.* findings,
// which carry the full evidence (replies, chain, timings). Plain data filled
// in by pkg/check; this package only renders it.
type TLSEndpoint struct {
	Host    string `json:"host"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Role is "mx" or "smart-host".
	Role string `json:"role"`
	// Verdict is the endpoint's one-word outcome, the same words Postfix's
	// posttls-finger uses where they exist:
	//   verified      STARTTLS (or implicit TLS) with a chain to a trusted root
	//                 for the host's name, unexpired
	//   untrusted     TLS works but the certificate fails verification (Reason)
	//   no-starttls   the server does not offer STARTTLS
	//   tls-failed    STARTTLS offered, then the handshake failed
	//   not-accepting the banner is not 220 (e.g. 421, 554)
	//   unreachable   no SMTP session: connect failed, timed out, garbage
	//   skipped       not probed (--no-smtp)
	Verdict string `json:"verdict"`
	// Reason says why an endpoint is untrusted, failed or unreachable.
	Reason string `json:"reason,omitempty"`
	// Banner is the greeting's first line (code and text).
	Banner   string `json:"banner,omitempty"`
	StartTLS bool   `json:"starttls"`
	// TLSVersion and Cipher are those negotiated ("TLS 1.3").
	TLSVersion string `json:"tls_version,omitempty"`
	Cipher     string `json:"cipher,omitempty"`
	// Certificate and Issuer are the leaf's subject and issuer; NotAfter
	// its expiry (RFC 3339) and DaysLeft the whole days until then
	// (negative when expired).
	Certificate string `json:"certificate,omitempty"`
	Issuer      string `json:"issuer,omitempty"`
	NotAfter    string `json:"not_after,omitempty"`
	DaysLeft    *int   `json:"days_left,omitempty"`
	// DANE is the TLSA outcome (RFC 7672): "none", "valid", "mismatch",
	// "unauthenticated" (records without DNSSEC validation), "unusable",
	// "no-tls" (usable records, no TLS session to match), "error"; empty
	// when not looked up.
	DANE string `json:"dane,omitempty"`
	// PhasesMS are the durations of the protocol phases in milliseconds
	// (connect, banner, ehlo, starttls, handshake, ehlo-tls, quit).
	PhasesMS map[string]float64 `json:"phases_ms,omitempty"`
	// TotalMS is the whole probe, connect to QUIT.
	TotalMS float64 `json:"total_ms"`
}

// Endpoint is the Subject tls.* findings use for the endpoint, so a reader
// can match a row to its findings: "host [192.0.2.1]", "host [2001:db8::1]:2525".
func (e TLSEndpoint) Endpoint() string {
	if e.Host == "" {
		return e.addressPort()
	}
	s := e.Host + " [" + e.Address + "]"
	if e.Port != 0 && e.Port != 25 {
		s += ":" + strconv.Itoa(e.Port)
	}
	return s
}

// addressPort is the address, with the port when it is not 25 (an IPv6
// address then in brackets, as in a URL).
func (e TLSEndpoint) addressPort() string {
	if e.Port == 0 || e.Port == 25 {
		return e.Address
	}
	if strings.Contains(e.Address, ":") {
		return "[" + e.Address + "]:" + strconv.Itoa(e.Port)
	}
	return e.Address + ":" + strconv.Itoa(e.Port)
}

// tlsVerdictStatus colours a verdict like the status it usually goes with.
func tlsVerdictStatus(v string) Status {
	switch v {
	case "verified":
		return StatusPass
	case "skipped":
		return StatusInfo
	case "unreachable":
		return StatusError
	case "no-starttls":
		return StatusWarn
	default:
		return StatusFail
	}
}

// tlsCells are the cells shared by the table and Markdown renderers.
// The table leaves the cipher out for width (the tls.version finding and
// the JSON have it); Markdown cells can be wide.
func tlsCells(e TLSEndpoint, withCipher bool) (tlsCell, certCell, verdictCell string) {
	switch {
	case e.TLSVersion != "":
		tlsCell = e.TLSVersion
		if withCipher && e.Cipher != "" {
			tlsCell += " " + e.Cipher
		}
	case e.StartTLS:
		tlsCell = "STARTTLS offered"
	case e.Verdict == "unreachable" || e.Verdict == "skipped" || e.Verdict == "not-accepting":
		tlsCell = "-"
	default:
		tlsCell = "none"
	}
	if e.Certificate != "" {
		certCell = e.Certificate
		if e.Issuer != "" && e.Issuer != e.Certificate {
			certCell += " (issuer " + e.Issuer + ")"
		}
		if e.DaysLeft != nil {
			if *e.DaysLeft < 0 {
				certCell += fmt.Sprintf("; expired %d days ago", -*e.DaysLeft)
			} else {
				certCell += fmt.Sprintf("; %d days left", *e.DaysLeft)
			}
		}
	}
	verdictCell = e.Verdict
	if e.Reason != "" {
		verdictCell += ": " + e.Reason
	}
	if e.DANE != "" && e.DANE != "none" {
		verdictCell += "; DANE " + e.DANE
	}
	return tlsCell, certCell, verdictCell
}

func tlsHeadline(es []TLSEndpoint) string {
	n := map[string]int{}
	for _, e := range es {
		n[e.Verdict]++
	}
	return fmt.Sprintf("SMTP endpoints: %s probed, %d verified", plural(len(es), "address", "addresses"), n["verified"])
}

// Widths of the TLS table's free-text columns, so the table stays within
// about 140 columns like the findings table.
const (
	tlsHostWidth    = 44
	tlsCertWidth    = 36
	tlsVerdictWidth = 30
)

// tlsTable renders ENDPOINT | ROLE | TLS | CERTIFICATE | VERDICT | MS; the
// endpoint cell is the host over its address.
func tlsTable(ew *errWriter, c bool, es []TLSEndpoint) error {
	ew.printf("\n%s\n", tlsHeadline(es))
	var buf bytes.Buffer
	align := []tw.Align{tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight}
	t := newTable(&buf, tw.MergeNone, align)
	t.Header("ENDPOINT", "ROLE", "TLS", "CERTIFICATE", "VERDICT", "MS")
	for _, e := range es {
		tlsCell, certCell, verdictCell := tlsCells(e, false)
		endpoint := wrap(sanitize(e.Host), tlsHostWidth) + "\n" + sanitize(e.addressPort())
		if e.Host == "" {
			endpoint = sanitize(e.addressPort())
		}
		row := []string{
			endpoint, sanitize(e.Role),
			sanitize(tlsCell), wrap(sanitize(certCell), tlsCertWidth),
			paint(c, statusColor[tlsVerdictStatus(e.Verdict)], wrap(sanitize(verdictCell), tlsVerdictWidth)),
			strconv.FormatFloat(e.TotalMS, 'f', 0, 64),
		}
		if err := t.Append(row); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("report: tls table: %w", err)
	}
	ew.printf("%s", buf.String())
	return ew.err
}

// writeMarkdownTLS writes the endpoint table as a GitHub Markdown table.
func writeMarkdownTLS(ew *errWriter, es []TLSEndpoint) {
	ew.printf("\n### SMTP and TLS\n\n**%s**\n\n", mdEscape(tlsHeadline(es), " "))
	ew.printf("| Endpoint | Role | TLS | Certificate | Verdict | ms |\n|---|---|---|---|---|---:|\n")
	cell := func(s string) string { return mdEscape(s, " ") }
	for _, e := range es {
		tlsCell, certCell, verdictCell := tlsCells(e, true)
		ew.printf("| %s | %s | %s | %s | %s | %.0f |\n", cell(e.Endpoint()), cell(e.Role), cell(tlsCell), cell(certCell), cell(verdictCell), e.TotalMS)
	}
}
