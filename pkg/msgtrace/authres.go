package msgtrace

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// AuthResult is one method result of an Authentication-Results field
// (RFC 8601 §2.2: "method=result ptype.property=value ...").
type AuthResult struct {
	// AuthServID is the authserv-id of the field (RFC 8601 §2.5), the
	// server that wrote it; "" when the field has none (Exchange Online
	// writes its results without one).
	AuthServID string `json:"authserv_id"`
	// Header is the field's position, 1 for the topmost (the last added).
	Header int    `json:"header"`
	Method string `json:"method"`
	Result string `json:"result"`
	// Props are the properties ("smtp.mailfrom", "header.d", "header.from")
	// and other key=value pairs ("reason", "action"), keys lower case.
	Props map[string]string `json:"props,omitempty"`
	// Trusted marks results of the trusted authserv-id (Options.AuthServID,
	// or the topmost field's when none was given).
	Trusted bool `json:"trusted"`
	// Raw is the method's clause as written, comments removed.
	Raw string `json:"raw"`
}

// authHeader is one Authentication-Results field in evidence.
type authHeader struct {
	Index      int    `json:"header"`
	AuthServID string `json:"authserv_id"`
	Trusted    bool   `json:"trusted"`
	Raw        string `json:"raw"`
	Error      string `json:"parse_error,omitempty"`
}

// maxAuthResults bounds the results kept from all fields together.
const maxAuthResults = 200

// ParseAuthResults parses one Authentication-Results value with
// go-msgauth's authres.Parse. Comments are removed first, since authres
// does not skip them and they hold ';' and '=' in real fields ("(sender IP
// is 192.0.2.1)"). A field with no authserv-id, as Exchange Online writes
// ("spf=pass (...) smtp.mailfrom=x; dkim=..."), is read with an empty one.
// On a parse error the results read before it are returned with it.
func ParseAuthResults(value string) (authServID string, results []AuthResult, err error) {
	v := strings.TrimSpace(stripComments(value))
	first, _, _ := strings.Cut(v, ";")
	if strings.Contains(first, "=") {
		v = ";" + v // no authserv-id: the first clause is a result
	}
	id, res, err := authres.Parse(v)
	// authres returns the results of the clauses it kept, in order: the
	// non-empty clauses whose first word is not "none" (RFC 8601 §2.2's
	// no-result). Walk the same clauses for the raw text and every key=value,
	// including the ones authres's typed results drop (header.s, action).
	var clauses []string
	for i, c := range strings.Split(v, ";") {
		if i == 0 {
			continue
		}
		c = strings.TrimSpace(c)
		if f := strings.Fields(c); len(f) == 0 || f[0] == "none" {
			continue
		}
		clauses = append(clauses, c)
	}
	for i, r := range res {
		ar := AuthResult{AuthServID: id}
		ar.Method, ar.Result = methodResult(r)
		if i < len(clauses) {
			ar.Raw = abbreviate(strings.Join(strings.Fields(clauses[i]), " "), 512)
			ar.Props = clauseProps(clauses[i])
		}
		results = append(results, ar)
	}
	return id, results, err
}

// methodResult names an authres.Result's method and value.
func methodResult(r authres.Result) (method, result string) {
	switch r := r.(type) {
	case *authres.SPFResult:
		return "spf", string(r.Value)
	case *authres.DKIMResult:
		return "dkim", string(r.Value)
	case *authres.DMARCResult:
		return "dmarc", string(r.Value)
	case *authres.ARCResult:
		return "arc", string(r.Value)
	case *authres.AuthResult:
		return "auth", string(r.Value)
	case *authres.IPRevResult:
		return "iprev", string(r.Value)
	case *authres.SenderIDResult:
		return "sender-id", string(r.Value)
	case *authres.DomainKeysResult:
		return "domainkeys", string(r.Value)
	case *authres.GenericResult:
		return r.Method, string(r.Value)
	}
	return "unknown", ""
}

func clauseProps(c string) map[string]string {
	f := strings.Fields(c)
	if len(f) < 2 {
		return nil
	}
	props := map[string]string{}
	for _, w := range f[1:] {
		if k, v, ok := strings.Cut(w, "="); ok && k != "" && len(props) < 32 {
			props[strings.ToLower(k)] = v
		}
	}
	if len(props) == 0 {
		return nil
	}
	return props
}

// authResultsFinding parses every Authentication-Results value (topmost
// first) and judges the trusted ones: trace.auth-results.
func authResultsFinding(values []string, trustedID, subject string) ([]AuthResult, report.Finding) {
	f := report.Finding{ID: IDAuthResults, Subject: subject}
	var all []AuthResult
	var headers []authHeader
	for i, v := range values {
		id, res, err := ParseAuthResults(v)
		h := authHeader{Index: i + 1, AuthServID: id, Raw: abbreviate(v, 2048)}
		if err != nil {
			h.Error = err.Error()
		}
		for j := range res {
			res[j].Header = i + 1
		}
		if len(all)+len(res) > maxAuthResults {
			res = res[:max(0, maxAuthResults-len(all))]
		}
		all = append(all, res...)
		if len(headers) < maxRawEvidence {
			headers = append(headers, h)
		}
	}
	ev := map[string]any{}
	if len(headers) > 0 {
		ev["headers"] = headers
	}
	f.Evidence = ev
	if len(values) == 0 {
		f.Status = report.StatusWarn
		f.Message = "The message has no Authentication-Results field: no receiver recorded SPF, DKIM or DMARC verdicts"
		f.Remediation = "Read the message at the mailbox, after the receiving platform has added its Authentication-Results (RFC 8601); a message taken before delivery (or from a server that does not verify) has none."
		return all, f
	}

	// Which authserv-id to trust. RFC 8601 §5: a receiver trusts only the
	// fields its own border servers wrote, and removes fields claiming its
	// id that came from outside. Without a configured id, the topmost field
	// is the last one added, by the server closest to the mailbox: the best
	// guess, but a guess, and the evidence says so.
	assumed := trustedID == ""
	trust := trustedID
	if assumed && len(headers) > 0 {
		trust = headers[0].AuthServID
	}
	ev["trusted_authserv_id"] = trust
	ev["assumed"] = assumed
	var trusted []AuthResult
	for i := range all {
		if strings.EqualFold(all[i].AuthServID, trust) {
			all[i].Trusted = true
			trusted = append(trusted, all[i])
		}
	}
	for i := range headers {
		headers[i].Trusted = strings.EqualFold(headers[i].AuthServID, trust)
	}
	ev["results"] = trusted
	who := fmt.Sprintf("%q", trust)
	if trust == "" {
		who = "(no authserv-id, as Exchange Online writes)"
	}
	if assumed {
		who += " (assumed: the topmost field; set the trusted authserv-id to be sure)"
	}
	if len(trusted) == 0 {
		ids := map[string]bool{}
		for _, h := range headers {
			ids[h.AuthServID] = true
		}
		var list []string
		seen := false
		for id := range ids {
			list = append(list, fmt.Sprintf("%q", id))
			seen = seen || strings.EqualFold(id, trust)
		}
		sort.Strings(list)
		f.Status = report.StatusWarn
		if !assumed && !seen {
			f.Message = fmt.Sprintf("No Authentication-Results field from %q; the %d found are from %s and are not trusted", trust, len(values), strings.Join(list, ", "))
			f.Remediation = "Check the authserv-id the receiving platform writes (the first word of its Authentication-Results) and pass that one."
		} else {
			f.Message = fmt.Sprintf("The Authentication-Results from %s hold no result that could be read", who)
		}
		return all, f
	}

	spf, dkim, dmarc := verdict(trusted, "spf"), verdict(trusted, "dkim"), verdict(trusted, "dmarc")
	ev["spf"], ev["dkim"], ev["dmarc"] = spf, dkim, dmarc
	summary := fmt.Sprintf("spf=%s dkim=%s dmarc=%s from %s", orNone(spf), orNone(dkim), orNone(dmarc), who)
	switch {
	case dmarc == "fail":
		f.Status = report.StatusFail
		f.Message = "DMARC failed at the receiver: " + summary + "; with p=quarantine or p=reject this mail is junked or refused"
		f.Remediation = "Make the mail pass aligned SPF or aligned DKIM: if it came through the gateway, have the gateway DKIM-sign with the From domain (or leave the original signature intact: no body or subject rewriting after signing), and let the platform see the original sender (Exchange Online: Enhanced Filtering for Connectors on the gateway's inbound connector) rather than the gateway's address."
	case dmarc == "pass" && spf == "pass" && dkim == "pass":
		f.Status = report.StatusPass
		f.Message = "SPF, DKIM and DMARC passed: " + summary
	case dmarc == "pass":
		f.Status = report.StatusWarn
		f.Message = "DMARC passed, but not on both legs: " + summary + "; one more change (a rewrite by the gateway, a new sending range) would make it fail"
		f.Remediation = "With a gateway in front, SPF usually fails because the platform sees the gateway's address: turn on Enhanced Filtering for Connectors (Exchange Online) or the equivalent skip-listing, and keep the sender's DKIM signature intact through the gateway."
	default:
		f.Status = report.StatusWarn
		f.Message = "No DMARC pass at the receiver: " + summary
		f.Remediation = "Publish a DMARC record for the From domain (mfcheck check) and make the mail pass aligned SPF or DKIM; a temperror means the receiver could not look it up at the time."
	}
	return all, f
}

// verdict is the result of a method among the trusted results: for DKIM
// any passing signature is enough (RFC 7489 §4.2); for the others the first.
func verdict(rs []AuthResult, method string) string {
	v := ""
	for _, r := range rs {
		if r.Method != method {
			continue
		}
		if method == "dkim" && r.Result == "pass" {
			return "pass"
		}
		if v == "" {
			v = r.Result
		}
	}
	return v
}

func orNone(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}
