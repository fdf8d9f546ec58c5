package mx

import (
	"fmt"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// gatewayFindings judges the MX set against the gateway profile: mx.at-gateway
// says whether the MX points at the gateway, mx.bypass-mx names every MX host
// outside it (a sender that picks such a host skips the gateway's filtering).
func gatewayFindings(domain string, hosts []Host, opt Options) []report.Finding {
	p := opt.Profile
	if len(p.MXHosts) == 0 {
		return []report.Finding{{ID: IDAtGateway, Status: report.StatusError, Subject: domain,
			Message:  fmt.Sprintf("Profile %s lists no MX host names, so mfcheck cannot tell whether the MX points at the gateway", p.ID),
			Evidence: map[string]any{"profile": p.ID, "mx": mxStrings(hosts)}}}
	}
	uncertain := p.FieldUncertain("mx_hosts")
	var at, outside []Host
	matched := map[string]string{}
	for _, h := range hosts {
		if pat, ok := p.MatchMX(trimDot(h.Name)); ok {
			at = append(at, h)
			matched[trimDot(h.Name)] = pat
		} else {
			outside = append(outside, h)
		}
	}
	ev := map[string]any{"profile": p.ID, "profile_mx": p.MXHosts, "mx": mxStrings(hosts), "matched": matched}
	if uncertain {
		ev["profile_mx_unverified"] = true
	}
	caveat := ""
	if uncertain {
		caveat = " (the profile's MX names are unverified: confirm them in the gateway's console)"
	}
	var out []report.Finding
	switch {
	case len(outside) == 0:
		out = append(out, report.Finding{ID: IDAtGateway, Status: report.StatusPass, Subject: domain,
			Message:  fmt.Sprintf("All %s point at %s%s", plural(len(hosts), "MX host"), p.Name, caveat),
			Evidence: ev})
	case len(at) == 0:
		f := report.Finding{ID: IDAtGateway, Status: report.StatusFail, Subject: domain,
			Message:     fmt.Sprintf("No MX host points at %s%s", p.Name, caveat),
			Remediation: fmt.Sprintf("Point the MX records at the gateway: %s", strings.Join(p.MXHosts, ", ")),
			Evidence:    ev}
		if opt.Mode == ModeReadiness {
			// Before the cutover the MX is expected to point elsewhere.
			f.Status = report.StatusInfo
			f.Message = fmt.Sprintf("The MX does not point at %s yet, as expected before the cutover%s", p.Name, caveat)
			f.Remediation = fmt.Sprintf("At cutover, replace the MX records with: %s", strings.Join(p.MXHosts, ", "))
		}
		out = append(out, f)
	default:
		f := report.Finding{ID: IDAtGateway, Status: report.StatusFail, Subject: domain,
			Message: fmt.Sprintf("%d of %d MX hosts point at %s; the others bypass it%s",
				len(at), len(hosts), p.Name, caveat),
			Remediation: "Remove the MX records that do not belong to the gateway",
			Evidence:    ev}
		if opt.Mode == ModeReadiness {
			f.Status = report.StatusWarn
		}
		out = append(out, f)
	}
	if len(at) == 0 {
		// Nothing is behind the gateway yet, so nothing bypasses it.
		return out
	}
	for _, h := range outside {
		who := ""
		if h.Platform != "" {
			who = fmt.Sprintf(" (%s)", h.Platform)
		}
		st := report.StatusFail
		if opt.Mode == ModeReadiness {
			st = report.StatusWarn
		}
		out = append(out, report.Finding{ID: IDBypassMX, Status: st, Subject: trimDot(h.Name),
			Message: fmt.Sprintf("MX %s%s at preference %d is outside %s: senders that use it skip the gateway's filtering",
				trimDot(h.Name), who, h.Preference, p.Name),
			Remediation: fmt.Sprintf("Delete the MX record \"%d %s\" once mail flows through the gateway", h.Preference, h.Name),
			Evidence:    map[string]any{"mx": fmt.Sprintf("%d %s", h.Preference, h.Name), "platform": h.Platform, "profile": p.ID}})
	}
	return out
}
