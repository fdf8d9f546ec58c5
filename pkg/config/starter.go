package config

import (
	"fmt"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/profile"
)

// Starter returns a commented mfcheck.yaml for one domain and profile (nil:
// none), the file `mfcheck init` writes. domain must be a valid domain name
// (resolver.ValidateHostname); the result parses with Parse given a registry
// that holds p. Everything optional is there but commented out, with a line
// on what it is for, so the file documents itself.
func Starter(domain string, p *profile.Profile) []byte {
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	initCmd := "mfcheck init " + domain
	profileLine := "# profile: mimecast-eu           # the gateway the domains are (or will be) behind; 'mfcheck profiles' lists them"
	if p != nil {
		// The name goes into a comment: keep it on one line.
		name := strings.Join(strings.Fields(p.Name), " ")
		profileLine = fmt.Sprintf("profile: %s   # %s; 'mfcheck profiles %s' shows what it expects", p.ID, name, p.ID)
		initCmd += " --profile " + p.ID
		if !p.Builtin {
			profileLine += fmt.Sprintf("\n  # a user profile (%s): run mfcheck with --profiles-file", p.Origin)
		}
	}
	w("# mfcheck.yaml: the domains 'mfcheck check -c mfcheck.yaml' and 'mfcheck bulk -c mfcheck.yaml' check.")
	w("# Written by '%s'. Unknown keys are errors, so a typo is never silently ignored;", initCmd)
	w("# relative paths are relative to this file's directory.")
	w("version: 1   # the format of this file; must be 1")
	w("")
	w("# Every domain below inherits these unless it sets the key itself (thresholds key by key).")
	w("defaults:")
	w("  %s", profileLine)
	w("  # readiness: before moving the MX to the gateway; smoke: right after the move;")
	w("  # health: every night from then on.")
	w("  mode: health")
	w("  thresholds:")
	w("    cert_expiry_warn_days: 21   # warn when a TLS certificate expires within this many days")
	w("    mx_ttl_max_seconds: 3600    # readiness: warn when the MX TTL is higher, so the move takes effect quickly")
	w("    fail_on: fail               # lowest status that makes the exit code 1: info, warn or fail")
	w("")
	w("domains:")
	w("  - domain: %s", domain)
	w("    # profile: and mode: here override defaults: for this domain only.")
	w("    # mode: readiness")
	w("")
	w("    # Servers that send mail as %s besides the gateway, e.g. an on-premises Exchange", domain)
	w("    # (hybrid) server or a scanner: each address must pass the domain's SPF record,")
	w("    # checked as MAIL FROM sender with HELO helo (defaults: postmaster@%s and %s).", domain, domain)
	w("    # sending_ips: [198.51.100.25]")
	w("    # sending_ranges: [198.51.100.0/28]   # must pass as a whole; write the network address")
	w("    # sender: postmaster@%s", domain)
	w("    # helo: mail.%s", domain)
	w("")
	w("    # The connection-filter IP Allow List exported from Exchange Online (one CIDR, IP or")
	w("    # range per line, or Get-HostedConnectionFilterPolicy output), compared with the")
	w("    # gateway's sending ranges. Needs a profile.")
	w("    # allowlist: ipallowlist.txt")
	w("")
	w("    # Smart hosts to probe (STARTTLS, certificate) besides the profile's, host[:port].")
	w("    # smart_hosts: [relay.%s:587]", domain)
	w("    # DKIM selectors to check besides the profiles' ones (selector._domainkey.%s).", domain)
	w("    # dkim_selectors: [selector1]")
	w("")
	w("    # Test messages; nothing is sent unless this block is here, and only to these recipients.")
	w("    # The first 'to' must be in %s: it receives the inbound message through the MX,", domain)
	w("    # and the bypass test (RCPT only, no message) tries it at the mail platform directly.")
	w("    # send:")
	w("    #   to: [postmaster@%s]", domain)
	w("    #   from: probe@fabrikam.example")
	w("    #   outbound_server: smtp.office365.com:587   # submit an outbound message through this")
	w("    #   outbound_to: [me@fabrikam.example]        # ... to a recipient outside the domain")
	w("    #   bypass_host: %s.mail.protection.outlook.com   # default: found from the MX", strings.ReplaceAll(domain, ".", "-"))
	w("    #   maildir: /var/mail/probe/Maildir   # where the inbound message lands, for the trace (smoke)")
	w("")
	w("    # thresholds: {cert_expiry_warn_days: 30}   # this domain only; the rest from defaults")
	w("")
	w("    # Findings accepted for now. Each needs a reason and an expiry (the last day, UTC);")
	w("    # after it the finding is back and config.suppression-expired says so. docs/checks.md")
	w("    # lists the finding IDs; subject is optional (exact, or a prefix ending in *).")
	w("    # suppress:")
	w("    #   - id: spf.ptr")
	w("    #     subject: %s", domain)
	w("    #     reason: legacy relay, being retired (ticket CHG-1234)")
	w("    #     expires: 2027-01-31")
	return []byte(b.String())
}
