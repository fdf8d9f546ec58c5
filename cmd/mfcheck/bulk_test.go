package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/bulk"
	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// bulkWorld serves a few domains on loopback: good.test (MX, SPF -all,
// DMARC reject), weak.test (SPF +all: a fail) and both under one zone with
// its own name server, so no query ever leaves 127.0.0.1.
func bulkWorld(t *testing.T) (server string, nsPort string) {
	t.Helper()
	z := dnstest.MustParseZone(t, "bt.test.", `$TTL 300
@           IN SOA ns.bt.test. host.bt.test. 1 3600 600 86400 60
@           IN NS  ns.bt.test.
ns          IN A   127.0.0.1
mx          IN A   127.0.0.21
good        IN MX  10 mx.bt.test.
good        IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.good IN TXT "v=DMARC1; p=reject"
weak        IN MX  10 mx.bt.test.
weak        IN TXT "v=spf1 +all"
`)
	srv := dnstest.MustStart(t, z)
	_, port, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	return srv.Addr(), port
}

// A resolv.conf of our own, so that nothing can fall back to the machine's.
func deadResolvConf(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(p, []byte("nameserver 127.0.0.1\noptions timeout:1\n"), 0o644))
	return p
}

func runBulkInProcess(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	if err := root.Execute(); err != nil {
		return out.String(), errOut.String() + err.Error(), report.ExitUsage
	}
	return out.String(), errOut.String(), a.exitCode
}

func decodeLines(t *testing.T, s string) []report.Report {
	t.Helper()
	var out []report.Report
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r report.Report
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		out = append(out, r)
	}
	return out
}

func TestBulkCommandInProcess(t *testing.T) {
	server, port := bulkWorld(t)
	rc := deadResolvConf(t)
	list := "# nightly\ngood.bt.test\n\nweak.bt.test\nnot a domain\ngood.bt.test\n"
	base := []string{"bulk", "-", "--resolver", server, "--ns-port", port, "--resolv-conf", rc, "--concurrency", "2"}

	out, errOut, code := runBulkInProcess(t, list, base...)
	reps := decodeLines(t, out)
	require.Len(t, reps, 4, "one JSON line per selected line: %s", errOut)
	var domains []string
	for _, r := range reps {
		domains = append(domains, r.Domain)
		assert.Equal(t, "health", r.Mode)
		assert.False(t, slices.ContainsFunc(r.Findings, func(f report.Finding) bool { return f.Status == report.StatusError && f.ID != bulk.IDInput }),
			"%s: no check failed to run: %+v", r.Domain, r.Findings)
	}
	slices.Sort(domains)
	assert.Equal(t, []string{"good.bt.test", "good.bt.test", "not a domain", "weak.bt.test"}, domains)
	assert.Equal(t, report.ExitFindings, code, "weak.bt.test's +all is a fail")
	assert.Contains(t, errOut, "mfcheck bulk: 4 domains")
	assert.Contains(t, errOut, "1 not a domain name")
	assert.NotContains(t, errOut, "\r", "no progress line when stderr is not a terminal")

	// Table output: the summary only, on stdout.
	out, errOut, _ = runBulkInProcess(t, list, append(base, "--output", "table", "--shard", "1/2")...)
	assert.Contains(t, out, "mfcheck bulk: 2 domains")
	assert.Contains(t, out, "shard 1/2")
	assert.NotContains(t, out, "{")
	assert.Empty(t, errOut)

	// JUnit: one suite per domain, at the end.
	out, _, _ = runBulkInProcess(t, list, append(base, "-o", "junit", "--fail-on", "warn")...)
	assert.Equal(t, 4, strings.Count(out, "<testsuite "), out)

	// Usage errors exit 2 before any query.
	for _, bad := range [][]string{
		{"--shard", "2/2"}, {"--concurrency", "0"}, {"--per-domain-timeout", "0s"}, {"--rate", "-1"}, {"-o", "markdown"},
	} {
		_, errOut, code := runBulkInProcess(t, list, append(base, bad...)...)
		assert.Equal(t, report.ExitUsage, code, "%v: %s", bad, errOut)
	}
	_, _, code = runBulkInProcess(t, "", "bulk")
	assert.Equal(t, report.ExitUsage, code)
}

// go run ./cmd/mfcheck bulk FILE, once, against the loopback server.
func TestBulkCommandGoRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	server, port := bulkWorld(t)
	list := filepath.Join(t.TempDir(), "domains.txt")
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "%s\n", []string{"good.bt.test", "weak.bt.test", "missing.bt.test", "bad_name..test"}[i%4])
	}
	require.NoError(t, os.WriteFile(list, []byte(b.String()), 0o644))
	cmd := exec.Command("go", "run", ".", "bulk", list, "--resolver", server, "--ns-port", port,
		"--resolv-conf", deadResolvConf(t), "--per-domain-timeout", "10s")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr: %s", errOut.String())
	assert.Equal(t, report.ExitFindings, ee.ExitCode(), errOut.String())
	reps := decodeLines(t, out.String())
	require.Len(t, reps, 20)
	counts := map[string]int{}
	for _, r := range reps {
		counts[r.Domain]++
	}
	assert.Equal(t, map[string]int{"good.bt.test": 5, "weak.bt.test": 5, "missing.bt.test": 5, "bad_name..test": 5}, counts)
	assert.Contains(t, errOut.String(), "mfcheck bulk: 20 domains")
}

// A run-wide --timeout stops the run: what was checked is written, the exit
// code says the rest could not be checked (3), not a usage error (2).
func TestBulkRunWideTimeout(t *testing.T) {
	srv := dnstest.MustStart(t, dnstest.MustParseZone(t, "slow.test.", "$TTL 300\n@ IN SOA ns host 1 2 3 4 5\n@ IN NS ns\nns IN A 127.0.0.1\n"))
	srv.SetDelay(time.Second)
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "d%d.slow.test\n", i)
	}
	_, port, _ := net.SplitHostPort(srv.Addr())
	out, errOut, code := runBulkInProcess(t, b.String(), "bulk", "-", "--resolver", srv.Addr(), "--ns-port", port,
		"--resolv-conf", deadResolvConf(t), "--concurrency", "2", "--timeout", "300ms")
	assert.Equal(t, report.ExitIncomplete, code, errOut)
	assert.Contains(t, errOut, "--timeout 300ms reached")
	assert.Less(t, len(decodeLines(t, out)), 50)
}
