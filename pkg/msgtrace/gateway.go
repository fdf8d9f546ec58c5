package msgtrace

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// hostMatcher decides whether a host name or address belongs to a profile.
type hostMatcher struct {
	p *profile.Profile
	// lists are the profile's host pattern lists with the role each gives.
	lists []roleList
	// domains are the registered domains of the profile's host patterns
	// ("mimecast.com"): gateways name their relays after more hosts than the
	// profile lists ("relay.mimecast.com", "eu-smtp-delivery-1.mimecast.com").
	domains []string
}

type roleList struct {
	role, field string
	patterns    []string
}

// extraDomains are vendor domains whose hosts write Received fields but
// appear in none of a profile's host patterns. Exchange Online's frontends
// call themselves *.outlook.office365.com besides *.outlook.com. (This
// belongs in profiles.yaml as a "received_hosts" field; until then it
// lives here, keyed by profile ID prefix.)
var extraDomains = map[string][]string{
	"microsoft365": {"office365.com"},
}

func newMatcher(p *profile.Profile) *hostMatcher {
	if p == nil {
		return nil
	}
	m := &hostMatcher{p: p, lists: []roleList{
		{"mx", profile.KeyMXHosts, p.MXHosts},
		{"smarthost", profile.KeyOutboundSmartHosts, p.OutboundSmartHosts},
		{"smarthost", profile.KeySMTPOutboundHosts, p.SMTPOutboundHosts},
		{"journal", profile.KeyJournalHosts, p.JournalHosts},
	}}
	// Vendor domains only for built-in profiles: their host names are the
	// vendor's own (mimecast.com). A user profile may name hosts inside the
	// customer's own domain, where "anything under the same domain" would
	// make every internal server, or the cloud endpoint, the gateway.
	for _, l := range m.lists {
		for _, pat := range l.patterns {
			if d := patternDomain(pat); d != "" && p.Builtin && !slices.Contains(m.domains, d) {
				m.domains = append(m.domains, d)
			}
		}
	}
	for prefix, ds := range extraDomains {
		if strings.HasPrefix(p.ID, prefix) {
			for _, d := range ds {
				if !slices.Contains(m.domains, d) {
					m.domains = append(m.domains, d)
				}
			}
		}
	}
	return m
}

// patternDomain is the registered domain (public suffix plus one label) of
// the literal tail of a host pattern: "mimecast.com" for
// "eu-smtp-inbound-1.mimecast.com", "outlook.com" for
// "<token>.mail.protection.outlook.com". A pattern whose literal tail is a
// public suffix gives "" (it would claim a whole TLD).
func patternDomain(pat string) string {
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(pat, ".")), ".")
	i := len(labels)
	for i > 0 && !strings.ContainsAny(labels[i-1], "*?<>") {
		i--
	}
	tail := strings.Join(labels[i:], ".")
	if tail == "" {
		return ""
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(tail)
	if err != nil {
		return ""
	}
	return d
}

// matchName says how name matches: the pattern and its role, or the vendor
// domain (role "").
func (m *hostMatcher) matchName(name string) (how, role string, ok bool) {
	if m == nil || name == "" {
		return "", "", false
	}
	for _, l := range m.lists {
		for _, pat := range l.patterns {
			if profile.Match(pat, name) {
				return fmt.Sprintf("%s pattern %s", l.field, pat), l.role, true
			}
		}
	}
	n := strings.ToLower(trimName(name))
	for _, d := range m.domains {
		if n == d || strings.HasSuffix(n, "."+d) {
			return "vendor domain " + d, "", true
		}
	}
	return "", "", false
}

// matchIP reports the profile range holding ip (the stored snapshot; the
// live ranges need DNS and are the SPF check's business).
func (m *hostMatcher) matchIP(ip string) (string, bool) {
	if m == nil || ip == "" {
		return "", false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", false
	}
	for _, pfx := range m.p.IPRanges {
		if pfx.Contains(a) {
			return "range " + pfx.String(), true
		}
	}
	return "", false
}

// classify marks the gateway's and the platform's hops. A hop is the
// gateway's when the gateway received it (its By name matches) or sent it
// (the sender's address is in the gateway's ranges, or its reverse name or
// HELO name matches). The platform's hops are the ones it received.
func classify(hops []Hop, gw, mb *hostMatcher) {
	for i := range hops {
		h := &hops[i]
		if how, role, ok := gw.matchName(h.By); ok {
			h.Gateway, h.gwRole, h.gwSide = true, role, "by"
			h.GatewayMatch = "by " + h.By + " (" + how + ")"
		} else if how, ok := gw.matchIP(h.FromIP); ok {
			h.Gateway, h.gwSide = true, "from"
			h.GatewayMatch = "from address " + h.FromIP + " (" + how + ", recorded by the receiver)"
		} else if how, role, ok := gw.matchName(h.FromRDNS); ok {
			h.Gateway, h.gwRole, h.gwSide = true, role, "from"
			h.GatewayMatch = "from reverse name " + h.FromRDNS + " (" + how + ", recorded by the receiver)"
		} else if how, role, ok := gw.matchName(h.From); ok && !parseIP(h.From).IsValid() {
			h.Gateway, h.gwRole, h.gwSide = true, role, "from"
			h.GatewayMatch = "from HELO name " + h.From + " (" + how + ", as the sending host named itself)"
		}
		if how, _, ok := mb.matchName(h.By); ok {
			h.Mailbox = true
			h.MailboxMatch = "by " + h.By + " (" + how + ")"
			_, _, r := mb.matchName(h.FromRDNS)
			_, _, f := mb.matchName(h.From)
			h.mbInternal = r || f || h.Transport == TransportLocal
		}
	}
}

// gatewayFinding is trace.gateway-hop.
func gatewayFinding(t *Trace, o Options, subject string) report.Finding {
	gw, mb := newMatcher(o.Profile), newMatcher(o.Mailbox)
	classify(t.Hops, gw, mb)
	ev := map[string]any{"hops": hopTable(t.Hops), "received": hopsRaw(t.Hops), "received_count": t.ReceivedCount}
	if total, ok := transit(t.Hops); ok {
		ev["transit_s"] = total
	}
	f := report.Finding{ID: IDGatewayHop, Subject: subject, Evidence: ev}
	if o.Profile == nil {
		f.Status = report.StatusInfo
		f.Message = fmt.Sprintf("No gateway profile given: the %d hops are listed but none is judged as the gateway", len(t.Hops))
		f.Remediation = "Run with --profile <gateway> (e.g. mimecast-eu) to check that the message passed the gateway."
		return f
	}
	ev["profile"] = o.Profile.ID
	if len(t.Hops) == 0 {
		f.Status = report.StatusFail
		f.Message = "The message has no Received fields, so nothing shows it passed " + o.Profile.Name
		f.Remediation = "Read the message as the mailbox received it (with all headers): a copy saved from a mail client or forwarded loses the Received chain."
		return f
	}
	first := -1
	for i, h := range t.Hops {
		if h.Gateway {
			first = i
			break
		}
	}
	// The platform's entry is the first hop in which it received the
	// message from a host outside it. Hops between its own hosts come
	// before that when the sender is on the same platform (another
	// Microsoft 365 tenant): those are the sender's side, not a bypass.
	entry := -1
	for i, h := range t.Hops {
		if h.Mailbox && !h.mbInternal {
			entry = i
			break
		}
	}
	if entry >= 0 {
		ev["mailbox_entry_hop"] = t.Hops[entry].Index
		ev["mailbox_profile"] = o.Mailbox.ID
	}
	if first < 0 {
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("None of the %d hops is by or from a host of %s: the message did not pass the gateway", len(t.Hops), o.Profile.Name)
		if entry >= 0 {
			f.Message += fmt.Sprintf("; it entered %s at hop %d from %s directly", o.Mailbox.Name, t.Hops[entry].Index, orUnknown(hopFrom(t.Hops[entry])))
		}
		f.Remediation = bypassRemediation(o)
		return f
	}
	g := t.Hops[first]
	ev["gateway_hop"] = g.Index
	ev["gateway_match"] = g.GatewayMatch
	when := ""
	if !g.Time.IsZero() {
		when = " at " + g.Time.UTC().Format(time.RFC3339)
		if g.DelayS != nil {
			when += fmt.Sprintf(", %s after the previous hop", seconds(*g.DelayS))
		}
	}
	dir, why := direction(t.Hops, first, entry)
	ev["direction"] = dir
	ev["direction_reason"] = why

	// The order check: on the way in, the gateway must hold the message
	// before the platform does. The gateway is "before" the platform's
	// first hop when it appears in an earlier hop, or in the same hop as
	// the sender (the hop in which the gateway hands the message to the
	// platform). Outbound mail (submitted in the platform, relayed by the
	// gateway's smart host) and journal copies run the other way, and are
	// not judged by it.
	before := entry < 0 || first < entry || first == entry && g.gwSide == "from"
	if !before && dir == "inbound" {
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("The message reached %s at hop %d (%s) before it passed %s at hop %d (%s%s): it entered the platform without the gateway's inbound filtering, and the gateway saw it only afterwards",
			o.Mailbox.Name, t.Hops[entry].Index, hopName(t.Hops[entry]), o.Profile.Name, g.Index, g.GatewayMatch, when)
		f.Remediation = bypassRemediation(o) + " If the gateway is meant to scan mail after the platform (journaling, an API or 'integrated' mode), this order is expected and the gateway does not filter before delivery."
		return f
	}
	f.Status = report.StatusPass
	f.Message = fmt.Sprintf("The message passed %s at hop %d of %d: %s%s", o.Profile.Name, g.Index, len(t.Hops), g.GatewayMatch, when)
	if entry >= 0 && dir == "inbound" {
		f.Message += fmt.Sprintf(", before it reached %s at hop %d", o.Mailbox.Name, t.Hops[entry].Index)
	}
	if dir != "inbound" {
		f.Message += " (" + why + ")"
	}
	if strings.Contains(g.GatewayMatch, "HELO name") {
		f.Message += "; only the sending host's own HELO name names the gateway, which any sender can claim"
	}
	return f
}

// direction tells inbound mail from outbound or journal mail: a gateway
// first seen on its smart-host or journal names, or a message that started
// in the platform by submission, was going out.
func direction(hops []Hop, first, entry int) (dir, why string) {
	g := hops[first]
	switch g.gwRole {
	case "smarthost":
		return "outbound", "the gateway received it on an outbound smart-host name"
	case "journal":
		return "journal", "the gateway received it on a journaling name"
	}
	if entry == 0 {
		h := hops[0]
		w := strings.ToLower(firstWord(h.With))
		if h.Transport == TransportLocal || slices.Contains([]string{"esmtpa", "esmtpsa", "utf8smtpa", "utf8smtpsa", "http", "https", "mapi"}, w) {
			return "outbound", "it was submitted in the mail platform (hop 1 " + orUnknown(h.With) + ")"
		}
	}
	return "inbound", "the gateway received it on its inbound side or by a vendor name"
}

func bypassRemediation(o Options) string {
	r := "Check that the domain's MX points only at the gateway (mfcheck mx), and lock the mail platform's inbound side to the gateway"
	if o.Mailbox != nil && strings.HasPrefix(o.Mailbox.ID, "microsoft365") {
		r += ": in Exchange Online a Partner inbound connector restricted to the gateway's certificate (RestrictDomainsToCertificate) or addresses, so mail delivered directly to *.mail.protection.outlook.com is refused"
	}
	return r + " (mfcheck check --mode smoke runs the bypass test)."
}

// transit is the time from the first to the last dated hop.
func transit(hops []Hop) (float64, bool) {
	var a, b time.Time
	for _, h := range hops {
		if h.Time.IsZero() {
			continue
		}
		if a.IsZero() {
			a = h.Time
		}
		b = h.Time
	}
	if a.IsZero() {
		return 0, false
	}
	return b.Sub(a).Seconds(), true
}

func seconds(s float64) string {
	if s < 0 {
		return fmt.Sprintf("%.0f s (clock skew: earlier than the previous hop)", s)
	}
	return fmt.Sprintf("%.0f s", s)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed host"
	}
	return s
}
