package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Result is the result of check_host() (RFC 7208 §2.6).
type Result string

const (
	None      Result = "none"      // §2.6.1: no SPF record, or no valid domain
	Neutral   Result = "neutral"   // §2.6.2: the domain makes no assertion
	Pass      Result = "pass"      // §2.6.3: the client is authorized
	Fail      Result = "fail"      // §2.6.4: the client is not authorized
	SoftFail  Result = "softfail"  // §2.6.5: probably not authorized
	TempError Result = "temperror" // §2.6.6: a transient (DNS) error
	PermError Result = "permerror" // §2.6.7: the records need fixing
)

// Resolver is the DNS seam: pkg/resolver's Client satisfies it, and tests
// use in-memory fakes. OK, NXDOMAIN and NODATA are answers with a nil error
// (Answer.Outcome tells them apart); SERVFAIL, timeouts and the like are
// errors wrapping resolver.ErrServFail, resolver.ErrTimeout, ... Answer.Records
// holds miekg RRs of the asked type, CNAMEs already followed; TXT strings are
// in miekg's presentation form (\" \\ \DDD escapes), which this package
// decodes.
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error)
}

// Processing limits of RFC 7208 §4.6.4.
const (
	DefaultLookupLimit = 10 // DNS-querying terms per check_host()
	DefaultVoidLimit   = 2  // lookups answering NXDOMAIN or NODATA
	DefaultMXLimit     = 10 // MX names per mx mechanism
	DefaultPTRLimit    = 10 // PTR names looked at per ptr mechanism or %{p}
)

// Error classes carried in Outcome.Err; test them with errors.Is. Syntax
// errors are *SyntaxError (errors.Is(err, ErrSyntax)); DNS failures wrap
// ErrDNS and the resolver's own sentinel (resolver.ErrTimeout, ...).
var (
	ErrNoRecord        = errors.New("spf: no SPF record")                                // none
	ErrMultipleRecords = errors.New("spf: more than one v=spf1 record")                  // permerror, §4.5
	ErrLookupLimit     = errors.New("spf: too many DNS-querying terms")                  // permerror, §4.6.4
	ErrVoidLimit       = errors.New("spf: too many void lookups")                        // permerror, §4.6.4
	ErrMXLimit         = errors.New("spf: too many MX records")                          // permerror, §4.6.4
	ErrIncludeNone     = errors.New("spf: include target has no SPF record")             // permerror, §5.2
	ErrRedirectNone    = errors.New("spf: redirect target has no SPF record")            // permerror, §6.1
	ErrLoop            = errors.New("spf: include or redirect loop")                     // permerror, §4.6.4
	ErrDNS             = errors.New("spf: DNS lookup failed")                            // temperror, §4.4, §5
	ErrBadQuery        = errors.New("spf: query has no valid IP address or no resolver") // temperror
)

// Query holds the arguments of check_host() (RFC 7208 §4.1) and the values
// that only macros use.
type Query struct {
	// IP is the SMTP client's address; IPv4-mapped IPv6 addresses are
	// treated as IPv4 (§5.6 last paragraph).
	IP netip.Addr
	// Sender is the MAIL FROM address; when empty, "postmaster@" + Helo is
	// used (the HELO check, §2.3, §4.3).
	Sender string
	// Helo is the HELO/EHLO name (%{h}).
	Helo string
	// Domain is the <domain> to check; when empty, the domain of Sender.
	Domain string
	// ReceivingHost is %{r}, used only in explanations; "unknown" when empty.
	ReceivingHost string
	// Now gives %{t}, used only in explanations; time.Now when nil.
	Now func() time.Time
}

// Checker runs check_host(). The zero limits mean the RFC 7208 defaults.
// A Checker holds no per-call state and may be used concurrently.
type Checker struct {
	Resolver Resolver
	// DefaultExplanation is used for a fail when the record has no usable
	// exp= (§6.2). It is an explain-string, so it may use macros; empty
	// means no explanation.
	DefaultExplanation string
	// LookupLimit, VoidLimit, MXLimit and PTRLimit override the §4.6.4
	// limits when positive.
	LookupLimit, VoidLimit, MXLimit, PTRLimit int
	// Trace makes CheckHost fill Outcome.Trace with every evaluation step.
	Trace bool
}

// Outcome is the result of one check_host() with the evidence behind it.
type Outcome struct {
	Result Result
	// Mechanism is the text of the term that decided the result ("default"
	// when no mechanism matched and the result is the default neutral;
	// for an error, the term being evaluated; empty when there is none).
	// After a redirect it is a term of the redirect target's record.
	Mechanism string
	// Term is the 1-based index of that term in its record (0 if none).
	Term int
	// Domain is the domain whose record holds Mechanism: Query.Domain, or
	// the last redirect target.
	Domain string
	// Explanation is set for a fail: the expanded exp= text, or the
	// Checker's DefaultExplanation (§6.2).
	Explanation string
	// Lookups and Voids are the DNS-querying terms and void lookups counted
	// while evaluating (§4.6.4), up to the point evaluation stopped.
	Lookups, Voids int
	// Err says why the result is temperror or permerror, and why it is
	// none (ErrNoRecord, ErrInvalidDomain).
	Err error
	// Trace lists the evaluation steps when Checker.Trace is set.
	Trace []Step
}

// Step is one evaluated term (or record) in Outcome.Trace.
type Step struct {
	// Depth is 0 for the queried domain's record and grows by one inside
	// each include or redirect.
	Depth int
	// Domain is the <domain> whose record holds the term.
	Domain string
	// Term is the term's index in its record; 0 for record-level steps
	// (the record fetched, or the default result).
	Term int
	// Text is the term as written, the record text, or "default".
	Text string
	// Match reports whether the mechanism matched.
	Match bool
	// Result is the qualifier's result for a match, the nested result for
	// include and redirect, or the error result; empty otherwise.
	Result Result
	// Detail describes what was looked up and found.
	Detail string
	// Lookups and Voids are the running totals after the step.
	Lookups, Voids int
}

// CheckHost evaluates check_host() (RFC 7208 §4) for q.
func (c *Checker) CheckHost(ctx context.Context, q Query) Outcome {
	ip := q.IP.Unmap()
	if !ip.IsValid() || c.Resolver == nil {
		return Outcome{Result: TempError, Err: ErrBadQuery}
	}
	sender := q.Sender
	if sender == "" {
		sender = "postmaster@" + q.Helo
	}
	local, senderDomain := "", sender
	if at := strings.LastIndexByte(sender, '@'); at >= 0 {
		local, senderDomain = sender[:at], sender[at+1:]
	}
	if local == "" {
		// §4.3: "If the <sender> has no local-part, substitute the
		// string "postmaster" for the local-part."
		local = "postmaster"
	}
	domain := q.Domain
	if domain == "" {
		domain = senderDomain
	}
	e := &evaluation{
		ctx:         ctx,
		res:         c.Resolver,
		ip:          ip,
		lookupLimit: positiveOr(c.LookupLimit, DefaultLookupLimit),
		voidLimit:   positiveOr(c.VoidLimit, DefaultVoidLimit),
		mxLimit:     positiveOr(c.MXLimit, DefaultMXLimit),
		ptrLimit:    positiveOr(c.PTRLimit, DefaultPTRLimit),
		trace:       c.Trace,
	}
	e.env = macroEnv{
		sender:   local + "@" + senderDomain,
		local:    local,
		senderD:  senderDomain,
		ip:       ip,
		helo:     q.Helo,
		receiver: q.ReceivingHost,
		now:      q.Now,
		ptr:      e.validatedName,
	}
	v := e.checkHost(normalizeDomain(domain), 0)
	out := Outcome{
		Result:  v.result,
		Domain:  v.domain,
		Lookups: e.lookups,
		Voids:   e.voids,
		Err:     v.err,
		Trace:   e.steps,
	}
	switch {
	case v.term != nil:
		out.Mechanism, out.Term = v.term.Text, v.term.Index
	case v.result == Neutral && v.err == nil:
		out.Mechanism = "default"
	}
	if v.result == Fail {
		out.Explanation = e.explanation(v, c.DefaultExplanation)
	}
	return out
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// evaluation is the state of one CheckHost call: the limits are global to
// all nested include and redirect evaluations (§4.6.4).
type evaluation struct {
	ctx   context.Context
	res   Resolver
	ip    netip.Addr
	env   macroEnv
	trace bool
	steps []Step

	lookups, voids                            int
	lookupLimit, voidLimit, mxLimit, ptrLimit int

	// stack holds the lower-cased domains being evaluated, outermost
	// first, to report include/redirect loops.
	stack []string

	// ptrNames caches the validated names of ip for %{p}.
	ptrNames   []string
	ptrFetched bool
}

// verdict is the result of one (possibly nested) check_host().
type verdict struct {
	result Result
	err    error
	domain string  // the <domain> evaluated
	rec    *Record // its record, nil when none was found
	term   *Term   // the matching term, or the term that failed
}

// resultError carries a temperror or permerror out of a mechanism.
type resultError struct {
	result Result
	err    error
}

func (e *resultError) Error() string { return e.err.Error() }
func (e *resultError) Unwrap() error { return e.err }

func tempError(err error) error { return &resultError{TempError, err} }
func permError(err error) error { return &resultError{PermError, err} }

// splitResultError returns the result and the inner error of err.
func splitResultError(err error) (Result, error) {
	var re *resultError
	if errors.As(err, &re) {
		return re.result, re.err
	}
	return PermError, err
}

// checkHost is check_host(<ip>, <domain>, <sender>) of RFC 7208 §4.
func (e *evaluation) checkHost(domain string, depth int) verdict {
	v := verdict{domain: domain}
	// §4.3 initial processing: a malformed <domain> gives none.
	if err := checkDomain(domain); err != nil {
		v.result, v.err = None, err
		e.addStep(Step{Depth: depth, Domain: domain, Text: domain, Result: None, Detail: err.Error()})
		return v
	}
	key := strings.ToLower(domain)
	for _, d := range e.stack {
		if d == key {
			v.result, v.err = PermError, fmt.Errorf("%w: %s is already being evaluated (%s)", ErrLoop, domain, strings.Join(append(e.stack[:len(e.stack):len(e.stack)], key), " -> "))
			e.addStep(Step{Depth: depth, Domain: domain, Text: domain, Result: PermError, Detail: v.err.Error()})
			return v
		}
	}
	e.stack = append(e.stack, key)
	defer func() { e.stack = e.stack[:len(e.stack)-1] }()

	text, result, err := e.fetchRecord(domain)
	if err != nil {
		v.result, v.err = result, err
		e.addStep(Step{Depth: depth, Domain: domain, Text: domain, Result: result, Detail: err.Error()})
		return v
	}
	rec, err := Parse(text)
	if err != nil {
		v.result, v.err = PermError, fmt.Errorf("%s: %w", domain, err)
		e.addStep(Step{Depth: depth, Domain: domain, Text: text, Result: PermError, Detail: err.Error()})
		return v
	}
	v.rec = rec
	e.addStep(Step{Depth: depth, Domain: domain, Text: text, Detail: "record"})

	// §4.6.2: mechanisms are evaluated in order; the first match decides.
	for i := range rec.Terms {
		t := &rec.Terms[i]
		if t.Mechanism == nil {
			continue
		}
		idx := e.addStep(Step{Depth: depth, Domain: domain, Term: t.Index, Text: t.Text})
		match, detail, err := e.mechanism(t.Mechanism, domain, depth)
		e.setStep(idx, match, detail, err, t.Mechanism.Qualifier.Result())
		if err != nil {
			v.result, v.err = splitResultError(err)
			v.term = t
			return v
		}
		if match {
			v.result, v.term = t.Mechanism.Qualifier.Result(), t
			return v
		}
	}

	// §6.1: redirect is used only when no mechanism matched (so never
	// with "all" in the record).
	if rt := rec.Redirect; rt != nil {
		idx := e.addStep(Step{Depth: depth, Domain: domain, Term: rt.Index, Text: rt.Text})
		if err := e.countLookup(); err != nil {
			e.setStep(idx, false, "", err, "")
			v.result, v.err = splitResultError(err)
			v.term = rt
			return v
		}
		target := e.expandName(rt.Modifier.Value, domain)
		e.setStep(idx, false, e.note("evaluating the record of %s", target), nil, "")
		inner := e.checkHost(target, depth+1)
		if e.trace {
			e.steps[idx].Result = inner.result
		}
		if inner.result == None {
			// §6.1: "if no SPF record is found, or if the <target-name>
			// is malformed, the result is a "permerror" rather than "none"."
			v.result, v.err, v.term = PermError, fmt.Errorf("%w: %s: %w", ErrRedirectNone, rt.Text, inner.err), rt
			return v
		}
		if inner.term == nil && inner.rec == nil {
			// The target failed before any term (a DNS error, a loop,
			// a syntax error): attribute the result to this redirect.
			v.result, v.err, v.term = inner.result, inner.err, rt
			return v
		}
		return inner
	}
	// §4.7: no match and no redirect: neutral.
	e.addStep(Step{Depth: depth, Domain: domain, Text: "default", Result: Neutral, Detail: "no mechanism matched"})
	v.result = Neutral
	return v
}

// mechanism evaluates one mechanism (RFC 7208 §5) against e.ip.
func (e *evaluation) mechanism(m *Mechanism, domain string, depth int) (match bool, detail string, err error) {
	if m.Kind.CountsLookup() {
		if err := e.countLookup(); err != nil {
			return false, "", err
		}
	}
	switch m.Kind {
	case MechAll:
		return true, "", nil
	case MechIP4, MechIP6:
		// §5.6: an IPv4 client never matches ip6, and vice versa.
		return e.ip.Is4() == (m.Kind == MechIP4) && m.Network.Masked().Contains(e.ip), "", nil
	case MechA:
		name := e.expandName(m.Domain, domain)
		if err := checkTargetName(name); err != nil {
			return false, err.Error(), nil
		}
		return e.matchAddrs(name, m, true)
	case MechMX:
		return e.mx(m, e.expandName(m.Domain, domain))
	case MechPTR:
		return e.ptr(e.expandName(m.Domain, domain))
	case MechExists:
		name := e.expandName(m.Domain, domain)
		if err := checkTargetName(name); err != nil {
			return false, err.Error(), nil
		}
		// §5.7: the lookup type is A even for an IPv6 client.
		rrs, void, err := e.query(name, dns.TypeA)
		if err != nil {
			return noMatchOrTemp(err)
		}
		if void {
			return false, e.note("A %s: none", name), e.addVoid(name)
		}
		return true, e.note("A %s: %d records", name, len(rrs)), nil
	case MechInclude:
		return e.include(m, domain, depth)
	}
	return false, "", permError(fmt.Errorf("unknown mechanism %q", m.Kind))
}

// include is RFC 7208 §5.2 and its result table.
func (e *evaluation) include(m *Mechanism, domain string, depth int) (bool, string, error) {
	target := e.expandName(m.Domain, domain)
	inner := e.checkHost(target, depth+1)
	detail := e.note("%s: %s", target, inner.result)
	switch inner.result {
	case Pass:
		return true, detail, nil
	case Fail, SoftFail, Neutral:
		return false, detail, nil
	case TempError:
		return false, detail, tempError(fmt.Errorf("include:%s: %w", target, inner.err))
	case None:
		return false, detail, permError(fmt.Errorf("%w: %s: %w", ErrIncludeNone, target, inner.err))
	default:
		return false, detail, permError(fmt.Errorf("include:%s: %w", target, inner.err))
	}
}

// matchAddrs looks up the addresses of name of the client's family (A for
// IPv4, AAAA for IPv6) and matches them against e.ip with the mechanism's
// prefix lengths (§5.3). countVoid is false for the names of an mx.
func (e *evaluation) matchAddrs(name string, m *Mechanism, countVoid bool) (bool, string, error) {
	qtype, bits := dns.TypeA, m.CIDR4
	if e.ip.Is6() {
		qtype, bits = dns.TypeAAAA, m.CIDR6
	}
	rrs, void, err := e.query(name, qtype)
	if err != nil {
		return noMatchOrTemp(err)
	}
	if void {
		detail := e.note("%s %s: none", dns.TypeToString[qtype], name)
		if countVoid {
			return false, detail, e.addVoid(name)
		}
		return false, detail, nil
	}
	for _, rr := range rrs {
		if a, ok := resolver.RRAddr(rr); ok && netip.PrefixFrom(a, bits).Masked().Contains(e.ip) {
			return true, e.note("%s %s: %s matches", dns.TypeToString[qtype], name, a), nil
		}
	}
	return false, e.note("%s %s: %d addresses, none matches", dns.TypeToString[qtype], name, len(rrs)), nil
}

// mx is RFC 7208 §5.4.
func (e *evaluation) mx(m *Mechanism, name string) (bool, string, error) {
	if err := checkTargetName(name); err != nil {
		return false, err.Error(), nil
	}
	rrs, void, err := e.query(name, dns.TypeMX)
	if err != nil {
		return noMatchOrTemp(err)
	}
	if void {
		// §5.4: no MX records: no match, and no fallback to A (mx-implicit).
		return false, e.note("MX %s: none", name), e.addVoid(name)
	}
	if len(rrs) > e.mxLimit {
		// §4.6.4: "the evaluation of each "MX" record MUST NOT result in
		// querying more than 10 address records"; like pyspf we refuse
		// an MX set over the limit as a whole.
		return false, "", permError(fmt.Errorf("%w: %s has %d MX records; the limit is %d", ErrMXLimit, name, len(rrs), e.mxLimit))
	}
	// A DNS error on one MX host's addresses gives temperror only if no
	// other host matches: a match is a match.
	var firstErr error
	for _, rr := range rrs {
		mx, ok := rr.(*dns.MX)
		if !ok {
			continue
		}
		host := strings.TrimSuffix(mx.Mx, ".")
		if host == "" {
			continue // null MX (RFC 7505): no host
		}
		if checkTargetName(host) != nil {
			continue
		}
		// The address lookups of MX hosts are not counted as void
		// lookups: they are part of one mechanism, whose own void is the
		// MX query (blitiri and pyspf agree).
		match, detail, err := e.matchAddrs(host, m, false)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if match {
			return true, e.note("MX %s: %s", name, detail), nil
		}
	}
	if firstErr != nil {
		return false, "", firstErr
	}
	return false, e.note("MX %s: %d hosts, none matches", name, len(rrs)), nil
}

// ptr is RFC 7208 §5.5.
func (e *evaluation) ptr(target string) (bool, string, error) {
	names, void, err := e.ptrNamesOf()
	if err != nil {
		// §5.5: "If a DNS error occurs while doing the PTR RR lookup,
		// then this mechanism fails to match."
		return false, e.note("PTR: %v", err), nil
	}
	if void {
		return false, e.note("PTR %s: none", reverseName(e.ip)), e.addVoid(reverseName(e.ip))
	}
	if checkTargetName(target) != nil {
		return false, e.note("invalid target %q", target), nil
	}
	for _, n := range names {
		// Checking the name before validating it saves lookups and gives
		// the same answer as §5.5's validate-then-compare order.
		if isSubdomain(n, target) && e.validates(n) {
			return true, e.note("%s validates and is under %s", n, target), nil
		}
	}
	return false, e.note("no validated name under %s among %d", target, len(names)), nil
}

// ptrNamesOf returns the first PTRLimit names of e.ip (§4.6.4: "only the
// first 10 ... MUST be used").
func (e *evaluation) ptrNamesOf() (names []string, void bool, err error) {
	rrs, void, err := e.query(reverseName(e.ip), dns.TypePTR)
	if err != nil || void {
		return nil, void, err
	}
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			names = append(names, strings.TrimSuffix(p.Ptr, "."))
			if len(names) == e.ptrLimit {
				break
			}
		}
	}
	return names, false, nil
}

// validates reports whether name has an address equal to e.ip (§5.5); a
// DNS error skips the name (§5.5: "that domain name is skipped", suite:
// ptr-cname-loop).
func (e *evaluation) validates(name string) bool {
	if checkTargetName(name) != nil {
		return false
	}
	qtype := dns.TypeA
	if e.ip.Is6() {
		qtype = dns.TypeAAAA
	}
	rrs, _, err := e.query(name, qtype)
	if err != nil {
		return false
	}
	for _, rr := range rrs {
		if a, ok := resolver.RRAddr(rr); ok && a == e.ip {
			return true
		}
	}
	return false
}

// validatedName is the %{p} macro (§7.3): a validated name of e.ip equal
// to domain, else one under domain, else any, else "unknown". These
// lookups are not counted against the limits; PTRLimit applies.
func (e *evaluation) validatedName(domain string) string {
	if !e.ptrFetched {
		e.ptrFetched = true
		names, _, _ := e.ptrNamesOf()
		for _, n := range names {
			if e.validates(n) {
				e.ptrNames = append(e.ptrNames, n)
			}
		}
	}
	for _, n := range e.ptrNames {
		if strings.EqualFold(n, domain) {
			return n
		}
	}
	for _, n := range e.ptrNames {
		if isSubdomain(n, domain) {
			return n
		}
	}
	if len(e.ptrNames) > 0 {
		return e.ptrNames[0]
	}
	return "unknown"
}

// fetchRecord does §4.4 and §4.5: the TXT records of domain, of which
// exactly one may start with "v=spf1".
func (e *evaluation) fetchRecord(domain string) (string, Result, error) {
	rrs, void, err := e.query(domain, dns.TypeTXT)
	return selectRecord(domain, rrs, void, err)
}

// selectRecord picks the SPF record among the TXT records of domain (RFC
// 7208 §4.5) from the outcome of their lookup: the record text, or the
// result (none, permerror, temperror) and why. check_host() and the static
// expansion share it so that both read a record set the same way.
func selectRecord(domain string, rrs []dns.RR, void bool, err error) (string, Result, error) {
	switch {
	case errors.Is(err, ErrInvalidDomain):
		return "", None, err
	case err != nil:
		return "", TempError, err
	case void:
		return "", None, fmt.Errorf("%w: %s has no TXT records", ErrNoRecord, domain)
	}
	var found []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			if s := txtString(t.Txt); IsSPF(s) {
				found = append(found, s)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", None, fmt.Errorf("%w: none of the %d TXT records of %s starts with \"v=spf1\"", ErrNoRecord, len(rrs), domain)
	case 1:
		return found[0], "", nil
	}
	return "", PermError, fmt.Errorf("%w: %s has %d", ErrMultipleRecords, domain, len(found))
}

// explanation computes the explanation of a fail (§6.2): the exp= of the
// record that failed, when its target has exactly one TXT record that is a
// valid explain-string, else the default. Lookup problems are ignored and
// nothing here counts against the limits (suite: exp-void).
func (e *evaluation) explanation(v verdict, def string) string {
	env := e.env
	env.domain = v.domain
	if v.rec != nil && v.rec.Exp != nil {
		if s, ok := e.exp(v.rec.Exp.Modifier.Value, &env); ok {
			return s
		}
	}
	if def == "" {
		return ""
	}
	ms, err := parseMacroString(def, inExplanation)
	if err != nil {
		return def
	}
	return ms.expand(&env)
}

func (e *evaluation) exp(spec *MacroString, env *macroEnv) (string, bool) {
	name := truncateDomain(spec.expand(env))
	if checkTargetName(name) != nil {
		return "", false
	}
	rrs, void, err := e.query(name, dns.TypeTXT)
	if err != nil || void || len(rrs) != 1 {
		return "", false
	}
	t, ok := rrs[0].(*dns.TXT)
	if !ok {
		return "", false
	}
	ms, err := parseMacroString(txtString(t.Txt), inExplanation)
	if err != nil {
		return "", false // includes non-ASCII text (suite: non-ascii-exp)
	}
	return ms.expand(env), true
}

// expandName expands a domain-spec for <domain> (nil means <domain>
// itself) and truncates it to 253 characters (§7.3).
func (e *evaluation) expandName(spec *MacroString, domain string) string {
	if spec == nil {
		return domain
	}
	env := e.env
	env.domain = domain
	return truncateDomain(spec.expand(&env))
}

// countLookup counts one DNS-querying term (§4.6.4).
func (e *evaluation) countLookup() error {
	e.lookups++
	if e.lookups > e.lookupLimit {
		return permError(fmt.Errorf("%w: this is term %d to query DNS; the limit is %d (RFC 7208 §4.6.4)", ErrLookupLimit, e.lookups, e.lookupLimit))
	}
	return nil
}

// addVoid counts a lookup that answered NXDOMAIN or NODATA (§4.6.4).
func (e *evaluation) addVoid(name string) error {
	e.voids++
	if e.voids > e.voidLimit {
		return permError(fmt.Errorf("%w: %s is void lookup %d; the limit is %d (RFC 7208 §4.6.4)", ErrVoidLimit, name, e.voids, e.voidLimit))
	}
	return nil
}

// query asks the resolver for name's records of type qtype (see queryRRs).
func (e *evaluation) query(name string, qtype uint16) (rrs []dns.RR, void bool, err error) {
	return queryRRs(e.ctx, e.res, name, qtype)
}

// queryRRs asks res for name's records of type qtype. void is true for
// NXDOMAIN and NODATA. A name the resolver refuses as invalid gives an error
// wrapping ErrInvalidDomain (callers treat it as no match); any other
// failure wraps ErrDNS (temperror).
func queryRRs(ctx context.Context, res Resolver, name string, qtype uint16) (rrs []dns.RR, void bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("%w: %s %s: %w", ErrDNS, dns.TypeToString[qtype], name, err)
	}
	ans, err := res.Lookup(ctx, dns.Fqdn(name), qtype)
	if err != nil {
		if errors.Is(err, resolver.ErrBadName) {
			return nil, false, fmt.Errorf("%w: %w", ErrInvalidDomain, err)
		}
		return nil, false, fmt.Errorf("%w: %s %s: %w", ErrDNS, dns.TypeToString[qtype], name, err)
	}
	if ans == nil {
		return nil, true, nil
	}
	for _, rr := range ans.Records {
		if rr != nil && rr.Header().Rrtype == qtype {
			rrs = append(rrs, rr)
		}
	}
	return rrs, len(rrs) == 0, nil
}

// noMatchOrTemp turns a query error into a mechanism result: a name the
// resolver refuses as invalid does not match (like checkTargetName), any
// other failure is a temperror (§5: "check_host() terminates immediately
// with the result "temperror"").
func noMatchOrTemp(err error) (bool, string, error) {
	if errors.Is(err, ErrInvalidDomain) {
		return false, err.Error(), nil
	}
	return false, "", tempError(err)
}

// txtString joins the strings of one TXT record with no separator (§3.3),
// decoding miekg's presentation escapes (\" \\ \DDD) back to bytes.
func txtString(parts []string) string {
	escaped := false
	for _, s := range parts {
		if strings.IndexByte(s, '\\') >= 0 {
			escaped = true
			break
		}
	}
	if !escaped {
		return strings.Join(parts, "")
	}
	var b strings.Builder
	for _, s := range parts {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c != '\\' || i+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				if v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); v <= 255 {
					b.WriteByte(byte(v))
					i += 3
					continue
				}
			}
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// note formats a trace detail, only when tracing.
func (e *evaluation) note(format string, args ...any) string {
	if !e.trace {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

// addStep appends a trace step and returns its index (-1 when not tracing).
func (e *evaluation) addStep(s Step) int {
	if !e.trace {
		return -1
	}
	s.Lookups, s.Voids = e.lookups, e.voids
	e.steps = append(e.steps, s)
	return len(e.steps) - 1
}

// setStep completes the step at idx after its term was evaluated.
func (e *evaluation) setStep(idx int, match bool, detail string, err error, onMatch Result) {
	if idx < 0 {
		return
	}
	s := &e.steps[idx]
	s.Match, s.Detail = match, detail
	s.Lookups, s.Voids = e.lookups, e.voids
	switch {
	case err != nil:
		s.Result, _ = splitResultError(err)
		if s.Detail == "" {
			s.Detail = err.Error()
		} else {
			s.Detail += ": " + err.Error()
		}
	case match:
		s.Result = onMatch
	}
}
