package resolver

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults. Two seconds per attempt is what miekg/dns and most stub resolvers
// use; the caller's context deadline always wins when it is earlier.
const (
	DefaultAttemptTimeout = 2 * time.Second
	// DefaultUDPSize is the EDNS0 buffer size recommended by DNS Flag Day
	// 2020 to avoid IP fragmentation (RFC 6891 §6.2.5 leaves the choice open).
	DefaultUDPSize = 1232
	// maxCNAMEChain bounds alias chasing; real chains longer than a handful
	// are misconfigurations (RFC 1034 §3.6.2 discourages chains at all).
	maxCNAMEChain = 8
)

// Config configures a Client.
type Config struct {
	// Servers are "host" or "host:port" (IPv6 as "[::1]:53" or bare "::1");
	// when empty, the nameserver lines of ResolvConf are used.
	Servers []string
	// ResolvConf is the resolv.conf to read when Servers is empty
	// (default /etc/resolv.conf).
	ResolvConf string
	// AttemptTimeout bounds one exchange with one server.
	AttemptTimeout time.Duration
	// UDPSize is the EDNS0 UDP payload size we advertise.
	UDPSize uint16

	// CacheSize bounds the number of answered questions the cache keeps;
	// the least recently used answer goes first. 0 keeps every answer for
	// the Client's lifetime, which is right for one domain's run and wrong
	// for a bulk run of thousands. Questions in flight are never evicted
	// (they are bounded by the callers waiting on them), so in-flight
	// dedupe is the same with or without a bound, and evicting an answer
	// never disturbs a caller already holding it: a later caller just asks
	// the question again.
	CacheSize int
	// NoLog keeps no query log on the Client (Log returns nil) while Stats
	// and Counts keep counting. Bulk runs set it: the log otherwise grows
	// by one entry per exchange for as long as the Client lives. Views
	// (see View) keep their own logs either way.
	NoLog bool
	// Rate limits the exchanges sent by the Client and all its Views,
	// together, to this many per second (0 = unlimited). A token bucket
	// with a burst of a twentieth of a second's worth (at least one); a
	// caller waits for its turn while its context allows, and a turn that
	// would come after the context's deadline fails at once as a timeout.
	Rate float64
	// Attempts is how many times one server is asked over UDP when no
	// reply comes within AttemptTimeout (0 or 1 = once, today's
	// behaviour). UDP has no delivery guarantee, and a burst of thousands
	// of queries loses some even on loopback; stub resolvers retry for that
	// reason (resolv.conf "attempts", default 2).
	Attempts int
	// ForgetFailures shares a failed answer (SERVFAIL, REFUSED, timeout,
	// network error) only with the callers already waiting on it, then
	// drops it, so the next caller asks again. The default keeps it like
	// any answer, so one run asks a failing question once; in a bulk run
	// that would turn one lost packet for a shared name (the gateway's
	// include, a shared MX host) into an error for every later domain.
	ForgetFailures bool
}

// Client is a caching, deduplicating DNS client. One Client serves a whole run:
// every (name, type) question is sent at most once, however many checks ask
// it and however concurrently. It is safe for concurrent use.
type Client struct {
	servers        []string
	attemptTimeout time.Duration
	udpSize        uint16
	cacheSize      int
	noLog          bool
	attempts       int
	forgetFailures bool
	limiter        *limiter // nil = unlimited

	mu    sync.Mutex
	cache map[cacheKey]*flight
	lru   list.List // answered flights, most recently used first (only when cacheSize > 0)
	log   []LogEntry
	count Counts
}

// Counts are the Client's running totals, over the Client and all its
// Views. They are kept whether or not the query log is.
type Counts struct {
	// Queries is the number of exchanges sent (a TCP retry after
	// truncation and a retry on the next server count separately).
	Queries int
	// Questions is the number of questions that went on the wire: cache
	// misses that sent at least one exchange. A question asked again after
	// its answer was evicted, or after a failure spoilt by a cancelled
	// context, counts again.
	Questions int
	// Failed is the number of exchanges that failed (no reply, SERVFAIL,
	// REFUSED).
	Failed int
	// Hits is the number of questions answered from the cache or by
	// waiting on the same question already in flight.
	Hits int
	// Evictions is the number of answers dropped to honour CacheSize.
	Evictions int
	// Cached is the number of questions in the cache now, in flight or
	// answered.
	Cached int
}

type cacheKey struct {
	server string // "" for recursive lookups through the configured servers
	name   string
	qtype  uint16
}

// flight is one question, in flight or answered. Waiters block on done.
type flight struct {
	key  cacheKey
	done chan struct{}
	ans  *Answer
	err  error
	// spoilt: the asker's own context ended the question, so the result
	// says nothing about the name; waiters with a live context ask again.
	spoilt bool
	// elem is the flight's place in the LRU list once answered and kept.
	elem *list.Element
}

// call is one question being sent: whose run it is charged to, and whether
// any exchange went on the wire for it.
type call struct {
	view *View // nil: the Client's own caller
	sent bool
}

// LogEntry is one exchange on the wire (a TCP retry after truncation and a
// retry on the next server are entries of their own).
type LogEntry struct {
	Name    string
	Type    uint16
	Server  string
	Proto   string // "udp" or "tcp"
	RD      bool   // recursion desired: false for direct authoritative queries
	Rcode   string // "NOERROR", "NXDOMAIN", ... or "" when no reply came
	RTT     time.Duration
	Answers int
	Err     string
	At      time.Time
}

// New builds a Client.
func New(cfg Config) (*Client, error) {
	servers := cfg.Servers
	if len(servers) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		var err error
		servers, err = ServersFromResolvConf(path)
		if err != nil {
			return nil, err
		}
	}
	norm := make([]string, 0, len(servers))
	for _, s := range servers {
		addr, err := ParseServer(s)
		if err != nil {
			return nil, err
		}
		norm = append(norm, addr)
	}
	if len(norm) == 0 {
		return nil, errors.New("resolver: no DNS servers configured")
	}
	c := &Client{
		servers:        norm,
		attemptTimeout: cfg.AttemptTimeout,
		udpSize:        cfg.UDPSize,
		cacheSize:      max(cfg.CacheSize, 0),
		noLog:          cfg.NoLog,
		attempts:       max(cfg.Attempts, 1),
		forgetFailures: cfg.ForgetFailures,
		cache:          make(map[cacheKey]*flight),
	}
	if cfg.Rate > 0 {
		c.limiter = newLimiter(cfg.Rate, time.Now)
	}
	if c.attemptTimeout <= 0 {
		c.attemptTimeout = DefaultAttemptTimeout
	}
	if c.udpSize == 0 {
		c.udpSize = DefaultUDPSize
	}
	return c, nil
}

// ServersFromResolvConf returns the nameserver addresses (host:port) of a
// resolv.conf file.
func ServersFromResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resolver: reading %s: %w", path, err)
	}
	defer f.Close()
	cc, err := dns.ClientConfigFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("resolver: parsing %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("resolver: %s lists no nameserver", path)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		// Link-local IPv6 servers carry a zone ("fe80::1%eth0"); keep it.
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

// ParseServer normalises "host", "host:port", "[v6]:port" and a bare IPv6
// address into host:port, defaulting the port to 53. The host must be an IP
// address: resolving a resolver's name would need a resolver.
func ParseServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("resolver: empty server address")
	}
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	ip := net.ParseIP(strings.SplitN(host, "%", 2)[0])
	if ip == nil {
		return "", fmt.Errorf("resolver: server %q: %q is not an IP address", s, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("resolver: server %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// Servers returns the configured servers, host:port.
func (c *Client) Servers() []string { return append([]string(nil), c.servers...) }

// Lookup asks the configured servers for (name, qtype) with recursion desired
// and follows CNAMEs. See the package documentation for the error contract.
func (c *Client) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	return c.lookup(ctx, nil, name, qtype)
}

func (c *Client) lookup(ctx context.Context, v *View, name string, qtype uint16) (*Answer, error) {
	cn, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	return c.resolve(ctx, v, cn, qtype, 0, nil)
}

// QueryServer asks one server directly, without recursion (RD=0), and does
// not follow CNAMEs: this is how one reads what a zone's own authoritative
// servers publish (the propagation check). Answers are cached per server.
func (c *Client) QueryServer(ctx context.Context, server, name string, qtype uint16) (*Answer, error) {
	return c.queryServer(ctx, nil, server, name, qtype)
}

func (c *Client) queryServer(ctx context.Context, v *View, server, name string, qtype uint16) (*Answer, error) {
	cn, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	addr, err := ParseServer(server)
	if err != nil {
		return nil, err
	}
	return c.cached(ctx, v, cacheKey{server: addr, name: cn, qtype: qtype}, func(cl *call) (*Answer, error) {
		return c.exchangeOne(ctx, cl, addr, cn, qtype, false)
	})
}

// resolve answers one question through the cache, then chases a CNAME chain
// whose end the server did not include (an authoritative-only server, or a
// chain that leaves the server's zones).
func (c *Client) resolve(ctx context.Context, v *View, name string, qtype uint16, depth int, seen []string) (*Answer, error) {
	ans, err := c.cached(ctx, v, cacheKey{name: name, qtype: qtype}, func(cl *call) (*Answer, error) {
		return c.exchangeServers(ctx, cl, name, qtype)
	})
	if err != nil || qtype == dns.TypeCNAME || len(ans.CNAMEs) == 0 || !ans.needsChase {
		return ans, err
	}
	target := ans.CNAMEs[len(ans.CNAMEs)-1]
	seen = append(seen, name)
	seen = append(seen, ans.CNAMEs[:len(ans.CNAMEs)-1]...)
	for _, s := range seen {
		if s == target {
			return ans, fmt.Errorf("%w: %s loops back to %s", ErrCNAME, name, target)
		}
	}
	if depth+len(ans.CNAMEs) > maxCNAMEChain {
		return ans, fmt.Errorf("%w: more than %d aliases from %s", ErrCNAME, maxCNAMEChain, name)
	}
	next, err := c.resolve(ctx, v, target, qtype, depth+len(ans.CNAMEs), seen)
	if next == nil {
		return ans, err
	}
	merged := *next
	merged.Name = ans.Name
	merged.CNAMEs = append(append([]string(nil), ans.CNAMEs...), next.CNAMEs...)
	merged.needsChase = false
	if ans.TTL < merged.TTL {
		merged.TTL = ans.TTL
	}
	merged.AD = ans.AD && next.AD
	return &merged, err
}

// cached runs fn once per key; concurrent callers wait for the first. A result
// spoilt by the asker's own cancelled context is not kept, and a waiter whose
// context is still live asks again rather than inherit someone else's
// timeout (in a bulk run, one domain's deadline must not become another's
// error).
func (c *Client) cached(ctx context.Context, v *View, key cacheKey, fn func(*call) (*Answer, error)) (*Answer, error) {
	for {
		c.mu.Lock()
		if f, ok := c.cache[key]; ok {
			if f.elem != nil {
				c.lru.MoveToFront(f.elem)
			}
			c.mu.Unlock()
			select {
			case <-f.done:
				if f.spoilt && !ctxOver(ctx) {
					continue
				}
				if !f.spoilt {
					c.mu.Lock()
					c.count.Hits++
					c.mu.Unlock()
				}
				v.noteAnswer(key, false, !f.spoilt)
				return f.ans, f.err
			case <-ctx.Done():
				v.noteAnswer(key, false, false)
				return nil, fmt.Errorf("%w: %s %s: %v", ErrTimeout, key.name, dns.TypeToString[key.qtype], ctx.Err())
			}
		}
		f := &flight{key: key, done: make(chan struct{})}
		c.cache[key] = f
		c.mu.Unlock()

		cl := &call{view: v}
		f.ans, f.err = fn(cl)
		c.mu.Lock()
		if cl.sent {
			c.count.Questions++
		}
		if f.err != nil && ctxOver(ctx) {
			f.spoilt = true
			if c.cache[key] == f {
				delete(c.cache, key)
			}
		} else if f.err != nil && c.forgetFailures {
			if c.cache[key] == f {
				delete(c.cache, key)
			}
		} else if c.cacheSize > 0 {
			f.elem = c.lru.PushFront(f)
			for c.lru.Len() > c.cacheSize {
				old := c.lru.Remove(c.lru.Back()).(*flight)
				old.elem = nil
				if c.cache[old.key] == old {
					delete(c.cache, old.key)
				}
				c.count.Evictions++
			}
		}
		c.mu.Unlock()
		v.noteAnswer(key, cl.sent, false)
		close(f.done)
		return f.ans, f.err
	}
}

// isTimeout reports whether an exchange failed for want of a reply in time.
func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout()))
}

// ctxOver reports whether ctx has ended, counting a deadline that has passed
// even before the context's own timer has fired: an exchange timed out by a
// read deadline equal to the context's returns a hair before ctx.Err() is set.
func ctxOver(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// exchangeServers tries each configured server in turn until one gives an
// answer (NOERROR or NXDOMAIN). SERVFAIL, REFUSED, other rcodes and timeouts
// move on to the next server; the last failure is returned.
func (c *Client) exchangeServers(ctx context.Context, cl *call, name string, qtype uint16) (*Answer, error) {
	var lastAns *Answer
	var lastErr error
	for _, server := range c.servers {
		if ctx.Err() != nil {
			break
		}
		ans, err := c.exchangeOne(ctx, cl, server, name, qtype, true)
		if err == nil {
			return ans, nil
		}
		lastAns, lastErr = ans, err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%w: %s %s: %v", ErrTimeout, name, dns.TypeToString[qtype], ctx.Err())
		lastAns = &Answer{Name: name, Type: qtype, Outcome: OutcomeTimeout}
	}
	return lastAns, lastErr
}

// exchangeOne sends one question to one server over UDP, retrying over TCP
// when the reply is truncated (RFC 7766 §5: TCP is the fallback for TC=1).
func (c *Client) exchangeOne(ctx context.Context, cl *call, server, name string, qtype uint16, recurse bool) (*Answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = recurse
	// Setting AD in a query asks the server to report whether it validated
	// the answer (RFC 6840 §5.7), without asking for DNSSEC records (DO=0).
	m.AuthenticatedData = true
	m.SetEdns0(c.udpSize, false)

	resp, rtt, err := c.send(ctx, cl, "udp", server, m)
	for try := 1; try < c.attempts && isTimeout(err) && !ctxOver(ctx); try++ {
		resp, rtt, err = c.send(ctx, cl, "udp", server, m)
	}
	if err == nil && resp.Truncated {
		resp, rtt, err = c.send(ctx, cl, "tcp", server, m)
	}
	if err != nil {
		out := OutcomeNetError
		class := ErrNetwork
		if isTimeout(err) {
			out, class = OutcomeTimeout, ErrTimeout
		}
		return &Answer{Name: name, Type: qtype, Outcome: out, Server: server, RTT: rtt},
			fmt.Errorf("%w: %s %s via %s: %v", class, strings.TrimSuffix(name, "."), dns.TypeToString[qtype], server, err)
	}
	return classify(name, qtype, server, rtt, resp)
}

// send performs one exchange and logs it. The per-attempt timeout is the
// earlier of the attempt budget and the context deadline. With a rate limit
// the exchange first waits for its turn; one that cannot have a turn before
// the deadline is not sent (and not logged).
func (c *Client) send(ctx context.Context, cl *call, proto, server string, m *dns.Msg) (*dns.Msg, time.Duration, error) {
	if c.limiter != nil {
		if err := c.limiter.wait(ctx); err != nil {
			return nil, 0, err
		}
	}
	timeout := c.attemptTimeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = left
		}
	}
	entry := LogEntry{Name: m.Question[0].Name, Type: m.Question[0].Qtype, Server: server, Proto: proto, RD: m.RecursionDesired, At: time.Now()}
	var resp *dns.Msg
	var rtt time.Duration
	var err error
	if timeout <= 0 {
		err = context.DeadlineExceeded
	} else {
		cl := &dns.Client{Net: proto, Timeout: timeout, UDPSize: c.udpSize}
		actx, cancel := context.WithTimeout(ctx, timeout)
		resp, rtt, err = cl.ExchangeContext(actx, m, server)
		cancel()
		if err == nil && resp == nil {
			err = errors.New("empty reply")
		}
	}
	if err != nil {
		entry.Err = err.Error()
		if rtt == 0 {
			rtt = time.Since(entry.At)
		}
	} else {
		entry.Rcode = dns.RcodeToString[resp.Rcode]
		entry.Answers = len(resp.Answer)
		if resp.Truncated {
			entry.Err = "truncated"
		}
	}
	entry.RTT = rtt
	cl.sent = true
	c.mu.Lock()
	c.count.Queries++
	if entry.failed() {
		c.count.Failed++
	}
	if !c.noLog {
		c.log = append(c.log, entry)
	}
	c.mu.Unlock()
	cl.view.record(entry)
	return resp, rtt, err
}

// classify turns a reply into an Answer: it walks the CNAME chain inside the
// answer section, keeps the records of the asked type at the chain's end, and
// maps the rcode to an Outcome (RFC 6604: the rcode describes the last name).
func classify(name string, qtype uint16, server string, rtt time.Duration, resp *dns.Msg) (*Answer, error) {
	ans := &Answer{Name: name, Type: qtype, Rcode: resp.Rcode, AD: resp.AuthenticatedData, AA: resp.Authoritative,
		Authority: resp.Ns, Server: server, RTT: rtt}
	qname := strings.TrimSuffix(name, ".")
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeServerFailure:
		ans.Outcome = OutcomeServFail
		return ans, fmt.Errorf("%w: %s %s via %s", ErrServFail, qname, dns.TypeToString[qtype], server)
	case dns.RcodeRefused:
		ans.Outcome = OutcomeRefused
		return ans, fmt.Errorf("%w: %s %s via %s", ErrRefused, qname, dns.TypeToString[qtype], server)
	default:
		ans.Outcome = OutcomeNetError
		return ans, fmt.Errorf("%w: %s %s via %s: rcode %s", ErrNetwork, qname, dns.TypeToString[qtype], server, dns.RcodeToString[resp.Rcode])
	}

	cur := name
	minTTL := ^uint32(0)
	for hops := 0; hops <= maxCNAMEChain+1; hops++ {
		var next string
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, cur) {
				continue
			}
			if h.Rrtype == qtype {
				ans.Records = append(ans.Records, rr)
				minTTL = min(minTTL, h.Ttl)
			} else if cn, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME && next == "" {
				next = strings.ToLower(dns.Fqdn(cn.Target))
				minTTL = min(minTTL, h.Ttl)
			}
		}
		if len(ans.Records) > 0 || next == "" {
			break
		}
		ans.CNAMEs = append(ans.CNAMEs, next)
		cur = next
	}

	switch {
	case len(ans.Records) > 0:
		ans.Outcome = OutcomeOK
	case resp.Rcode == dns.RcodeNameError:
		ans.Outcome = OutcomeNXDomain
	default:
		ans.Outcome = OutcomeNoData
	}
	if ans.Outcome != OutcomeOK {
		// Negative answers are cached for min(SOA TTL, SOA MINIMUM)
		// (RFC 2308 §5); report that as the answer's TTL.
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				minTTL = min(minTTL, soa.Hdr.Ttl, soa.Minttl)
			}
		}
		// A chain that ends at a target this server said nothing about
		// (no records, no SOA, NOERROR) was not resolved here: ask for the
		// target separately.
		if len(ans.CNAMEs) > 0 && resp.Rcode == dns.RcodeSuccess && !hasSOA(resp.Ns) {
			ans.needsChase = true
		}
	}
	if minTTL == ^uint32(0) {
		minTTL = 0
	}
	ans.TTL = minTTL
	return ans, nil
}

func hasSOA(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

// Log returns a copy of the query log, in the order the exchanges finished
// (nil with Config.NoLog).
func (c *Client) Log() []LogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogEntry(nil), c.log...)
}

// Stats counts the exchanges sent, the distinct questions they carried
// (name, type and, for direct queries, server) and the exchanges that failed,
// over the Client and all its Views. With Config.NoLog there is no log to
// find distinct questions in, and distinct is Counts().Questions: the same
// number unless an evicted or spoilt answer was asked for again.
func (c *Client) Stats() (queries, distinct, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noLog {
		return c.count.Queries, c.count.Questions, c.count.Failed
	}
	seen := make(map[cacheKey]bool)
	for _, e := range c.log {
		k := cacheKey{name: e.Name, qtype: e.Type}
		if !e.RD {
			k.server = e.Server
		}
		seen[k] = true
		if e.failed() {
			failed++
		}
	}
	return len(c.log), len(seen), failed
}

// Counts returns the Client's running totals.
func (c *Client) Counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.count
	n.Cached = len(c.cache)
	return n
}

// failed reports whether the exchange failed: no reply, or a reply that
// refuses to answer. A truncated reply is not a failure (TCP follows).
func (e LogEntry) failed() bool {
	return e.Err != "" && e.Err != "truncated" || e.Rcode == "SERVFAIL" || e.Rcode == "REFUSED"
}
