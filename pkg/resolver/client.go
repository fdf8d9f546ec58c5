package resolver

import (
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
}

// Client is a caching, deduplicating DNS client. One Client serves a whole run:
// every (name, type) question is sent at most once, however many checks ask
// it and however concurrently. It is safe for concurrent use.
type Client struct {
	servers        []string
	attemptTimeout time.Duration
	udpSize        uint16

	mu    sync.Mutex
	cache map[cacheKey]*flight
	log   []LogEntry
}

type cacheKey struct {
	server string // "" for recursive lookups through the configured servers
	name   string
	qtype  uint16
}

// flight is one question, in flight or answered. Waiters block on done.
type flight struct {
	done chan struct{}
	ans  *Answer
	err  error
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
		cache:          make(map[cacheKey]*flight),
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
	cn, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	return c.resolve(ctx, cn, qtype, 0, nil)
}

// QueryServer asks one server directly, without recursion (RD=0), and does
// not follow CNAMEs: this is how one reads what a zone's own authoritative
// servers publish (the propagation check). Answers are cached per server.
func (c *Client) QueryServer(ctx context.Context, server, name string, qtype uint16) (*Answer, error) {
	cn, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	addr, err := ParseServer(server)
	if err != nil {
		return nil, err
	}
	return c.cached(ctx, cacheKey{server: addr, name: cn, qtype: qtype}, func() (*Answer, error) {
		return c.exchangeOne(ctx, addr, cn, qtype, false)
	})
}

// resolve answers one question through the cache, then chases a CNAME chain
// whose end the server did not include (an authoritative-only server, or a
// chain that leaves the server's zones).
func (c *Client) resolve(ctx context.Context, name string, qtype uint16, depth int, seen []string) (*Answer, error) {
	ans, err := c.cached(ctx, cacheKey{name: name, qtype: qtype}, func() (*Answer, error) {
		return c.exchangeServers(ctx, name, qtype)
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
	next, err := c.resolve(ctx, target, qtype, depth+len(ans.CNAMEs), seen)
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
// spoilt by the caller's own cancelled context is not kept, so a later caller
// with a live context asks again.
func (c *Client) cached(ctx context.Context, key cacheKey, fn func() (*Answer, error)) (*Answer, error) {
	c.mu.Lock()
	if f, ok := c.cache[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.ans, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s %s: %v", ErrTimeout, key.name, dns.TypeToString[key.qtype], ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	c.cache[key] = f
	c.mu.Unlock()

	f.ans, f.err = fn()
	if f.err != nil && ctx.Err() != nil {
		c.mu.Lock()
		delete(c.cache, key)
		c.mu.Unlock()
	}
	close(f.done)
	return f.ans, f.err
}

// exchangeServers tries each configured server in turn until one gives an
// answer (NOERROR or NXDOMAIN). SERVFAIL, REFUSED, other rcodes and timeouts
// move on to the next server; the last failure is returned.
func (c *Client) exchangeServers(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	var lastAns *Answer
	var lastErr error
	for _, server := range c.servers {
		if ctx.Err() != nil {
			break
		}
		ans, err := c.exchangeOne(ctx, server, name, qtype, true)
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
func (c *Client) exchangeOne(ctx context.Context, server, name string, qtype uint16, recurse bool) (*Answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = recurse
	// Setting AD in a query asks the server to report whether it validated
	// the answer (RFC 6840 §5.7), without asking for DNSSEC records (DO=0).
	m.AuthenticatedData = true
	m.SetEdns0(c.udpSize, false)

	resp, rtt, err := c.send(ctx, "udp", server, m)
	if err == nil && resp.Truncated {
		resp, rtt, err = c.send(ctx, "tcp", server, m)
	}
	if err != nil {
		out := OutcomeNetError
		class := ErrNetwork
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout()) {
			out, class = OutcomeTimeout, ErrTimeout
		}
		return &Answer{Name: name, Type: qtype, Outcome: out, Server: server, RTT: rtt},
			fmt.Errorf("%w: %s %s via %s: %v", class, strings.TrimSuffix(name, "."), dns.TypeToString[qtype], server, err)
	}
	return classify(name, qtype, server, rtt, resp)
}

// send performs one exchange and logs it. The per-attempt timeout is the
// earlier of the attempt budget and the context deadline.
func (c *Client) send(ctx context.Context, proto, server string, m *dns.Msg) (*dns.Msg, time.Duration, error) {
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
	c.mu.Lock()
	c.log = append(c.log, entry)
	c.mu.Unlock()
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

// Log returns a copy of the query log, in the order the exchanges finished.
func (c *Client) Log() []LogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogEntry(nil), c.log...)
}

// Stats counts the exchanges sent, the distinct questions they carried
// (name, type and, for direct queries, server) and the exchanges that failed.
func (c *Client) Stats() (queries, distinct, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[cacheKey]bool)
	for _, e := range c.log {
		k := cacheKey{name: e.Name, qtype: e.Type}
		if !e.RD {
			k.server = e.Server
		}
		seen[k] = true
		if e.Err != "" && e.Err != "truncated" || e.Rcode == "SERVFAIL" || e.Rcode == "REFUSED" {
			failed++
		}
	}
	return len(c.log), len(seen), failed
}
