package spf

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// Finding IDs of this package; docs/checks.md describes each.
const (
	IDPresent           = "spf.present"
	IDMultiple          = "spf.multiple"
	IDSyntax            = "spf.syntax"
	IDLookupLimit       = "spf.lookup-limit"
	IDVoidLimit         = "spf.void-limit"
	IDMXLimit           = "spf.mx-limit"
	IDLoop              = "spf.loop"
	IDIncludeWithoutSPF = "spf.include-without-spf"
	IDAllPolicy         = "spf.all-policy"
	IDPTR               = "spf.ptr"
	IDRedirectWithAll   = "spf.redirect-with-all"
	IDSize              = "spf.size"
	IDSplitRecord       = "spf.split-record"
	IDGatewayInclude    = "spf.gateway-include"
	IDHeadroom          = "spf.headroom"
	IDIPAuthorized      = "spf.ip-authorized"
	IDRangesAuthorized  = "spf.ranges-authorized"
)

// Options say what Analyze checks besides the record tree itself.
type Options struct {
	// Mode is "readiness", "smoke" or "health" (the mx package's modes).
	Mode string
	// Profile is the gateway the domain sends (or will send) through; nil
	// skips the gateway questions.
	Profile *profile.Profile
	// Expand bounds the expansion; its Limits are the RFC 7208 limits
	// receivers apply.
	Expand ExpandOptions
	// IPs are client addresses that must pass check_host() (an on-premises
	// server, say), evaluated as Sender from HELO name Helo (default
	// postmaster@<domain> and <domain>).
	IPs          []netip.Addr
	Sender, Helo string
	// Ranges are address ranges that must be authorized as a whole, on top
	// of the profile's sending ranges.
	Ranges []netip.Prefix
	// Flatten asks for a flattened record set within FlattenLookups.
	Flatten        bool
	FlattenLookups int
}

// Analysis is what Analyze found.
type Analysis struct {
	Domain   string
	Tree     *Tree
	Coverage *Coverage
	// Gateway holds the profile's sending ranges as found (live, or the
	// stored fallback), for the allow-list check; nil without a profile.
	Gateway *GatewayRanges
	// Flattened is set when asked for and possible; FlattenErr says why
	// not otherwise.
	Flattened  *Flattened
	FlattenErr error
	Findings   []report.Finding
	// Section is the tree (and flattened set) for the report.
	Section *report.SPF
}

// GatewayRanges are a gateway's current sending ranges and where they come
// from.
type GatewayRanges struct {
	Name   string
	Ranges []netip.Prefix
	// Source says where the ranges come from, for messages: "live SPF of
	// eu._netblocks.mimecast.com", or the stored snapshot and why.
	Source string
	// Unverified is set when the source is not confirmed by the vendor or
	// is a stored snapshot.
	Unverified bool
	// Live is true when the ranges were expanded from DNS in this run.
	Live bool
	// Err is set when no range is known.
	Err error
}

// Analyze expands domain's SPF record tree through r and answers what a
// cutover needs: the static findings of the tree, the gateway questions
// when opt.Profile is set, the given client addresses and ranges, and a
// flattened record set when asked. It never fails: what could not be
// checked is reported as findings with status error.
func Analyze(ctx context.Context, r Resolver, domain string, opt Options) *Analysis {
	opt.Expand = opt.Expand.withDefaults()
	m := newMemo(r, opt.Expand.Parallel, opt.Expand.MaxQueries)
	a := &Analysis{Domain: normalizeDomain(domain)}

	// The gateway's own records are fetched beside the domain's: they do
	// not depend on it, and when the domain includes them the shared memo
	// asks once.
	var gateway map[string]*Tree
	var wg sync.WaitGroup
	if opt.Profile != nil {
		names := gatewayNames(opt.Profile)
		gateway = make(map[string]*Tree, len(names))
		var mu sync.Mutex
		for _, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := expandWith(ctx, m, n, opt.Expand)
				mu.Lock()
				gateway[n] = t
				mu.Unlock()
			}()
		}
	}
	a.Tree = expandWith(ctx, m, a.Domain, opt.Expand)
	wg.Wait()
	a.Coverage = a.Tree.Coverage(opt.Expand.Limits)

	a.Findings = append(a.Findings, staticFindings(a.Tree, a.Coverage)...)
	if opt.Profile != nil {
		a.Gateway = gatewayRanges(opt.Profile, gateway)
		a.Findings = append(a.Findings, gatewayFindings(a, opt, gateway)...)
	}
	a.Findings = append(a.Findings, ipFindings(ctx, a, m, opt)...)
	a.Findings = append(a.Findings, rangeFindings(a, opt)...)
	if opt.Flatten {
		fo := FlattenOptions{MaxLookups: opt.FlattenLookups}
		if p := opt.Profile; p != nil {
			fo.Prefer = p.SPFIncludes
			// The set to publish before a cutover needs the gateway's
			// include: add it when the record lacks it.
			if found, _, _ := findGatewayTerm(a.Tree, p); found == "" && len(p.SPFIncludes) > 0 {
				if gt := gateway[strings.ToLower(strings.TrimSuffix(p.SPFIncludes[0], "."))]; gt != nil && gt.Root.Record != nil {
					fo.Add = []*Tree{gt}
				}
			}
		}
		a.Flattened, a.FlattenErr = a.Tree.Flatten(fo)
	}
	a.Section = a.section()
	return a
}

// expandWith is Expand through an existing memo, so several trees of one
// run share their questions.
func expandWith(ctx context.Context, m *memo, domain string, opt ExpandOptions) *Tree {
	opt = opt.withDefaults()
	x := &expander{ctx: ctx, opt: opt, dns: m}
	root := &Node{Domain: normalizeDomain(domain)}
	x.senderDomain = root.Domain
	x.expandNode(root)
	x.wg.Wait()
	t := &Tree{Root: root, Limits: opt.Limits, Queries: m.asked()}
	t.count()
	return t
}

// gatewayNames are the names whose records the gateway questions need: the
// profile's SPF includes (what adding one costs) and the names its live
// ranges come from.
func gatewayNames(p *profile.Profile) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string(nil), p.SPFIncludes...), p.IPRangesLive...) {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
