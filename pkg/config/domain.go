package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mfcheck/mfcheck/internal/yamlnode"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// domain parses one entry of domains: and merges defs into it. ok is false
// when the entry had errors.
func (p *parser) domain(n *yaml.Node, key string, defs Domain) (Domain, bool) {
	before := len(p.errs)
	d := Domain{Line: n.Line}
	m := p.mapping(n, key, domainKeys)

	if v, ok := m["domain"]; !ok {
		p.missing(n.Line, key+".domain", "missing; every entry names the domain to check (\"- domain: contoso.com\")")
	} else if s, ok := p.str(v, key+".domain"); ok {
		name, err := resolver.ValidateHostname(s)
		if err != nil {
			p.errf(v.Line, key+".domain", "%q is not a domain name: %s", s, strings.TrimPrefix(err.Error(), resolver.ErrBadName.Error()+": "))
		} else {
			d.Name = strings.TrimSuffix(name, ".")
		}
	}
	if v, ok := m["profile"]; ok {
		d.Profile = p.profileID(v, key+".profile")
	}
	if v, ok := m["mode"]; ok {
		d.Mode = p.mode(v, key+".mode")
	}
	if v, ok := m["sending_ips"]; ok {
		items, _ := p.strList(v, key+".sending_ips")
		for _, it := range items {
			ip, err := netip.ParseAddr(it.s)
			if err != nil || ip.Zone() != "" {
				hint := ""
				if _, perr := netip.ParsePrefix(it.s); perr == nil {
					hint = "; put ranges under sending_ranges"
				}
				p.errf(it.line, it.key, "%q is not an IP address%s", it.s, hint)
				continue
			}
			d.SendingIPs = append(d.SendingIPs, ip)
		}
	}
	if v, ok := m["sending_ranges"]; ok {
		items, _ := p.strList(v, key+".sending_ranges")
		for _, it := range items {
			pr, err := parseRange(it.s)
			if err != nil {
				p.errf(it.line, it.key, "%v", err)
				continue
			}
			d.SendingRanges = append(d.SendingRanges, pr)
		}
	}
	if v, ok := m["sender"]; ok {
		if s, ok := p.str(v, key+".sender"); ok {
			if a, err := address(s); err != nil {
				p.errf(v.Line, key+".sender", "%v", err)
			} else {
				d.Sender = a
			}
		}
	}
	if v, ok := m["helo"]; ok {
		if s, ok := p.str(v, key+".helo"); ok {
			if h, err := heloName(s); err != nil {
				p.errf(v.Line, key+".helo", "%v", err)
			} else {
				d.Helo = h
			}
		}
	}
	if v, ok := m["allowlist"]; ok {
		if s, ok := p.str(v, key+".allowlist"); ok {
			abs := p.relative(s)
			if fi, err := os.Stat(abs); err != nil {
				p.errf(v.Line, key+".allowlist", "%q: no such file (looked for %s; a relative path is relative to the config file's directory)", s, abs)
			} else if fi.IsDir() {
				p.errf(v.Line, key+".allowlist", "%q is a directory; name the allow-list file", s)
			} else {
				d.Allowlist = abs
			}
		}
	}
	if v, ok := m["smart_hosts"]; ok {
		items, _ := p.strList(v, key+".smart_hosts")
		for _, it := range items {
			hp, err := hostPort(it.s)
			if err != nil {
				p.errf(it.line, it.key, "%v", err)
				continue
			}
			d.SmartHosts = append(d.SmartHosts, hp)
		}
	}
	if v, ok := m["dkim_selectors"]; ok {
		items, _ := p.strList(v, key+".dkim_selectors")
		for _, it := range items {
			if !validSelector(it.s) {
				p.errf(it.line, it.key, "%q is not a selector (a DNS label such as selector1, without ._domainkey)", it.s)
				continue
			}
			d.DKIMSelectors = append(d.DKIMSelectors, strings.ToLower(it.s))
		}
	}
	if v, ok := m["send"]; ok {
		d.Send = p.send(v, key+".send", d.Name)
	}
	if v, ok := m["thresholds"]; ok {
		d.Thresholds = p.thresholds(v, key+".thresholds")
	}
	if v, ok := m["suppress"]; ok {
		d.Suppress = p.suppressions(v, key+".suppress")
	}

	// Defaults: the domain's own value wins; thresholds field by field.
	if d.Profile == "" {
		d.Profile = defs.Profile
	}
	if d.Mode == "" {
		d.Mode = defs.Mode
	}
	if d.Thresholds.CertExpiryWarnDays == 0 {
		d.Thresholds.CertExpiryWarnDays = defs.Thresholds.CertExpiryWarnDays
	}
	if d.Thresholds.MXTTLMaxSeconds == 0 {
		d.Thresholds.MXTTLMaxSeconds = defs.Thresholds.MXTTLMaxSeconds
	}
	if d.Thresholds.FailOn == "" {
		d.Thresholds.FailOn = defs.Thresholds.FailOn
	}
	if v, ok := m["allowlist"]; ok && d.Allowlist != "" && d.Profile == "" && len(p.errs) == before {
		// As with --allowlist: the list is compared with the gateway's
		// sending ranges, so without a gateway there is nothing to check.
		p.errf(v.Line, key+".allowlist", "needs a profile (here or in defaults): the gateway whose sending ranges must be allow-listed")
	}
	return d, len(p.errs) == before
}

// relative resolves a path written in the file against the file's directory.
func (p *parser) relative(s string) string {
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(filepath.Dir(p.path), s)
}

func (p *parser) send(v *yaml.Node, key, domain string) *Send {
	s := &Send{}
	if v.Kind != yaml.MappingNode {
		p.errf(v.Line, key, "want a mapping of %s, got %s", strings.Join(sendKeys, ", "), yamlnode.KindName(v))
		return s
	}
	m := p.mapping(v, key, sendKeys)
	addrs := func(k string) []string {
		n, ok := m[k]
		if !ok {
			return nil
		}
		items, _ := p.strList(n, key+"."+k)
		var out []string
		for _, it := range items {
			a, err := address(it.s)
			if err != nil {
				p.errf(it.line, it.key, "%v", err)
				continue
			}
			out = append(out, a)
		}
		return out
	}
	server := func(k string) string {
		n, ok := m[k]
		if !ok {
			return ""
		}
		str, ok := p.str(n, key+"."+k)
		if !ok {
			return ""
		}
		hp, err := hostPort(str)
		if err != nil {
			p.errf(n.Line, key+"."+k, "%v", err)
			return ""
		}
		return hp
	}
	s.To = addrs("to")
	s.OutboundTo = addrs("outbound_to")
	s.OutboundServer = server("outbound_server")
	s.BypassHost = server("bypass_host")
	if n, ok := m["from"]; ok {
		if str, ok := p.str(n, key+".from"); ok {
			if a, err := address(str); err != nil {
				p.errf(n.Line, key+".from", "%v", err)
			} else {
				s.From = a
			}
		}
	}
	if n, ok := m["maildir"]; ok {
		if str, ok := p.str(n, key+".maildir"); ok {
			s.Maildir = p.relative(str)
		}
	}
	// The same rules as check --send: mail goes only to recipients the user
	// named, the inbound message and the bypass test need one in the domain.
	to, hasTo := m["to"]
	switch {
	case !hasTo:
		p.missing(v.Line, key+".to", "missing; the test message needs a recipient in %s", orDomain(domain))
	case to.Kind == yaml.SequenceNode && len(to.Content) == 0:
		p.errf(to.Line, key+".to", "the list is empty; the test message needs a recipient in %s", orDomain(domain))
	case len(s.To) > 0 && domain != "" && !strings.HasSuffix(strings.ToLower(s.To[0]), "@"+domain):
		p.errf(to.Content[0].Line, key+".to[0]", "%s is not in %s; the first recipient receives the inbound test message and is the bypass test's recipient", s.To[0], domain)
	}
	_, hasServer := m["outbound_server"]
	ot, hasOutTo := m["outbound_to"]
	switch {
	case hasServer && !hasOutTo:
		p.missing(m["outbound_server"].Line, key+".outbound_to", "missing; outbound_server needs a recipient outside the domain")
	case hasOutTo && !hasServer:
		p.missing(ot.Line, key+".outbound_server", "missing; outbound_to needs the server to submit the message through (host[:port])")
	}
	return s
}

func orDomain(d string) string {
	if d == "" {
		return "the domain"
	}
	return d
}

// idPattern is the shape of a finding ID (report.Validate, the JSON schema):
// lower-case dotted words, at least two.
var idPattern = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)+$`)

func (p *parser) suppressions(v *yaml.Node, key string) []Suppression {
	if v.Kind != yaml.SequenceNode {
		p.errf(v.Line, key, "want a list of suppressions (\"- id: spf.ptr\" with reason and expires), got %s", yamlnode.KindName(v))
		return nil
	}
	var out []Suppression
	firstLine := map[string]int{}
	for i, n := range v.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		if n.Kind != yaml.MappingNode {
			p.errf(n.Line, k, "want a mapping of id, subject, reason and expires, got %s", yamlnode.KindName(n))
			continue
		}
		before := len(p.errs)
		s := Suppression{Line: n.Line}
		m := p.mapping(n, k, suppressKeys)
		if f, ok := m["id"]; !ok {
			p.missing(n.Line, k+".id", "missing; name the finding ID to accept (docs/checks.md lists them), e.g. spf.ptr")
		} else if str, ok := p.str(f, k+".id"); ok {
			if !idPattern.MatchString(str) {
				hint := ""
				if l := strings.ToLower(str); l != str && idPattern.MatchString(l) {
					hint = fmt.Sprintf(" (did you mean %s?)", l)
				}
				p.errf(f.Line, k+".id", "%q is not a finding ID: IDs are dotted lower-case words such as spf.ptr%s", str, hint)
			} else {
				s.ID = str
			}
		}
		if f, ok := m["subject"]; ok {
			if str, ok := p.str(f, k+".subject"); ok {
				if i := strings.IndexByte(str, '*'); i >= 0 && i != len(str)-1 {
					p.errf(f.Line, k+".subject", "%q: only a trailing \"*\" is supported (a prefix match)", str)
				} else {
					s.Subject = str
				}
			}
		}
		if f, ok := m["reason"]; !ok {
			p.missing(n.Line, k+".reason", "missing; say why the finding is accepted, for whoever reads the report")
		} else if str, ok := p.str(f, k+".reason"); ok {
			s.Reason = str
		}
		if f, ok := m["expires"]; !ok {
			p.missing(n.Line, k+".expires", "missing; give the last day (YYYY-MM-DD) it applies, so it is looked at again")
		} else if str, ok := p.str(f, k+".expires"); ok {
			t, err := time.Parse(time.DateOnly, str)
			if err != nil {
				p.errf(f.Line, k+".expires", "%s is not a date; want YYYY-MM-DD, e.g. 2027-01-31", strconv.Quote(str))
			} else {
				s.Expires = t
			}
		}
		if len(p.errs) != before {
			continue
		}
		dupKey := s.ID + "\x00" + strings.ToLower(s.Subject)
		if first, dup := firstLine[dupKey]; dup {
			p.errf(n.Line, k, "%s is already suppressed at line %d; keep one entry", subjectOf(s), first)
			continue
		}
		firstLine[dupKey] = n.Line
		out = append(out, s)
	}
	return out
}

// parseRange accepts a CIDR or a single address (a /32 or /128), as --range
// does. Host bits are an error, not silently masked: "10.0.0.1/24" is a typo
// for 10.0.0.0/24 or 10.0.0.1/32, and guessing could check the wrong range.
func parseRange(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range such as 192.0.2.0/24", s)
}

// hostPort validates host[:port] (a host name, an address, or [v6]:port) and
// returns it with the host name canonical.
func hostPort(s string) (string, error) {
	host, portStr := s, ""
	if h, pt, err := net.SplitHostPort(s); err == nil {
		host, portStr = h, pt
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	port := 0
	if portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: %q is not a port", s, portStr)
		}
		port = n
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		if port == 0 {
			return ip.String(), nil
		}
		return netip.AddrPortFrom(ip, uint16(port)).String(), nil
	}
	name, err := resolver.ValidateHostname(host)
	if err != nil {
		return "", fmt.Errorf("%q is not a host name, host:port or address", s)
	}
	name = strings.TrimSuffix(name, ".")
	if port == 0 {
		return name, nil
	}
	return net.JoinHostPort(name, strconv.Itoa(port)), nil
}

// address validates a bare mail address (local@domain, RFC 5321 §4.1.2),
// the same rule as --to and --sender, and returns it without a display name.
func address(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || strings.ContainsAny(a.Address, "\r\n<> ") || !strings.Contains(a.Address, "@") {
		return "", fmt.Errorf("%q is not a mail address (local@domain)", s)
	}
	domain := a.Address[strings.LastIndexByte(a.Address, '@')+1:]
	if _, err := resolver.ValidateHostname(domain); err != nil {
		return "", fmt.Errorf("%q: %q is not a domain name", s, domain)
	}
	return a.Address, nil
}

// heloName accepts a domain name or an address literal such as [192.0.2.1]
// (RFC 5321 §4.1.1.1), as --helo does.
func heloName(s string) (string, error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner := strings.TrimPrefix(strings.TrimPrefix(s[1:len(s)-1], "IPv6:"), "ipv6:")
		if ip, err := netip.ParseAddr(inner); err == nil && ip.Zone() == "" {
			return s, nil
		}
	} else if name, err := resolver.ValidateHostname(s); err == nil {
		return strings.TrimSuffix(name, "."), nil
	}
	return "", fmt.Errorf("%q is not a domain name or an address literal such as [192.0.2.1]", s)
}

// validSelector accepts a DKIM selector: one or more DNS labels (RFC 6376
// §3.1 allows dots) of letters, digits, hyphens and underscores, without the
// "._domainkey" that mfcheck adds itself.
func validSelector(s string) bool {
	if strings.Contains(strings.ToLower(s), "_domainkey") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	_, err := resolver.CanonicalName(s + "._domainkey.example.com")
	return err == nil
}
