package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/spf"
)

// spfFlags are the SPF and allow-list flags of check and spf.
type spfFlags struct {
	ips, ranges  []string
	sender, helo string
	allowlist    string
	flatten      bool
	maxLookups   int
}

// addSPFFlags registers the flags on cmd; the flatten flags only on spf.
func (a *app) addSPFFlags(cmd *cobra.Command, flatten bool) {
	f := cmd.Flags()
	f.StringArrayVar(&a.spf.ips, "ip", nil, "client address that must pass SPF, e.g. the on-premises Exchange server (repeatable)")
	f.StringArrayVar(&a.spf.ranges, "range", nil, "address range (CIDR) that must pass SPF as a whole (repeatable); the profile's sending ranges are checked too")
	f.StringVar(&a.spf.sender, "sender", "", "MAIL FROM address for the --ip checks (default postmaster@DOMAIN)")
	f.StringVar(&a.spf.helo, "helo", "", "HELO name for the --ip checks (default DOMAIN)")
	f.StringVar(&a.spf.allowlist, "allowlist", "", "file with the connection-filter IP Allow List (one CIDR, IP or range per line, or Exchange Online's IPAllowList output) to compare with the profile's ranges")
	if flatten {
		f.BoolVar(&a.spf.flatten, "flatten", false, "print an equivalent record set that needs at most --max-lookups DNS lookups")
		f.IntVar(&a.spf.maxLookups, "max-lookups", spf.DefaultFlattenLookups, "lookup budget of the flattened record set (0 replaces every term that can be)")
	}
}

// spfConfig validates the SPF flags into the run's configuration.
func (a *app) spfConfig(opts *options) (check.SPFConfig, *allowlist.List, error) {
	var c check.SPFConfig
	for _, s := range a.spf.ips {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || ip.Zone() != "" {
			return c, nil, fmt.Errorf("--ip %q is not an IP address", s)
		}
		c.IPs = append(c.IPs, ip)
	}
	for _, s := range a.spf.ranges {
		p, err := parseRange(s)
		if err != nil {
			return c, nil, err
		}
		c.Ranges = append(c.Ranges, p)
	}
	if a.spf.sender != "" && !strings.Contains(a.spf.sender, "@") {
		return c, nil, fmt.Errorf("--sender %q is not an address (local@domain)", a.spf.sender)
	}
	c.Sender, c.Helo = a.spf.sender, a.spf.helo
	if a.spf.maxLookups < 0 || a.spf.maxLookups > spf.DefaultLookupLimit {
		return c, nil, fmt.Errorf("--max-lookups %d: want 0 to %d (receivers refuse records that need more than %d)", a.spf.maxLookups, spf.DefaultLookupLimit, spf.DefaultLookupLimit)
	}
	c.Flatten, c.FlattenLookups = a.spf.flatten, a.spf.maxLookups
	if a.spf.allowlist == "" {
		return c, nil, nil
	}
	if opts.profile == nil {
		return c, nil, fmt.Errorf("--allowlist needs --profile: the gateway whose sending ranges must be allow-listed")
	}
	list, err := allowlist.ParseFile(a.spf.allowlist)
	if err != nil {
		return c, nil, err
	}
	return c, list, nil
}

// parseRange accepts a CIDR or a single address (a /32 or /128).
func parseRange(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("--range %q has host bits set; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("--range %q is not a CIDR range such as 192.0.2.0/24", s)
}

func (a *app) spfCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "spf DOMAIN",
		Short: "Analyse the SPF record: include tree with lookup counts, limits, gateway include and ranges, flattening",
		Long: `spf expands DOMAIN's SPF record and every record it includes, and shows the tree with what
each term costs and the running total of DNS lookups (RFC 7208 allows 10, and 2 void lookups).
It reports syntax errors by term, loops, includes without a record, the all policy, ptr, record
size, and, with --profile, whether the gateway's include is there or fits, and whether the
gateway's sending ranges (expanded live from its SPF record) all pass. --ip and --range check
given senders; --allowlist compares an Exchange Online IP Allow List with the gateway's ranges;
--flatten prints an equivalent record set within --max-lookups lookups.`,
		Example: `  mfcheck spf contoso.com --resolver 127.0.0.1:5353
  mfcheck spf contoso.com --profile mimecast-eu --ip 198.51.100.25 --allowlist ipallowlist.txt
  mfcheck spf contoso.com --profile mimecast-eu --flatten --max-lookups 8`,
		Args: exactArgs(1, "a domain"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runCheck(cmd, args[0], []string{check.AreaSPF}, nil, false, nil)
		},
	}
	a.addSPFFlags(cmd, true)
	return cmd
}
