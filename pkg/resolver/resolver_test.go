package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

const zoneA = `$ORIGIN a.test.
$TTL 300
@     IN SOA ns.a.test. host.a.test. 1 3600 600 86400 60
      IN NS  ns.a.test.
ns    IN A   127.0.0.1
@     IN MX  10 mx.a.test.
mx    IN A   127.0.9.1
mx    IN AAAA ::1
alias IN CNAME mx.a.test.
out   IN CNAME host.b.test.
big   IN TXT "` + "%[1]s" + `" "` + "%[1]s" + `"
big   IN TXT "` + "%[2]s" + `" "` + "%[2]s" + `"
big   IN TXT "` + "%[3]s" + `" "` + "%[3]s" + `"
big   IN TXT "` + "%[4]s" + `" "` + "%[4]s" + `"
`

const zoneB = `$ORIGIN b.test.
$TTL 120
@     IN SOA ns.b.test. host.b.test. 1 3600 600 86400 30
      IN NS  ns.b.test.
host  IN A   127.0.9.2
`

func parse(t *testing.T, text, origin string) *dnstest.Zone {
	t.Helper()
	z, err := dnstest.ParseZone(strings.NewReader(text), origin, origin+"zone")
	require.NoError(t, err)
	return z
}

func bigZoneA(t *testing.T) *dnstest.Zone {
	long := strings.Repeat("x", 250)
	return parse(t, fmt.Sprintf(zoneA, long, long+"1", long+"2", long+"3"), "a.test.")
}

func newClient(t *testing.T, servers ...string) *resolver.Client {
	t.Helper()
	c, err := resolver.New(resolver.Config{Servers: servers, AttemptTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestLookupOutcomes(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	c := newClient(t, srv.Addr())

	ans, err := c.Lookup(ctx(t), "a.test", dns.TypeMX)
	require.NoError(t, err)
	assert.Equal(t, resolver.OutcomeOK, ans.Outcome)
	require.Len(t, ans.Records, 1)
	assert.Equal(t, "mx.a.test.", ans.Records[0].(*dns.MX).Mx)
	assert.EqualValues(t, 300, ans.TTL)
	assert.True(t, ans.AA)
	assert.Equal(t, srv.Addr(), ans.Server)

	ans, err = c.Lookup(ctx(t), "nope.a.test", dns.TypeA)
	require.NoError(t, err, "NXDOMAIN is an answer, not an error")
	assert.Equal(t, resolver.OutcomeNXDomain, ans.Outcome)
	assert.False(t, ans.Exists())
	assert.EqualValues(t, 60, ans.TTL, "negative TTL is min(SOA TTL, MINIMUM)")

	ans, err = c.Lookup(ctx(t), "mx.a.test", dns.TypeTXT)
	require.NoError(t, err)
	assert.Equal(t, resolver.OutcomeNoData, ans.Outcome)
	assert.True(t, ans.Exists())

	ans, err = c.Lookup(ctx(t), "alias.a.test", dns.TypeA)
	require.NoError(t, err)
	assert.Equal(t, resolver.OutcomeOK, ans.Outcome)
	assert.Equal(t, []string{"mx.a.test."}, ans.CNAMEs)
	require.Len(t, ans.Records, 1)
	assert.Equal(t, "127.0.9.1", ans.Records[0].(*dns.A).A.String())
}

func TestTruncatedAnswerRetriesOverTCP(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	c := newClient(t, srv.Addr())
	ans, err := c.Lookup(ctx(t), "big.a.test", dns.TypeTXT)
	require.NoError(t, err)
	assert.Len(t, ans.Records, 4, "a reply over 1232 octets comes back whole over TCP")
	log := c.Log()
	require.Len(t, log, 2)
	assert.Equal(t, "udp", log[0].Proto)
	assert.Equal(t, "truncated", log[0].Err)
	assert.Equal(t, "tcp", log[1].Proto)

	// Forced truncation of a small answer too.
	srv.SetFault("mx.a.test", dnstest.Fault{Truncate: true})
	ans, err = c.Lookup(ctx(t), "mx.a.test", dns.TypeA)
	require.NoError(t, err)
	assert.Len(t, ans.Records, 1)
}

func TestRetryNextServer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault dnstest.Fault
	}{
		{"servfail", dnstest.Fault{Rcode: dns.RcodeServerFailure}},
		{"refused", dnstest.Fault{Rcode: dns.RcodeRefused}},
		{"timeout", dnstest.Fault{Drop: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := dnstest.MustStart(t, bigZoneA(t))
			good := dnstest.MustStart(t, bigZoneA(t))
			bad.SetFault("a.test", tc.fault)
			c := newClient(t, bad.Addr(), good.Addr())
			ans, err := c.Lookup(ctx(t), "a.test", dns.TypeMX)
			require.NoError(t, err)
			assert.Equal(t, good.Addr(), ans.Server)
			assert.Equal(t, 1, bad.Count("a.test.", dns.TypeMX))
			assert.Equal(t, 1, good.Count("a.test.", dns.TypeMX))
		})
	}
}

func TestFailuresAreErrorsNotAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   dnstest.Fault
		want    error
		outcome resolver.Outcome
	}{
		{"servfail", dnstest.Fault{Rcode: dns.RcodeServerFailure}, resolver.ErrServFail, resolver.OutcomeServFail},
		{"refused", dnstest.Fault{Rcode: dns.RcodeRefused}, resolver.ErrRefused, resolver.OutcomeRefused},
		{"timeout", dnstest.Fault{Drop: true}, resolver.ErrTimeout, resolver.OutcomeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.MustStart(t, bigZoneA(t))
			srv.SetFault("a.test", tc.fault)
			c := newClient(t, srv.Addr())
			ans, err := c.Lookup(ctx(t), "a.test", dns.TypeMX)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "%v is %v", err, tc.want)
			require.NotNil(t, ans)
			assert.Equal(t, tc.outcome, ans.Outcome)
		})
	}
}

// A silent server costs the caller's deadline, never more.
func TestSilentServerRespectsContextDeadline(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	srv.SetFault("a.test", dnstest.Fault{Drop: true})
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr(), srv.Addr()}, AttemptTimeout: time.Minute})
	require.NoError(t, err)
	cx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Lookup(cx, "a.test", dns.TypeMX)
		done <- err
	}()
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, resolver.ErrTimeout), "got %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Lookup ignored the context deadline")
	}
}

// N concurrent identical questions cost one query on the wire.
func TestDedupeUnderConcurrency(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	srv.SetDelay(30 * time.Millisecond) // keep the first query in flight while the others arrive
	c := newClient(t, srv.Addr())
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "mx.a.test"
			if i%2 == 0 {
				name = "MX.A.TEST." // same question, other spelling
			}
			ans, err := c.Lookup(ctx(t), name, dns.TypeA)
			assert.NoError(t, err)
			if assert.NotNil(t, ans) {
				assert.Len(t, ans.Records, 1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, srv.Count("mx.a.test.", dns.TypeA))
	q, distinct, failed := c.Stats()
	assert.Equal(t, 1, q)
	assert.Equal(t, 1, distinct)
	assert.Equal(t, 0, failed)

	// The alias chain shares the cache too: alias -> mx is answered by the
	// server in one reply, and asking mx again costs nothing.
	_, err := c.Lookup(ctx(t), "alias.a.test", dns.TypeA)
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Count("mx.a.test.", dns.TypeA))
}

// A CNAME into a zone the first server does not serve is chased with a
// separate query (an authoritative-only server does not recurse).
func TestCNAMEChaseAcrossServers(t *testing.T) {
	onlyA := dnstest.MustStart(t, bigZoneA(t))
	onlyB := dnstest.MustStart(t, parse(t, zoneB, "b.test."))
	c := newClient(t, onlyA.Addr(), onlyB.Addr())
	ans, err := c.Lookup(ctx(t), "out.a.test", dns.TypeA)
	require.NoError(t, err)
	assert.Equal(t, resolver.OutcomeOK, ans.Outcome)
	assert.Equal(t, "out.a.test.", ans.Name)
	assert.Equal(t, []string{"host.b.test."}, ans.CNAMEs)
	require.Len(t, ans.Records, 1)
	assert.Equal(t, "127.0.9.2", ans.Records[0].(*dns.A).A.String())
	assert.EqualValues(t, 120, ans.TTL)
}

func TestQueryServerIsDirectAndCachedPerServer(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	c := newClient(t, "127.0.0.1:9") // never used: QueryServer goes straight to srv
	for i := 0; i < 3; i++ {
		ans, err := c.QueryServer(ctx(t), srv.Addr(), "a.test", dns.TypeMX)
		require.NoError(t, err)
		assert.True(t, ans.AA)
		assert.Len(t, ans.Records, 1)
	}
	log := srv.Log()
	require.Len(t, log, 1)
	assert.False(t, log[0].RD, "authoritative queries do not ask for recursion")
	assert.True(t, log[0].EDNS)
}

func TestADBitIsReported(t *testing.T) {
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.AuthenticatedData = r.AuthenticatedData // a validating resolver would set it
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 127.0.9.3")
		m.Answer = append(m.Answer, rr)
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &dns.Server{PacketConn: pc, Handler: mux}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })
	c := newClient(t, pc.LocalAddr().String())
	ans, err := c.Lookup(ctx(t), "signed.test", dns.TypeA)
	require.NoError(t, err)
	assert.True(t, ans.AD, "the query sets AD (RFC 6840 §5.7), the reply echoes it")
}

func TestIDNNamesGoOnTheWireAsALabels(t *testing.T) {
	z := parse(t, `$ORIGIN xn--bcher-kva.test.
@ 300 IN SOA ns host 1 2 3 4 5
@ 300 IN MX 10 mx.xn--bcher-kva.test.
`, "xn--bcher-kva.test.")
	srv := dnstest.MustStart(t, z)
	c := newClient(t, srv.Addr())
	ans, err := c.Lookup(ctx(t), "Bücher.test", dns.TypeMX)
	require.NoError(t, err)
	assert.Equal(t, "xn--bcher-kva.test.", ans.Name)
	assert.Equal(t, 1, srv.Count("xn--bcher-kva.test.", dns.TypeMX))
}

func TestBadNamesSendNothing(t *testing.T) {
	srv := dnstest.MustStart(t, bigZoneA(t))
	c := newClient(t, srv.Addr())
	for _, name := range []string{"", "a..test", strings.Repeat("x", 64) + ".test", "sp ace.test", strings.Repeat("abcdefghi.", 26) + "test"} {
		_, err := c.Lookup(ctx(t), name, dns.TypeA)
		assert.True(t, errors.Is(err, resolver.ErrBadName), "%q: %v", name, err)
	}
	assert.Empty(t, srv.Log())
}

func TestCanonicalAndHostnames(t *testing.T) {
	for _, tc := range []struct {
		in, canon, host string // host "" = ValidateHostname rejects it
	}{
		{"Example.COM", "example.com.", "example.com."},
		{"example.com.", "example.com.", "example.com."},
		{"_dmarc.example.com", "_dmarc.example.com.", ""},
		{"bücher.de", "xn--bcher-kva.de.", "xn--bcher-kva.de."},
		{"localhost", "localhost.", ""},
		{"-bad.example.com", "-bad.example.com.", ""},
		{"192.0.2.1", "192.0.2.1.", ""},
	} {
		got, err := resolver.CanonicalName(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.canon, got, tc.in)
		h, err := resolver.ValidateHostname(tc.in)
		if tc.host == "" {
			assert.Error(t, err, tc.in)
		} else {
			assert.NoError(t, err, tc.in)
			assert.Equal(t, tc.host, h)
		}
	}
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":        "127.0.0.1:53",
		"127.0.0.1:5353":   "127.0.0.1:5353",
		"::1":              "[::1]:53",
		"[::1]":            "[::1]:53",
		"[::1]:5353":       "[::1]:5353",
		" 127.0.1.2:53 ":   "127.0.1.2:53",
		"ns1.example.com":  "",
		"127.0.0.1:99999":  "",
		"127.0.0.1:domain": "",
		"":                 "",
	} {
		got, err := resolver.ParseServer(in)
		if want == "" {
			assert.Error(t, err, in)
			continue
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

// resolv.conf parsing runs on a file the test writes, never the machine's.
func TestServersFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	require.NoError(t, os.WriteFile(path, []byte("# generated\nsearch example.com\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0 timeout:1\n"), 0o644))
	got, err := resolver.ServersFromResolvConf(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.53:53", "[::1]:53"}, got)

	c, err := resolver.New(resolver.Config{ResolvConf: path})
	require.NoError(t, err)
	assert.Equal(t, got, c.Servers())

	empty := filepath.Join(dir, "empty.conf")
	require.NoError(t, os.WriteFile(empty, []byte("search example.com\n"), 0o644))
	_, err = resolver.ServersFromResolvConf(empty)
	assert.ErrorContains(t, err, "no nameserver")
	_, err = resolver.ServersFromResolvConf(filepath.Join(dir, "missing.conf"))
	assert.Error(t, err)
}
