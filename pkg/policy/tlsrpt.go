package policy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// ErrTLSRPT: the _smtp._tls record is invalid (RFC 8460 §3).
var ErrTLSRPT = errors.New("policy: invalid TLS-RPT record")

// TLSRPTRecord is a parsed _smtp._tls TXT record (RFC 8460 §3).
type TLSRPTRecord struct {
	// RUA are the report destinations, as written (mailto: or https:).
	RUA        []string `json:"rua"`
	Extensions []Tag    `json:"extensions,omitempty"`
}

// String is the canonical form of the record; parsing it gives the record
// back.
func (r *TLSRPTRecord) String() string {
	s := "v=TLSRPTv1; rua=" + strings.Join(r.RUA, ",")
	for _, e := range r.Extensions {
		s += "; " + e.Name + "=" + e.Value
	}
	return s
}

// isTLSRPTRecord is the discard test of §3: records that do not begin with
// "v=TLSRPTv1;" are ignored (as for MTA-STS, a version followed by white
// space or nothing is kept, to be reported as invalid).
func isTLSRPTRecord(txt string) bool { return startsWithVersion(txt, "v=TLSRPTv1") }

// ParseTLSRPT parses an _smtp._tls TXT record by the grammar of RFC 8460
// §3:
//
//	tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//	field-delim      = *WSP ";" *WSP
//	tlsrpt-field     = tlsrpt-rua / tlsrpt-extension
//	tlsrpt-version   = %s"v=TLSRPTv1"
//	tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//	tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
//
// rua is required and may occur once. Each URI must parse (RFC 3986) with
// the scheme mailto or https, the two §3 defines; commas, "!" and ";"
// inside a URI must be %-encoded, so a raw "!" is an error. It never
// panics.
func ParseTLSRPT(txt string) (*TLSRPTRecord, error) {
	rest, ok := strings.CutPrefix(txt, "v=TLSRPTv1")
	if !ok {
		return nil, fmt.Errorf("%w: it must start with v=TLSRPTv1", ErrTLSRPT)
	}
	fields := strings.Split(rest, ";")
	if strings.Trim(fields[0], " \t") != "" {
		return nil, fmt.Errorf("%w: v=TLSRPTv1 must be followed by \";\"", ErrTLSRPT)
	}
	fields = fields[1:]
	rec := &TLSRPTRecord{}
	seen := map[string]bool{}
	for i, f := range fields {
		f = strings.Trim(f, " \t")
		if f == "" {
			if i == len(fields)-1 && i > 0 {
				break
			}
			return nil, fmt.Errorf("%w: empty field", ErrTLSRPT)
		}
		name, value, ok := strings.Cut(f, "=")
		if !ok || !validExtName(name) {
			return nil, fmt.Errorf("%w: %q is not name=value (RFC 8460 §3)", ErrTLSRPT, abbreviate(f, 60))
		}
		if seen[name] || name == "v" {
			return nil, fmt.Errorf("%w: %s= occurs twice", ErrTLSRPT, name)
		}
		seen[name] = true
		if name != "rua" {
			if !validExtValue(value) {
				return nil, fmt.Errorf("%w: %q is not name=value (RFC 8460 §3)", ErrTLSRPT, abbreviate(f, 60))
			}
			rec.Extensions = append(rec.Extensions, Tag{Name: name, Value: value})
			continue
		}
		for _, u := range strings.Split(value, ",") {
			u = strings.Trim(u, " \t")
			if err := checkTLSRPTURI(u); err != nil {
				return nil, fmt.Errorf("%w: rua %q: %v", ErrTLSRPT, abbreviate(u, 60), err)
			}
			rec.RUA = append(rec.RUA, u)
		}
	}
	if len(rec.RUA) == 0 {
		return nil, fmt.Errorf("%w: the rua field is missing", ErrTLSRPT)
	}
	return rec, nil
}

func checkTLSRPTURI(u string) error {
	if u == "" {
		return errors.New("empty URI")
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 0x7f || c == '!' {
			return fmt.Errorf("the character %q must be %%-encoded", c)
		}
	}
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	switch strings.ToLower(pu.Scheme) {
	case "mailto":
		addr := pu.Opaque
		if at := strings.LastIndexByte(addr, '@'); at <= 0 || at == len(addr)-1 {
			return errors.New("mailto: needs mailbox@domain")
		}
	case "https":
		if pu.Host == "" {
			return errors.New("https: URI without a host")
		}
	default:
		return fmt.Errorf("scheme %q: RFC 8460 §3 defines mailto and https", pu.Scheme)
	}
	return nil
}

// TLSRPT is what the TLS-RPT check found.
type TLSRPT struct {
	RecordName string        `json:"record_name"`
	TXT        []string      `json:"txt,omitempty"`
	Records    []string      `json:"records,omitempty"`
	Record     *TLSRPTRecord `json:"record,omitempty"`
	ParseError string        `json:"parse_error,omitempty"`
	Outcome    string        `json:"outcome,omitempty"`
	Err        string        `json:"error,omitempty"`
}

func lookupTLSRPT(ctx context.Context, r Resolver, domain string) *TLSRPT {
	t := &TLSRPT{RecordName: "_smtp._tls." + domain}
	tr := lookupTXT(ctx, r, t.RecordName)
	t.TXT, t.Outcome = tr.Records, string(tr.Outcome)
	if tr.Err != nil {
		t.Err = tr.Err.Error()
		return t
	}
	for _, s := range tr.Records {
		if isTLSRPTRecord(s) {
			t.Records = append(t.Records, s)
		}
	}
	if len(t.Records) == 1 {
		rec, err := ParseTLSRPT(t.Records[0])
		t.Record = rec
		if err != nil {
			t.ParseError = err.Error()
		}
	}
	return t
}

func tlsrptFindings(domain string, t *TLSRPT, sts *MTASTS) []report.Finding {
	f := report.Finding{ID: IDTLSRPTPresent, Subject: domain, Evidence: map[string]any{"name": t.RecordName, "txt": t.TXT, "outcome": t.Outcome}}
	example := zoneLine(t.RecordName, "TXT", quoteTXT("v=TLSRPTv1; rua=mailto:tls-reports@"+domain))
	switch {
	case t.Err != "":
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("Could not look up %s TXT: %s", t.RecordName, t.Err)
	case len(t.Records) == 0:
		f.Status = report.StatusInfo
		f.Message = fmt.Sprintf("No TLS-RPT record at %s: senders send no reports about TLS failures (RFC 8460); recommended with MTA-STS or DANE", t.RecordName)
		f.Remediation = "Publish " + example + "."
		if sts.active() && sts.Policy.Mode == "testing" {
			// Testing mode exists to collect these reports (RFC 8461 §5);
			// without a destination it achieves nothing.
			f.Status = report.StatusWarn
			f.Message = fmt.Sprintf("No TLS-RPT record at %s while the MTA-STS policy is in testing mode: testing mode only produces TLS-RPT reports (RFC 8461 §5), so nobody learns whether enforcing would break delivery", t.RecordName)
		} else if sts.active() {
			f.Message = fmt.Sprintf("No TLS-RPT record at %s: with MTA-STS in enforce mode, nobody is told when senders refuse delivery over a TLS or MX-matching failure (RFC 8460)", t.RecordName)
		}
	case len(t.Records) > 1:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("%s has %d TLS-RPT records: senders treat the domain as having none (RFC 8460 §3)", t.RecordName, len(t.Records))
		f.Remediation = "Keep one v=TLSRPTv1 record (one rua may list several destinations, comma-separated) and delete the others."
		f.Evidence["records"] = t.Records
	case t.ParseError != "":
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("The TLS-RPT record at %s is invalid (%s): senders ignore it", t.RecordName, strings.TrimPrefix(t.ParseError, ErrTLSRPT.Error()+": "))
		f.Remediation = "Publish a record such as " + example + "."
		f.Evidence["record"] = t.Records[0]
	default:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("TLS-RPT record at %s: reports go to %s", t.RecordName, strings.Join(t.Record.RUA, ", "))
		f.Evidence["record"] = t.Records[0]
		f.Evidence["rua"] = t.Record.RUA
	}
	return []report.Finding{f}
}
