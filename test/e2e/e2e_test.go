// Package e2e runs the built mfcheck binary against real DNS peers on
// loopback: pkg/dnstest serving testdata/zones in this process, and NSD
// serving the same files (started by .ci/run, see scripts/nsd-zones.sh).
// The NSD tests skip with a message where NSD is not running, unless
// MFCHECK_E2E=required (CI), where they fail instead.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/lab"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mfcheck-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mfcheck")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/mfcheck")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mfcheck:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, nil, args...)
}

// runEnv runs mfcheck with env added to the environment.
func runEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running mfcheck %v: %v", args, err)
	}
	require.NoError(t, ctx.Err(), "mfcheck %v hung", args)
	return r
}

type finding struct {
	ID       string         `json:"id"`
	Status   string         `json:"status"`
	Subject  string         `json:"subject"`
	Message  string         `json:"message"`
	Evidence map[string]any `json:"evidence"`
}

type jsonReport struct {
	Schema     string    `json:"schema"`
	Domain     string    `json:"domain"`
	Simulation bool      `json:"simulation"`
	Findings   []finding `json:"findings"`
	DNS        struct {
		Queries  int `json:"queries"`
		Distinct int `json:"distinct"`
	} `json:"dns"`
}

func decode(t *testing.T, r result) jsonReport {
	t.Helper()
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	return rep
}

// key identifies a finding independently of message wording and evidence
// details (addresses of the DNS server differ between the two runs).
func keys(rep jsonReport) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, fmt.Sprintf("%s %s %s", f.ID, f.Status, f.Subject))
	}
	sort.Strings(out)
	return out
}

// scenarios are the testdata/zones domains with the findings each must show.
var scenarios = []struct {
	domain string
	args   []string
	want   []string // "id status subject" that must be present
	code   int
}{
	{"good-gw.test", []string{"--profile", "mimecast-eu", "--mode", "smoke"},
		[]string{"mx.at-gateway pass good-gw.test", "mx.present pass good-gw.test", "mx.ns-consistency pass good-gw.test"}, 0},
	{"bypass.test", []string{"--profile", "mimecast-eu", "--mode", "smoke"},
		[]string{"mx.bypass-mx fail contoso-test.mail.protection.outlook.com", "mx.at-gateway fail bypass.test"}, 1},
	{"null-mx.test", nil, []string{"mx.null info null-mx.test"}, 0},
	{"cname-mx.test", nil, []string{"mx.target-cname warn mail.cname-mx.test"}, 0},
	{"iplit-mx.test", nil, []string{"mx.target-ip-literal fail 127.0.53.41"}, 1},
	{"dangling-mx.test", nil, []string{"mx.target-unresolvable fail gone.dangling-mx.test"}, 1},
	{"no-mx.test", nil, []string{"mx.present warn no-mx.test"}, 0},
	{"disagree.test", nil, []string{"mx.ns-consistency fail disagree.test"}, 1},
	{"spf-broken.test", []string{"--profile", "mimecast-eu", "--mode", "readiness"},
		[]string{"spf.lookup-limit fail spf-broken.test", "spf.void-limit fail spf-broken.test", "spf.gateway-include fail spf-broken.test",
			"spf.headroom fail spf-broken.test", "spf.ptr warn spf-broken.test", "spf.ranges-authorized warn spf-broken.test",
			"mx.at-gateway info spf-broken.test"}, 1},
}

func checkScenarios(t *testing.T, resolverAddr string, nsPort int) map[string][]string {
	out := map[string][]string{}
	for _, sc := range scenarios {
		// The scenarios are about DNS; their MX addresses run no SMTP server
		// (tls_test.go probes real Postfix listeners).
		args := append([]string{"check", sc.domain, "--resolver", resolverAddr, "--output", "json", "--timeout", "20s", "--no-smtp"}, sc.args...)
		if nsPort != 53 {
			args = append(args, "--ns-port", fmt.Sprint(nsPort))
		}
		r := run(t, args...)
		rep := decode(t, r)
		got := keys(rep)
		for _, w := range sc.want {
			assert.Contains(t, got, w, "%s via %s", sc.domain, resolverAddr)
		}
		assert.Equal(t, sc.code, r.code, "%s exit code; stderr %s", sc.domain, r.stderr)
		for _, f := range rep.Findings {
			assert.NotEqual(t, "error", f.Status, "%s via %s: %s %s", sc.domain, resolverAddr, f.ID, f.Message)
		}
		out[sc.domain] = got
	}
	return out
}

func startZones(t *testing.T) *lab.World {
	t.Helper()
	w, err := lab.StartDir("../../testdata/zones", "127.0.53.1", "127.0.53.2")
	require.NoError(t, err)
	t.Cleanup(w.Close)
	return w
}

func TestScenariosAgainstDnstest(t *testing.T) {
	w := startZones(t)
	checkScenarios(t, w.Resolver, w.NSPort)
}

// nsdAddr returns the address of the NSD instance serving testdata/zones, or
// skips (fails in CI) when there is none.
func nsdAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("MFCHECK_NSD")
	if addr == "" {
		addr = "127.0.53.1"
	}
	m := new(dns.Msg)
	m.SetQuestion("zones.test.", dns.TypeSOA)
	c := &dns.Client{Timeout: time.Second}
	resp, _, err := c.Exchange(m, net.JoinHostPort(addr, "53"))
	if err == nil && resp.Rcode == dns.RcodeSuccess && resp.Authoritative {
		return addr
	}
	msg := fmt.Sprintf("NSD is not serving testdata/zones on %s:53 (%v); start it with `sudo scripts/nsd-zones.sh start`", addr, err)
	if os.Getenv("MFCHECK_E2E") == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// The same zone files served by NSD and by pkg/dnstest give the same
// findings: the in-process server is a faithful stand-in for a real one.
func TestFindingsAgreeBetweenNSDAndDnstest(t *testing.T) {
	nsd := nsdAddr(t)
	w := startZones(t)
	viaDnstest := checkScenarios(t, w.Resolver, w.NSPort)
	viaNSD := checkScenarios(t, nsd, 53)
	for _, sc := range scenarios {
		assert.Equal(t, viaDnstest[sc.domain], viaNSD[sc.domain], sc.domain)
	}
}

func TestDemo(t *testing.T) {
	r := run(t, "demo")
	assert.Equal(t, 1, r.code, "the demo world has deliberate failures; stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, "SIMULATION")
	assert.Contains(t, r.stdout, "fail")
	assert.Contains(t, r.stdout, "pass")
	assert.Contains(t, r.stdout, "mx.bypass-mx")
	assert.Contains(t, r.stdout, "mx.ns-consistency")
	assert.NotContains(t, r.stdout, "\x1b[", "no colour when stdout is not a terminal")

	r = run(t, "demo", "--output", "json")
	assert.Equal(t, 1, r.code)
	validateSchema(t, r.stdout)
	rep := decode(t, r)
	assert.Equal(t, "mfcheck.report/v1", rep.Schema)
	assert.True(t, rep.Simulation)
	assert.Equal(t, "contoso.example", rep.Domain)
	got := keys(rep)
	assert.Contains(t, got, "mx.bypass-mx fail contoso-example.mail.protection.outlook.com")
	assert.Contains(t, got, "mx.ns-consistency fail contoso.example")
	assert.Contains(t, got, "mx.present pass contoso.example")
	assert.Contains(t, got, "dmarc.policy warn contoso.example")
	assert.Contains(t, got, "mtasts.mx-match warn contoso-example.mail.protection.outlook.com")
	assert.Contains(t, got, "dkim.selectors warn selector2._domainkey.contoso.example")
	// The lab's SMTP hosts listen on one port the lab picks; match by prefix.
	var chain, expiry bool
	for _, k := range got {
		chain = chain || strings.HasPrefix(k, "tls.cert-chain fail eu-smtp-o365-outbound-2.mimecast.com [127.0.55.42]:")
		expiry = expiry || strings.HasPrefix(k, "tls.cert-expiry warn eu-smtp-inbound-2.mimecast.com [127.0.55.32]:")
	}
	assert.True(t, chain, "the smart host without its intermediate: %v", got)
	// The smoke test sends: in through the gateway MX, out through its
	// smart host, and the Microsoft 365 endpoint still takes direct mail.
	var inbound, outbound, bypass bool
	for _, k := range got {
		inbound = inbound || strings.HasPrefix(k, "send.inbound pass eu-smtp-inbound-")
		outbound = outbound || strings.HasPrefix(k, "send.outbound pass eu-smtp-o365-outbound-1.mimecast.com")
		bypass = bypass || strings.HasPrefix(k, "bypass.direct-delivery fail contoso-example.mail.protection.outlook.com")
	}
	assert.True(t, inbound && outbound && bypass, "send.inbound, send.outbound, bypass.direct-delivery: %v", got)
	assert.True(t, expiry, "the MX certificate that expires within 21 days: %v", got)
	for _, f := range rep.Findings {
		assert.NotEqual(t, "error", f.Status, "everything in the lab answers: %s %s %s", f.ID, f.Subject, f.Message)
	}
	assert.Equal(t, rep.DNS.Distinct, rep.DNS.Queries, "no question is asked twice in a run")

	for _, format := range []string{"junit", "markdown"} {
		r = run(t, "demo", "--output", format)
		assert.Equal(t, 1, r.code, format)
		assert.Contains(t, r.stdout, "mx.bypass-mx", format)
	}
	r = run(t, "demo", "--mode", "readiness", "--fail-on", "fail", "--trace")
	assert.Contains(t, r.stdout, "mx.ttl")
	assert.Contains(t, r.stdout, "eu-smtp-inbound-1.mimecast.com", "trace lists the queries")
}

func validateSchema(t *testing.T, doc string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../../docs/report.schema.json")
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	require.NoError(t, err)
	assert.NoError(t, sch.Validate(inst))
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"check", "not a domain"},
		{"check", "localhost"},
		{"check", "192.0.2.1"},
		{"check"},
		{"check", "a.test", "b.test"},
		{"check", "example.com", "--output", "yaml"},
		{"check", "example.com", "--mode", "later"},
		{"check", "example.com", "--fail-on", "pass"},
		{"check", "example.com", "--profile", "mimecast-europe"},
		{"check", "example.com", "--resolver", "dns.google"},
		{"check", "example.com", "--no-such-flag"},
		{"spf", "example.com", "--ip", "192.0.2.300"},
		{"spf", "example.com", "--range", "192.0.2.0/33"},
		{"spf", "example.com", "--range", "192.0.2.1/24"},
		{"spf", "example.com", "--max-lookups", "11", "--flatten"},
		{"spf", "example.com", "--allowlist", "testdata/ipallowlist.txt"},
		{"spf", "example.com", "--profile", "mimecast-eu", "--allowlist", "testdata/no-such-file.txt"},
		{"spf", "example.com", "--profile", "mimecast-eu", "--allowlist", "testdata/bad-allowlist.txt"},
		{"spf", "example.com", "--sender", "no-at-sign"},
		{"spf"},
		{"check", "example.com", "--smart-host", "relay..example"},
		{"check", "example.com", "--smart-host", "relay.example:0"},
		{"check", "example.com", "--ca-file", "testdata/ipallowlist.txt"},
		{"check", "example.com", "--ca-file", "testdata/no-such-file.pem"},
		{"check", "example.com", "--dkim-selector", "two words"},
		{"check", "example.com", "--ehlo-name", "bad name"},
		{"check", "example.com", "--smtp-port", "70000"},
		{"tls"},
		{"tls", "mx.example:99999"},
		{"tls", "mx.example", "--role", "relay"},
		{"tls", "not a host"},
		{"tls", "mx.example", "--ca-file", "testdata/ipallowlist.txt"},
		{"frobnicate"},
	} {
		r := run(t, args...)
		assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		assert.Len(t, lines, 1, "%v: a one-line reason, got %q", args, r.stderr)
		assert.True(t, strings.HasPrefix(r.stderr, "mfcheck: "), r.stderr)
		assert.Empty(t, r.stdout, "%v", args)
	}
}

// A resolver that never answers gives status error (exit 3) within --timeout.
func TestSilentResolver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close() // reads nothing: a black hole
	r := run(t, "check", "example.com", "--resolver", pc.LocalAddr().String(), "--timeout", "2s", "--output", "json")
	assert.Equal(t, 3, r.code, r.stderr)
	assert.Less(t, r.elapsed, 10*time.Second, "bounded by --timeout")
	rep := decode(t, r)
	require.NotEmpty(t, rep.Findings)
	for _, f := range rep.Findings {
		if f.ID == "dkim.selectors" && f.Status == "info" {
			// "No selector to check": says what was not asked, not what DNS said.
			continue
		}
		assert.Equal(t, "error", f.Status, "%s: %s", f.ID, f.Message)
	}
}

// A resolver address where nothing listens (ICMP port unreachable).
func TestUnreachableResolver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	pc.Close()
	r := run(t, "mx", "example.com", "--resolver", addr, "--timeout", "3s")
	assert.Equal(t, 3, r.code, r.stderr)
	assert.Contains(t, r.stdout, "error")
}

// mfcheck spf on the broken tenant: the tree with its arithmetic, the
// gateway questions, a given client, an allow list and a flattened set.
func TestSPFCommand(t *testing.T) {
	w := startZones(t)
	args := []string{"spf", "spf-broken.test", "--resolver", w.Resolver, "--profile", "mimecast-eu",
		"--ip", "127.0.55.10", "--range", "127.0.60.0/23", "--allowlist", "testdata/ipallowlist.txt", "--flatten"}
	r := run(t, append(args, "--output", "json")...)
	assert.Equal(t, 1, r.code, r.stderr)
	validateSchema(t, r.stdout)
	var rep struct {
		jsonReport
		SPF struct {
			Lookups     int `json:"lookups"`
			VoidLookups int `json:"void_lookups"`
			Tree        struct {
				Domain string `json:"domain"`
				Terms  []struct {
					Text      string `json:"text"`
					Cost      int    `json:"cost"`
					Total     int    `json:"total"`
					OverLimit bool   `json:"over_limit"`
				} `json:"terms"`
			} `json:"tree"`
			Flattened struct {
				Lookups int `json:"lookups"`
				Records []struct {
					Name    string   `json:"name"`
					Strings []string `json:"strings"`
				} `json:"records"`
				Added []string `json:"added"`
			} `json:"flattened"`
		} `json:"spf"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	got := keys(rep.jsonReport)
	for _, want := range []string{
		"spf.ip-authorized fail spf-broken.test [127.0.55.10]", // the on-premises server is after the 10th lookup
		"spf.ranges-authorized pass spf-broken.test",           // the CRM ranges, before it
		"allowlist.gateway-ranges fail testdata/ipallowlist.txt",
		"spf.lookup-limit fail spf-broken.test",
	} {
		assert.Contains(t, got, want)
	}
	assert.Equal(t, 13, rep.SPF.Lookups)
	assert.Equal(t, 3, rep.SPF.VoidLookups)
	assert.Equal(t, "spf-broken.test", rep.SPF.Tree.Domain)
	require.Len(t, rep.SPF.Tree.Terms, 8)
	assert.Equal(t, "include:_spf.spf-broken.test", rep.SPF.Tree.Terms[1].Text)
	assert.Equal(t, 6, rep.SPF.Tree.Terms[1].Cost)
	assert.Equal(t, 7, rep.SPF.Tree.Terms[1].Total)
	assert.True(t, rep.SPF.Tree.Terms[3].OverLimit, "a:legacy is the 11th lookup")
	assert.LessOrEqual(t, rep.SPF.Flattened.Lookups, 10)
	assert.Equal(t, []string{"include:eu._netblocks.mimecast.com"}, rep.SPF.Flattened.Added)
	require.NotEmpty(t, rep.SPF.Flattened.Records)
	assert.Equal(t, "spf-broken.test", rep.SPF.Flattened.Records[0].Name)
	for _, f := range rep.Findings {
		if f.ID == "allowlist.gateway-ranges" {
			assert.Equal(t, []any{"127.0.56.128/25"}, f.Evidence["missing"])
		}
	}

	r = run(t, args...)
	assert.Equal(t, 1, r.code)
	for _, s := range []string{
		"SPF tree of spf-broken.test: 13 of 10 DNS lookups",
		"include:_spf.spf-broken.test", "over the limit: permerror here",
		"Flattened SPF", `spf-broken.test. IN TXT "v=spf1 `, "Added: include:eu._netblocks.mimecast.com",
		"Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @{Add=",
	} {
		assert.Contains(t, r.stdout, s)
	}
}

// The same SPF tree, fetched from NSD and from pkg/dnstest, is the same.
func TestSPFTreeAgreesBetweenNSDAndDnstest(t *testing.T) {
	nsd := nsdAddr(t)
	w := startZones(t)
	tree := func(resolverAddr string) string {
		r := run(t, "spf", "spf-broken.test", "--resolver", resolverAddr, "--profile", "mimecast-eu", "--output", "json")
		var rep struct {
			SPF json.RawMessage `json:"spf"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
		return string(rep.SPF)
	}
	assert.JSONEq(t, tree(w.Resolver), tree(nsd))
}

func TestProfilesAndVersion(t *testing.T) {
	r := run(t, "profiles")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "mimecast-eu")
	assert.Contains(t, r.stdout, "microsoft365")
	r = run(t, "profiles", "mimecast-eu")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "eu._netblocks.mimecast.com")
	assert.Contains(t, r.stdout, "(unverified)")
	r = run(t, "profiles", "mimecast-eu", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, json.Valid([]byte(r.stdout)))
	r = run(t, "version")
	assert.Equal(t, 0, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "mfcheck "))
}
