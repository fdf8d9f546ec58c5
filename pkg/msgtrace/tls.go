package msgtrace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// oldTLS reports a TLS version RFC 8996 deprecated (TLS 1.0, 1.1, and every
// SSL version), in the spellings MTAs write: "TLSv1", "TLSv1.1", "TLS1_0",
// "TLS1.1", "SSLv3".
func oldTLS(v string) bool {
	s := strings.ToLower(strings.NewReplacer("_", ".", "v", "").Replace(v))
	return strings.HasPrefix(s, "ssl") || s == "tls1" || s == "tls1.0" || s == "tls1.1"
}

// tlsFindings is trace.tls-hops: one warn per hop that travelled in plain
// text (or on a deprecated TLS version), else one pass or info.
func tlsFindings(t *Trace, subject string) []report.Finding {
	var out []report.Finding
	var tlsHops, unknown, local []int
	for _, h := range t.Hops {
		switch h.Transport {
		case TransportLocal:
			local = append(local, h.Index)
			continue
		case TransportUnknown:
			unknown = append(unknown, h.Index)
			continue
		case TransportTLS:
			tlsHops = append(tlsHops, h.Index)
			if !oldTLS(h.TLSVersion) {
				continue
			}
			out = append(out, report.Finding{ID: IDTLSHops, Status: report.StatusWarn, Subject: fmt.Sprintf("hop %d %s", h.Index, hopName(h)),
				Message: fmt.Sprintf("Hop %d (%s) used %s, which RFC 8996 deprecates", h.Index, hopName(h), h.TLSVersion),
				Remediation: fmt.Sprintf("Enable TLS 1.2 or 1.3 on %s and on the host that sent to it%s.",
					orUnknown(h.By), gatewayNote(h)),
				Evidence: map[string]any{"hop": h.Index, "with": h.With, "tls_version": h.TLSVersion, "tls_cipher": h.TLSCipher, "received": h.Raw}})
			continue
		}
		// Plain: the hop names an SMTP protocol and no TLS.
		msg := fmt.Sprintf("Hop %d (%s) used %s without TLS: the message crossed that link in plain text", h.Index, hopName(h), h.With)
		if strings.HasSuffix(strings.ToLower(firstWord(h.With)), "a") {
			msg += ", after an authentication whose credentials crossed it too"
		}
		if ip, err := netip.ParseAddr(h.FromIP); err == nil && ip.IsLoopback() {
			msg += fmt.Sprintf(" (the sender is the loopback address %s: if this is a content filter handing mail back on the same machine, nothing left it)", h.FromIP)
		}
		out = append(out, report.Finding{ID: IDTLSHops, Status: report.StatusWarn, Subject: fmt.Sprintf("hop %d %s", h.Index, hopName(h)),
			Message: msg,
			Remediation: fmt.Sprintf("Offer STARTTLS on %s and make %s use it (Postfix smtp_tls_security_level = may or encrypt; an Exchange Online connector with TLS required)%s.",
				orUnknown(h.By), orUnknown(hopFrom(h)), gatewayNote(h)),
			Evidence: map[string]any{"hop": h.Index, "with": h.With, "received": h.Raw}})
	}
	if len(out) > 0 {
		return out
	}
	ev := map[string]any{"tls_hops": tlsHops, "unstated_hops": unknown, "local_hops": local, "hops": hopTable(t.Hops)}
	if len(tlsHops) == 0 {
		return []report.Finding{{ID: IDTLSHops, Status: report.StatusInfo, Subject: subject,
			Message:  fmt.Sprintf("None of the %d hops states whether it used TLS", len(t.Hops)),
			Evidence: ev}}
	}
	msg := fmt.Sprintf("Every hop that states its protocol used TLS (%d of %d hops)", len(tlsHops), len(t.Hops))
	if n := len(unknown) + len(local); n > 0 {
		msg += fmt.Sprintf("; %d say nothing about it or stayed on one host", n)
	}
	return []report.Finding{{ID: IDTLSHops, Status: report.StatusPass, Subject: subject, Message: msg, Evidence: ev}}
}

func gatewayNote(h Hop) string {
	if h.Gateway {
		return "; this hop is the gateway's, so the setting is in the gateway's TLS or delivery policy"
	}
	if h.Mailbox {
		return "; this hop is the mail platform's (for Exchange Online: the connector to or from the gateway)"
	}
	return ""
}
