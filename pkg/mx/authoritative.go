package mx

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// ServerView is what one authoritative server publishes for the domain.
type ServerView struct {
	NS      string   `json:"ns"`
	Address string   `json:"address"`
	MX      []string `json:"mx,omitempty"`
	Serial  uint32   `json:"serial,omitempty"`
	// Authoritative is the AA bit of the MX answer: false means a lame
	// delegation (the server does not serve the zone).
	Authoritative bool   `json:"authoritative"`
	Outcome       string `json:"outcome,omitempty"`
	Err           string `json:"error,omitempty"`
}

// checkAuthoritative asks every authoritative server of the domain's zone,
// directly and without recursion, for the domain's MX set and the zone's SOA
// serial, and compares the answers. After an MX change, servers that still
// answer the old set are the reason some senders keep using the old MX.
func checkAuthoritative(ctx context.Context, r Resolver, domain string, port int) ([]ServerView, []report.Finding) {
	apex, nsNames, err := zoneServers(ctx, r, domain)
	if err != nil {
		return nil, []report.Finding{{ID: IDNSConsistency, Status: report.StatusError, Subject: domain,
			Message: fmt.Sprintf("Could not find the authoritative servers: %v", err)}}
	}
	if len(nsNames) == 0 {
		return nil, []report.Finding{{ID: IDNSConsistency, Status: report.StatusError, Subject: domain,
			Message: fmt.Sprintf("The zone %s lists no NS records, so its servers cannot be compared", apex)}}
	}

	// Resolve every NS name, then ask every address; both steps fan out.
	type target struct{ ns, addr string }
	var mu sync.Mutex
	var targets []target
	var resolveErrs []report.Finding
	var wg sync.WaitGroup
	for _, ns := range nsNames {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := r.Lookup(ctx, ns, qt)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					resolveErrs = append(resolveErrs, report.Finding{ID: IDNSConsistency, Status: report.StatusError, Subject: trimDot(ns),
						Message: fmt.Sprintf("Could not resolve name server %s (%s): %v", trimDot(ns), dns.TypeToString[qt], err)})
					return
				}
				for _, rr := range a.Records {
					switch v := rr.(type) {
					case *dns.A:
						targets = append(targets, target{ns, v.A.String()})
					case *dns.AAAA:
						targets = append(targets, target{ns, v.AAAA.String()})
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(targets) == 0 {
		return nil, append(resolveErrs, report.Finding{ID: IDNSConsistency, Status: report.StatusError, Subject: domain,
			Message: fmt.Sprintf("None of the %s of %s has an address", plural(len(nsNames), "name server"), apex)})
	}

	views := make([]ServerView, len(targets))
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i] = askServer(ctx, r, t.ns, t.addr, port, domain, apex)
		}()
	}
	wg.Wait()
	sort.Slice(views, func(i, j int) bool {
		if views[i].NS != views[j].NS {
			return views[i].NS < views[j].NS
		}
		return views[i].Address < views[j].Address
	})
	return views, append(resolveErrs, compareViews(domain, apex, views)...)
}

// zoneServers finds the zone that holds domain and its NS names. An NS query
// at the domain answers directly when the domain is a zone apex (the common
// case, one round trip); otherwise the SOA in the negative answer names the
// enclosing zone (RFC 2308 §2.2).
func zoneServers(ctx context.Context, r Resolver, domain string) (string, []string, error) {
	ans, err := r.Lookup(ctx, domain, dns.TypeNS)
	if err != nil {
		return "", nil, err
	}
	if ans.Outcome == resolver.OutcomeOK {
		return domain, nsTargets(ans.Records), nil
	}
	apex := ""
	for _, rr := range ans.Authority {
		if soa, ok := rr.(*dns.SOA); ok {
			apex = strings.TrimSuffix(strings.ToLower(soa.Hdr.Name), ".")
		}
	}
	if apex == "" || apex == domain {
		return "", nil, fmt.Errorf("no NS records at %s and no SOA naming the enclosing zone (%s)", domain, ans.Outcome)
	}
	ans, err = r.Lookup(ctx, apex, dns.TypeNS)
	if err != nil {
		return "", nil, err
	}
	return apex, nsTargets(ans.Records), nil
}

func nsTargets(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, strings.ToLower(ns.Ns))
		}
	}
	sort.Strings(out)
	return out
}

func askServer(ctx context.Context, r Resolver, ns, addr string, port int, domain, apex string) ServerView {
	v := ServerView{NS: trimDot(ns), Address: addr}
	server := net.JoinHostPort(addr, strconv.Itoa(port))
	var mxAns, soaAns *resolver.Answer
	var mxErr, soaErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); mxAns, mxErr = r.QueryServer(ctx, server, domain, dns.TypeMX) }()
	go func() { defer wg.Done(); soaAns, soaErr = r.QueryServer(ctx, server, apex, dns.TypeSOA) }()
	wg.Wait()
	if mxErr != nil {
		v.Err = mxErr.Error()
		if mxAns != nil {
			v.Outcome = string(mxAns.Outcome)
		}
		return v
	}
	v.Outcome = string(mxAns.Outcome)
	v.Authoritative = mxAns.AA
	for _, rr := range mxAns.Records {
		if m, ok := rr.(*dns.MX); ok {
			v.MX = append(v.MX, fmt.Sprintf("%d %s", m.Preference, strings.ToLower(m.Mx)))
		}
	}
	sort.Strings(v.MX)
	if soaErr == nil {
		for _, rr := range soaAns.Records {
			if soa, ok := rr.(*dns.SOA); ok {
				v.Serial = soa.Serial
			}
		}
	}
	return v
}

// compareViews turns the per-server answers into findings: one error finding
// per server that could not be asked, a warning per lame server, and one
// verdict over the servers that answered.
func compareViews(domain, apex string, views []ServerView) []report.Finding {
	var out []report.Finding
	var answered []ServerView
	for _, v := range views {
		subject := fmt.Sprintf("%s [%s]", v.NS, v.Address)
		switch {
		case v.Err != "":
			out = append(out, report.Finding{ID: IDNSConsistency, Status: report.StatusError, Subject: subject,
				Message:  fmt.Sprintf("Could not ask authoritative server %s for the MX records: %s", subject, v.Err),
				Evidence: map[string]any{"ns": v.NS, "address": v.Address, "outcome": v.Outcome}})
		case !v.Authoritative:
			out = append(out, report.Finding{ID: IDNSConsistency, Status: report.StatusWarn, Subject: subject,
				Message:     fmt.Sprintf("Name server %s is listed for %s but does not answer authoritatively (lame delegation)", subject, apex),
				Remediation: fmt.Sprintf("Serve the zone %s on %s, or remove it from the NS records", apex, v.NS),
				Evidence:    map[string]any{"ns": v.NS, "address": v.Address, "outcome": v.Outcome, "mx": v.MX}})
		default:
			answered = append(answered, v)
		}
	}
	if len(answered) == 0 {
		return out
	}
	sets := map[string][]string{}
	serials := map[uint32][]string{}
	perServer := map[string]any{}
	for _, v := range answered {
		key := "{" + strings.Join(trimAll(v.MX), ", ") + "}"
		if len(v.MX) == 0 {
			key = "no MX records"
		}
		label := fmt.Sprintf("%s [%s]", v.NS, v.Address)
		sets[key] = append(sets[key], label)
		serials[v.Serial] = append(serials[v.Serial], label)
		perServer[label] = map[string]any{"mx": v.MX, "serial": v.Serial}
	}
	ev := map[string]any{"zone": apex, "servers": perServer}
	switch {
	case len(sets) > 1:
		var parts []string
		for set, servers := range sets {
			verb := "serves"
			if len(servers) > 1 {
				verb = "serve"
			}
			parts = append(parts, fmt.Sprintf("%s %s %s", strings.Join(servers, ", "), verb, set))
		}
		sort.Strings(parts)
		out = append(out, report.Finding{ID: IDNSConsistency, Status: report.StatusFail, Subject: domain,
			Message:     fmt.Sprintf("The %d authoritative servers of %s disagree on the MX records: %s", len(answered), apex, strings.Join(parts, "; ")),
			Remediation: "Update the zone on every name server (check zone transfers, NOTIFY and the SOA serial) and wait until all serve the new MX set",
			Evidence:    ev})
	case len(serials) > 1:
		var parts []string
		for serial, servers := range serials {
			parts = append(parts, fmt.Sprintf("%d on %s", serial, strings.Join(servers, ", ")))
		}
		sort.Strings(parts)
		out = append(out, report.Finding{ID: IDNSConsistency, Status: report.StatusWarn, Subject: domain,
			Message:     fmt.Sprintf("The authoritative servers agree on the MX records but serve different SOA serials of %s (%s): a zone transfer is lagging", apex, strings.Join(parts, "; ")),
			Remediation: "Check zone transfers between the primary and the secondaries",
			Evidence:    ev})
	default:
		out = append(out, report.Finding{ID: IDNSConsistency, Status: report.StatusPass, Subject: domain,
			Message:  fmt.Sprintf("All %s of %s serve the same MX records and SOA serial %d", plural(len(answered), "authoritative server"), apex, answered[0].Serial),
			Evidence: ev})
	}
	return out
}
