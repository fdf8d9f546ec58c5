package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/net/publicsuffix"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// DMARC is what policy discovery (RFC 7489 §6.6.3) found for a domain.
type DMARC struct {
	Domain    string `json:"domain"`
	OrgDomain string `json:"org_domain"`
	// RecordName is the name whose record applies (_dmarc.<domain> or
	// _dmarc.<org domain>); Inherited is true for the latter.
	RecordName string `json:"record_name,omitempty"`
	Inherited  bool   `json:"inherited"`
	// Asked lists the names asked, in order, with what each returned.
	Asked []DMARCLookup `json:"asked"`
	// Records are the DMARC records (v=DMARC1 first) at RecordName; more
	// than one means none applies (§6.6.3 step 5).
	Records []string `json:"records,omitempty"`
	// Record is the parsed record when there is exactly one; ParseError is
	// set when it is invalid (Record then holds what could be read).
	Record     *DMARCRecord `json:"record,omitempty"`
	ParseError string       `json:"parse_error,omitempty"`
	// Effective is the policy receivers apply to mail From the domain:
	// sp (or p) of an inherited record, p of its own, "none" for an invalid
	// record with a valid rua (§6.6.3 step 6), "" when no DMARC applies.
	Effective string `json:"effective_policy,omitempty"`
	// Reports are the authorization checks of external report destinations
	// (§7.1).
	Reports []ReportAuthorization `json:"report_authorization,omitempty"`
	// Err is set when discovery could not finish (a lookup failed).
	Err string `json:"error,omitempty"`
}

// DMARCLookup is one TXT question of policy discovery.
type DMARCLookup struct {
	Name    string   `json:"name"`
	Outcome string   `json:"outcome"`
	TXT     []string `json:"txt,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// ReportAuthorization is the check of one external report destination:
// the TXT at <policy domain>._report._dmarc.<destination host> must hold a
// record that starts with v=DMARC1 (RFC 7489 §7.1).
type ReportAuthorization struct {
	Host       string   `json:"host"`
	URIs       []string `json:"uris"`
	Name       string   `json:"name"`
	Authorized bool     `json:"authorized"`
	TXT        []string `json:"txt,omitempty"`
	Outcome    string   `json:"outcome,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// OrganizationalDomain is the registered domain of name: the public suffix
// plus one label (RFC 7489 §3.2), from the Public Suffix List compiled into
// golang.org/x/net/publicsuffix. A name that is itself a public suffix (or
// has no registrable part) is its own organizational domain. Names are
// compared lower case, without the trailing dot.
//
// This is RFC 7489's definition; DMARCbis replaces it with a DNS tree walk,
// which mfcheck does not implement yet.
func OrganizationalDomain(name string) string {
	n := normalizeDomain(name)
	if org, err := publicsuffix.EffectiveTLDPlusOne(n); err == nil {
		return org
	}
	return n
}

func analyzeDMARC(ctx context.Context, r Resolver, domain string) (*DMARC, []report.Finding) {
	d := discoverDMARC(ctx, r, domain)
	var out []report.Finding
	out = append(out, dmarcPresent(d))
	if d.Record == nil || len(d.Records) != 1 {
		return d, out
	}
	out = append(out, dmarcPolicy(d)...)
	d.Reports = authorizeReports(ctx, r, d)
	out = append(out, dmarcReports(d)...)
	return d, out
}

// isDMARCRecord is the test of §6.6.3 step 2: the record starts with a v
// tag naming the current version.
func isDMARCRecord(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(first, "=")
	return ok && strings.TrimSpace(name) == "v" && trimFWS(value) == "DMARC1"
}

func discoverDMARC(ctx context.Context, r Resolver, domain string) *DMARC {
	d := &DMARC{Domain: domain, OrgDomain: OrganizationalDomain(domain)}
	names := []string{"_dmarc." + domain}
	if d.OrgDomain != domain {
		names = append(names, "_dmarc."+d.OrgDomain)
	}
	for i, name := range names {
		tr := lookupTXT(ctx, r, name)
		l := DMARCLookup{Name: name, Outcome: string(tr.Outcome), TXT: tr.Records}
		if tr.Err != nil {
			l.Error = tr.Err.Error()
			d.Asked = append(d.Asked, l)
			// A failed question is not an empty answer: falling back to
			// the organizational domain would report a policy receivers
			// may not apply.
			d.Err = fmt.Sprintf("looking up %s TXT: %v", name, tr.Err)
			return d
		}
		d.Asked = append(d.Asked, l)
		var recs []string
		for _, t := range tr.Records {
			if isDMARCRecord(t) {
				recs = append(recs, t)
			}
		}
		if len(recs) == 0 {
			continue // step 3: try the organizational domain
		}
		d.RecordName, d.Inherited, d.Records = name, i > 0, recs
		break
	}
	if len(d.Records) != 1 {
		return d
	}
	rec, err := ParseDMARC(d.Records[0])
	d.Record = rec
	if err != nil {
		d.ParseError = err.Error()
	}
	switch {
	case rec == nil:
	case err != nil && rec.HasValidRUA():
		d.Effective = "none" // §6.6.3 step 6
	case err != nil:
	case d.Inherited && rec.SubdomainPolicy != "":
		d.Effective = rec.SubdomainPolicy
	default:
		d.Effective = rec.Policy
	}
	return d
}

// recordDomain is the domain whose _dmarc record applies.
func (d *DMARC) recordDomain() string { return strings.TrimPrefix(d.RecordName, "_dmarc.") }

func dmarcPresent(d *DMARC) report.Finding {
	f := report.Finding{ID: IDDMARCPresent, Subject: d.Domain, Evidence: map[string]any{"lookups": d.Asked}}
	example := fmt.Sprintf("v=DMARC1; p=none; rua=mailto:dmarc-reports@%s", d.OrgDomain)
	switch {
	case d.Err != "":
		f.Status = report.StatusError
		f.Message = "Could not look up the DMARC record: " + d.Err
	case len(d.Records) == 0:
		f.Status = report.StatusFail
		where := "_dmarc." + d.Domain
		if d.OrgDomain != d.Domain {
			where += " nor at _dmarc." + d.OrgDomain + " (the organizational domain)"
		}
		f.Message = "No DMARC record at " + where + ": receivers apply no DMARC policy, so anyone can send mail From " + d.Domain + " and reports never arrive"
		f.Remediation = "Publish " + zoneLine("_dmarc."+d.Domain, "TXT", quoteTXT(example)) + " and, once the aggregate reports show that all legitimate mail (through the gateway too) passes, move to p=quarantine and then p=reject."
	case len(d.Records) > 1:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("%s has %d DMARC records: receivers apply none of them (RFC 7489 §6.6.3 step 5)", d.RecordName, len(d.Records))
		f.Remediation = "Delete all but one of the v=DMARC1 TXT records at " + d.RecordName + " (merge their tags into it)."
		f.Evidence["records"] = d.Records
	case d.Inherited:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("%s has no DMARC record of its own; the organizational domain's record at %s applies (RFC 7489 §6.6.3): %s", d.Domain, d.RecordName, abbreviate(d.Records[0], 200))
		f.Evidence["record"] = d.Records[0]
		f.Evidence["record_name"] = d.RecordName
	default:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("DMARC record at %s: %s", d.RecordName, abbreviate(d.Records[0], 200))
		f.Evidence["record"] = d.Records[0]
		f.Evidence["record_name"] = d.RecordName
	}
	return f
}

// weaker is the policy applied to the share of failing mail that pct leaves
// out (RFC 7489 §6.6.4).
var weaker = map[string]string{"reject": "quarantine", "quarantine": "none", "none": "none"}

var strength = map[string]int{"none": 0, "quarantine": 1, "reject": 2}

func dmarcPolicy(d *DMARC) []report.Finding {
	rec := d.Record
	ev := map[string]any{"record": d.Records[0], "record_name": d.RecordName, "tags": rec.Tags}
	f := report.Finding{ID: IDDMARCPolicy, Subject: d.Domain, Evidence: ev}
	if d.ParseError != "" {
		f.Status = report.StatusFail
		treat := "receivers apply no DMARC at all (RFC 7489 §6.6.3 step 6)"
		if d.Effective == "none" {
			treat = "receivers act as if it said p=none because its rua is valid (RFC 7489 §6.6.3 step 6)"
		}
		f.Message = fmt.Sprintf("The DMARC record at %s is invalid (%s): %s", d.RecordName, strings.TrimPrefix(d.ParseError, ErrDMARCSyntax.Error()+": "), treat)
		fix := []Tag{{"v", "DMARC1"}, {"p", "none"}}
		if v, ok := tagValue(rec.Tags, "rua"); ok {
			fix = append(fix, Tag{"rua", v})
		}
		f.Remediation = "Correct the record as RFC 7489 §6.3 describes; a minimal valid one is " + zoneLine(d.RecordName, "TXT", quoteTXT(formatTags(fix))) + "."
		return []report.Finding{f}
	}
	ev["effective_policy"] = d.Effective
	ev["pct"] = rec.EffectivePercent()
	which := "p=" + rec.Policy
	if d.Inherited {
		which = "the organizational domain's p=" + rec.Policy
		if rec.SubdomainPolicy != "" {
			which = "the organizational domain's sp=" + rec.SubdomainPolicy
		}
	}
	var out []report.Finding
	switch d.Effective {
	case "none":
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("%s applies to %s: monitoring only; receivers deliver mail that fails DMARC as if there were no policy, so spoofed mail From %s is not stopped", which, d.Domain, d.Domain)
		f.Remediation = fmt.Sprintf("Once the aggregate reports show that all legitimate mail passes (the gateway's outbound relay included), publish %s, and later p=reject.", zoneLine(d.RecordName, "TXT", quoteTXT(replaceTag(rec.Tags, "p", "quarantine"))))
	default:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("%s applies to %s: receivers %s mail that fails DMARC", which, d.Domain, map[string]string{"quarantine": "treat as suspicious (spam folder)", "reject": "refuse"}[d.Effective])
	}
	out = append(out, f)

	if pct := rec.EffectivePercent(); pct < 100 && d.Effective != "none" {
		out = append(out, report.Finding{ID: IDDMARCPolicy, Status: report.StatusWarn, Subject: d.Domain,
			Message: fmt.Sprintf("pct=%d: p=%s applies to only %d%% of the mail that fails DMARC; the other %d%% gets p=%s (RFC 7489 §6.6.4)",
				pct, d.Effective, pct, 100-pct, weaker[d.Effective]),
			Remediation: "Raise pct to 100 (or remove the tag; 100 is the default) when the reports show no legitimate failures: " + zoneLine(d.RecordName, "TXT", quoteTXT(removeTag(rec.Tags, "pct"))) + ".",
			Evidence:    map[string]any{"record": d.Records[0], "pct": pct}})
	}
	if !d.Inherited && rec.SubdomainPolicy != "" && strength[rec.SubdomainPolicy] < strength[rec.Policy] {
		out = append(out, report.Finding{ID: IDDMARCPolicy, Status: report.StatusWarn, Subject: d.Domain,
			Message: fmt.Sprintf("sp=%s is weaker than p=%s: mail From any subdomain of %s without a DMARC record of its own (including invented ones) gets p=%s",
				rec.SubdomainPolicy, rec.Policy, d.Domain, rec.SubdomainPolicy),
			Remediation: fmt.Sprintf("Remove sp (subdomains then get p=%s) or publish a record at _dmarc.<subdomain> for a subdomain that needs a weaker policy: %s.",
				rec.Policy, zoneLine(d.RecordName, "TXT", quoteTXT(removeTag(rec.Tags, "sp")))),
			Evidence: map[string]any{"record": d.Records[0], "p": rec.Policy, "sp": rec.SubdomainPolicy}})
	}
	return out
}

func replaceTag(tags []Tag, name, value string) string {
	out := make([]Tag, len(tags))
	copy(out, tags)
	for i := range out {
		if out[i].Name == name {
			out[i].Value = value
		}
	}
	return formatTags(out)
}

func removeTag(tags []Tag, name string) string {
	var out []Tag
	for _, t := range tags {
		if t.Name != name {
			out = append(out, t)
		}
	}
	return formatTags(out)
}

// authorizeReports checks every report destination outside the policy
// domain's organizational domain (RFC 7489 §7.1), one lookup per host, all
// at once.
func authorizeReports(ctx context.Context, r Resolver, d *DMARC) []ReportAuthorization {
	policyDomain := d.recordDomain()
	own := OrganizationalDomain(policyDomain)
	byHost := map[string]*ReportAuthorization{}
	var hosts []string
	for _, u := range append(append([]ReportURI(nil), d.Record.RUA...), d.Record.RUF...) {
		if u.Err != "" || u.Host == "" || OrganizationalDomain(u.Host) == own {
			continue
		}
		a := byHost[u.Host]
		if a == nil {
			// §7.1 step 3: the domain the policy was retrieved from, then
			// _report._dmarc, then the destination host.
			a = &ReportAuthorization{Host: u.Host, Name: policyDomain + "._report._dmarc." + u.Host}
			byHost[u.Host] = a
			hosts = append(hosts, u.Host)
		}
		if !contains(a.URIs, u.URI) {
			a.URIs = append(a.URIs, u.URI)
		}
	}
	sort.Strings(hosts)
	var wg sync.WaitGroup
	for _, h := range hosts {
		a := byHost[h]
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := lookupTXT(ctx, r, a.Name)
			a.TXT, a.Outcome = tr.Records, string(tr.Outcome)
			if tr.Err != nil {
				a.Error = tr.Err.Error()
				if badName(tr.Err) {
					a.Error = "the destination is not a valid domain name: " + tr.Err.Error()
				}
				return
			}
			for _, t := range tr.Records {
				// "a TXT record that starts with v=DMARC1" (§7.1); its
				// other tags (a rua override) do not matter here.
				if isDMARCRecord(t) {
					a.Authorized = true
				}
			}
		}()
	}
	wg.Wait()
	out := make([]ReportAuthorization, len(hosts))
	for i, h := range hosts {
		out[i] = *byHost[h]
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func dmarcReports(d *DMARC) []report.Finding {
	rec := d.Record
	var out []report.Finding
	if len(rec.RUA) == 0 {
		// Warn, not info: aggregate reports are the only way a domain owner
		// learns which senders fail DMARC. Before a cutover they show
		// whether the gateway's outbound mail aligns; without them p=none
		// achieves nothing and p=reject loses legitimate mail unseen.
		out = append(out, report.Finding{ID: IDDMARCRUAAuthorization, Status: report.StatusWarn, Subject: d.Domain,
			Message:     fmt.Sprintf("The DMARC record at %s has no rua: nobody receives aggregate reports, so failures of legitimate mail (a gateway that breaks alignment, a forgotten sender) stay invisible", d.RecordName),
			Remediation: fmt.Sprintf("Add rua=mailto:<mailbox>@%s (or a reporting service's address, which must authorize it): %s.", d.OrgDomain, zoneLine(d.RecordName, "TXT", quoteTXT(formatTags(append(append([]Tag(nil), rec.Tags...), Tag{"rua", "mailto:dmarc-reports@" + d.OrgDomain}))))),
			Evidence:    map[string]any{"record": d.Records[0]}})
	}
	var bad, internal []string
	own := OrganizationalDomain(d.recordDomain())
	for _, u := range append(append([]ReportURI(nil), rec.RUA...), rec.RUF...) {
		switch {
		case u.Err != "":
			bad = append(bad, u.URI+": "+u.Err)
		case u.Host != "" && OrganizationalDomain(u.Host) == own:
			internal = append(internal, u.URI)
		}
	}
	if len(bad) > 0 {
		out = append(out, report.Finding{ID: IDDMARCRUAAuthorization, Status: report.StatusWarn, Subject: d.Domain,
			Message:     fmt.Sprintf("%d report URI(s) of %s are invalid and are skipped by receivers: %s", len(bad), d.RecordName, strings.Join(bad, "; ")),
			Remediation: "Write each destination as mailto:mailbox@domain, optionally followed by !<size> such as !10m; separate them by commas (RFC 7489 §6.4).",
			Evidence:    map[string]any{"invalid": bad}})
	}
	if len(internal) > 0 {
		out = append(out, report.Finding{ID: IDDMARCRUAAuthorization, Status: report.StatusPass, Subject: d.Domain,
			Message:  fmt.Sprintf("%d report destination(s) are in %s itself and need no authorization: %s", len(internal), own, strings.Join(internal, ", ")),
			Evidence: map[string]any{"uris": internal}})
	}
	for _, a := range d.Reports {
		f := report.Finding{ID: IDDMARCRUAAuthorization, Subject: a.Name,
			Evidence: map[string]any{"destination": a.Host, "uris": a.URIs, "query": a.Name + " TXT", "outcome": a.Outcome, "txt": a.TXT}}
		switch {
		case a.Error != "" && !strings.HasPrefix(a.Error, "the destination is not"):
			f.Status = report.StatusError
			f.Message = fmt.Sprintf("Could not check whether %s accepts DMARC reports for %s: %s", a.Host, d.recordDomain(), a.Error)
		case a.Authorized:
			f.Status = report.StatusPass
			f.Message = fmt.Sprintf("%s accepts DMARC reports for %s: %s has a v=DMARC1 record (RFC 7489 §7.1)", a.Host, d.recordDomain(), a.Name)
		default:
			f.Status = report.StatusFail
			what := "no TXT record"
			if a.Error != "" {
				what = a.Error
			} else if len(a.TXT) > 0 {
				what = "TXT records, none starting with v=DMARC1"
			}
			f.Message = fmt.Sprintf("%s has not authorized reports for %s (%s has %s): receivers send nothing to %s (RFC 7489 §7.1)", a.Host, d.recordDomain(), a.Name, what, strings.Join(a.URIs, ", "))
			f.Remediation = fmt.Sprintf("The operator of %s must publish %s (reporting services do this when the domain is added to the account); or send the reports to a mailbox in %s.", a.Host, zoneLine(a.Name, "TXT", `"v=DMARC1"`), own)
		}
		out = append(out, f)
	}
	return out
}
