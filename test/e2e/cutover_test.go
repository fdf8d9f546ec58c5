package e2e

// Issue 6's must-show: one domain through an MX cutover, against the real
// NSD (scripts/nsd-zones.sh) and the real Postfix lab (scripts/postfix-lab.sh)
// that .ci/run starts:
//
//  1. readiness: cutover.test's MX is still the mailbox platform's own
//     endpoint (cloud-open.tls.test, the lab's stand-in for Microsoft 365),
//     not the gateway of profile lab-gateway (mx-good.tls.test): mx.at-gateway
//     says so (info, expected before the cutover); the gateway already
//     accepts RCPT for postmaster@cutover.test (send.gateway-accepts, and
//     Postfix queued nothing); SPF does not authorize the gateway yet; the
//     TLS rows are cloud-open's.
//  2. the MX change: `scripts/nsd-zones.sh swap` serves
//     testdata/cutover/cutover.test.after.zone (MX mx-good.tls.test, SPF with
//     ip4:127.0.62.10, a higher serial) from NSD's copy of the zones.
//  3. smoke: the MX is at the gateway on every authoritative server, a test
//     message goes in through it into the Maildir (found by its token,
//     delivered per Postfix's log), and direct delivery to the locked cloud
//     endpoint (cloud-locked.tls.test) is refused.
//  4. `mfcheck diff` of the two JSON reports shows the MX change, the SPF
//     change, mx.at-gateway info -> pass and the new send findings, and is
//     not worse (exit 0); the reverse diff is worse (exit 1).
//
// The zone is restored (scripts/nsd-zones.sh restore) when the test ends,
// pass or fail; `scripts/nsd-zones.sh start` resets every served zone too.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
)

const (
	cutoverDomain       = "cutover.test"
	cutoverBeforeZone   = "../../testdata/zones/cutover.test.zone"
	cutoverAfterZone    = "../../testdata/cutover/cutover.test.after.zone"
	cutoverBeforeSerial = 2026120101
	cutoverAfterSerial  = 2026120102
	cutoverRcpt         = "probe@cutover.test"
	cutoverSender       = "sender@cutover.test"
	cutoverPostmaster   = "postmaster@cutover.test"
	nsdScript           = "../../scripts/nsd-zones.sh"
)

// cutoverZones drives the served copy of cutover.test through
// scripts/nsd-zones.sh. MFCHECK_NSD_STATE names NSD's state directory when
// it is not the script's default (.tmp/nsd).
type cutoverZones struct {
	nsd string
}

func (z cutoverZones) script(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if st := os.Getenv("MFCHECK_NSD_STATE"); st != "" {
		abs, err := filepath.Abs(st)
		require.NoError(t, err)
		args = append(args, abs)
	}
	out, err := exec.Command(nsdScript, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// serial is the SOA serial NSD serves for cutover.test (0: none).
func (z cutoverZones) serial(t *testing.T) uint32 {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(cutoverDomain+".", dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{Timeout: time.Second}
	resp, _, err := c.Exchange(m, net.JoinHostPort(z.nsd, "53"))
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		return 0
	}
	for _, rr := range resp.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

// newCutoverZones skips (fails under MFCHECK_E2E=required) when NSD does not
// serve cutover.test or the script cannot swap it; it leaves the zone in its
// "before" state, and restores it when the test ends.
func newCutoverZones(t *testing.T, nsd string) cutoverZones {
	t.Helper()
	z := cutoverZones{nsd: nsd}
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + "; (re)start NSD with `sudo scripts/nsd-zones.sh start` (MFCHECK_NSD_STATE: its state directory, if not .tmp/nsd)"
		if os.Getenv("MFCHECK_E2E") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if s := z.serial(t); s == 0 {
		unavailable("NSD on %s serves no %s (started before the zone was added?)", nsd, cutoverDomain)
	}
	// A run killed half-way may have left the "after" zone in place.
	if out, err := z.script(t, "restore", cutoverDomain); err != nil {
		unavailable("scripts/nsd-zones.sh restore %s: %v: %s", cutoverDomain, err, out)
	}
	if s := z.serial(t); s != cutoverBeforeSerial {
		unavailable("NSD on %s serves %s serial %d after a restore, not %d: not the NSD of scripts/nsd-zones.sh?", nsd, cutoverDomain, s, cutoverBeforeSerial)
	}
	t.Cleanup(func() {
		out, err := z.script(t, "restore", cutoverDomain)
		if err != nil {
			t.Errorf("restoring %s: %v: %s", cutoverDomain, err, out)
			return
		}
		assert.Equal(t, uint32(cutoverBeforeSerial), z.serial(t), "%s restored: %s", cutoverDomain, out)
	})
	return z
}

// swap serves the "after" zone and returns how long NSD took to serve it.
func (z cutoverZones) swap(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	out, err := z.script(t, "swap", cutoverDomain, cutoverAfterZone)
	took := time.Since(start)
	require.NoError(t, err, "scripts/nsd-zones.sh swap: %s", out)
	require.Equal(t, uint32(cutoverAfterSerial), z.serial(t), "NSD serves the swapped zone: %s", out)
	t.Logf("%s (the script took %s)", out, took.Round(time.Millisecond))
	return took
}

// The "after" zone is outside testdata/zones, where pkg/lab's loopback test
// does not look: the same rule (every address on loopback), here.
func TestCutoverZonesUseOnlyLoopback(t *testing.T) {
	for _, f := range []string{cutoverBeforeZone, cutoverAfterZone} {
		z, err := dnstest.LoadZoneFile(f, cutoverDomain+".")
		require.NoError(t, err, f)
		var soa *dns.SOA
		for _, rr := range z.Records {
			var ip netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				ip, _ = netip.AddrFromSlice(v.A.To4())
			case *dns.AAAA:
				ip, _ = netip.AddrFromSlice(v.AAAA)
			case *dns.SOA:
				soa = v
				continue
			default:
				continue
			}
			assert.True(t, ip.IsLoopback(), "%s: %s", f, rr)
		}
		require.NotNil(t, soa, f)
	}
}

// diffChange is one entry of the changes of `mfcheck diff -o json`.
type diffChange struct {
	Change     string `json:"change"`
	ID         string `json:"id"`
	Subject    string `json:"subject"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Regression bool   `json:"regression"`
}

// diffDoc is `mfcheck diff -o json` (schema mfcheck.diff/v1).
type diffDoc struct {
	Schema  string `json:"schema"`
	Worse   bool   `json:"worse"`
	Domains []struct {
		Domain  string         `json:"domain"`
		Worse   bool           `json:"worse"`
		Counts  map[string]int `json:"counts"`
		Changes []diffChange   `json:"changes"`
		MX      *struct {
			Before  []string `json:"before"`
			After   []string `json:"after"`
			Added   []string `json:"added"`
			Removed []string `json:"removed"`
		} `json:"mx"`
		SPF *struct {
			Before struct {
				Record string `json:"record"`
			} `json:"before"`
			After struct {
				Record string `json:"record"`
			} `json:"after"`
		} `json:"spf"`
		TLS []struct {
			Change string `json:"change"`
			Host   string `json:"host"`
			After  string `json:"after"`
			Before string `json:"before"`
		} `json:"tls"`
	} `json:"domains"`
	OnlyBefore []json.RawMessage `json:"only_before"`
	OnlyAfter  []json.RawMessage `json:"only_after"`
}

func (d diffDoc) change(id, subject string) (diffChange, bool) {
	for _, c := range d.Domains[0].Changes {
		if c.ID == id && c.Subject == subject {
			return c, true
		}
	}
	return diffChange{}, false
}

// requireDiffCommand fails once, clearly, while the binary has no
// `mfcheck diff` (issue 6's CLI contract).
func requireDiffCommand(t *testing.T) {
	t.Helper()
	r := run(t, "diff", "--help")
	require.Equal(t, 0, r.code, "mfcheck diff, the command of issue 6's CLI contract, is missing: %s", strings.TrimSpace(r.stderr))
}

func runDiff(t *testing.T, before, after string) (result, diffDoc) {
	t.Helper()
	r := run(t, "diff", before, after, "-o", "json")
	require.NotEqual(t, 2, r.code, "mfcheck diff %s %s: usage error: %s", before, after, r.stderr)
	validateSchemaFile(t, "../../docs/diff.schema.json", r.stdout)
	var d diffDoc
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, "mfcheck.diff/v1", d.Schema)
	require.Len(t, d.Domains, 1, "one domain on both sides: %s", r.stdout)
	assert.Equal(t, cutoverDomain, d.Domains[0].Domain)
	assert.Empty(t, d.OnlyBefore)
	assert.Empty(t, d.OnlyAfter)
	return r, d
}

func validateSchemaFile(t *testing.T, schema, doc string) {
	t.Helper()
	sch, err := jsonschema.NewCompiler().Compile(schema)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	require.NoError(t, err)
	assert.NoError(t, sch.Validate(inst), "%s", schema)
}

// statusOf returns the status of the one finding id on subject ("" if none).
func statusOf(t *testing.T, rep jsonReport, id, subject string) string {
	t.Helper()
	var got []string
	for _, f := range rep.Findings {
		if f.ID == id && f.Subject == subject {
			got = append(got, f.Status)
		}
	}
	require.LessOrEqual(t, len(got), 1, "%s on %s more than once: %v", id, subject, keys(rep))
	if len(got) == 0 {
		return ""
	}
	return got[0]
}

func hasFindingOn(rep jsonReport, prefix, subject string) bool {
	return slices.ContainsFunc(rep.Findings, func(f finding) bool {
		return strings.HasPrefix(f.ID, prefix) && f.Subject == subject
	})
}

// deliveredTo is send_test.go's delivered for another recipient.
func deliveredTo(t *testing.T, m logMark, listener, queueID, rcpt string) {
	t.Helper()
	m.waitLog(t, "delivery of "+queueID, func(lines []string) bool {
		return hasLine(smtpdLines(lines, listener), queueID+": client=") &&
			hasLine(lines, queueID+": to=<"+rcpt+">", "relay=virtual", "status=sent (delivered to maildir)")
	})
}

const (
	cutoverGatewaySubject = gatewayHost + " [" + gatewayAddr + "]"
	cutoverCloudSubject   = openHost + " [" + openAddr + "]"
	cutoverLockedSubject  = lockedHost + " [" + lockedAddr + "]"
)

func TestCutoverReadinessSwapSmokeDiff(t *testing.T) {
	l := newMailLab(t)
	z := newCutoverZones(t, l.nsd)
	dir := t.TempDir()
	common := []string{"check", cutoverDomain, "--profiles-file", labProfiles, "--profile", labProfileID,
		"--resolver", l.nsd, "--ca-file", l.ca, "-o", "json", "--timeout", "60s"}

	// 1. Readiness, before the MX change.
	before := len(l.messages(t))
	m := l.mark(t)
	r, ready := runMfcheck(t, append(common, "--mode", "readiness")...)
	validateSchema(t, r.stdout)
	readyFile := filepath.Join(dir, "readiness.json")
	require.NoError(t, os.WriteFile(readyFile, []byte(r.stdout), 0o600))
	t.Logf("readiness (exit %d): %v", r.code, keys(ready))
	assert.Equal(t, 1, r.code, "SPF does not authorize the gateway yet (spf.ranges-authorized fail); stderr %s", r.stderr)
	for _, f := range ready.Findings {
		assert.NotEqual(t, "error", f.Status, "everything in the lab answers: %s %s %s", f.ID, f.Subject, f.Message)
	}
	assert.Equal(t, "info", statusOf(t, ready, "mx.at-gateway", cutoverDomain), "the MX is not at the gateway yet, as expected before the cutover")
	assert.Equal(t, "pass", statusOf(t, ready, "mx.present", cutoverDomain))
	assert.Equal(t, []any{"10 cloud-open.tls.test."}, findingByID(t, ready, "mx.present").Evidence["mx"])
	assert.Equal(t, "pass", statusOf(t, ready, "mx.ns-consistency", cutoverDomain))
	ttl := findingByID(t, ready, "mx.ttl")
	assert.Contains(t, []string{"pass", "info"}, ttl.Status, "an MX TTL of 300 s is short enough for the cutover: %s", ttl.Message)
	assert.EqualValues(t, 300, ttl.Evidence["ttl"], "mx.ttl evidence")
	// The profile names no SPF include, only its range 127.0.62.10/32,
	// which cutover.test's SPF (ip4:127.0.62.21 -all) does not authorize.
	assert.Equal(t, "info", statusOf(t, ready, "spf.gateway-include", cutoverDomain), "profile lab-gateway lists no SPF include")
	assert.Equal(t, "fail", statusOf(t, ready, "spf.ranges-authorized", cutoverDomain), "the gateway's 127.0.62.10 gets SPF fail")
	assert.Equal(t, "pass", statusOf(t, ready, "dmarc.policy", cutoverDomain))
	// The gateway already takes mail for the domain: RCPT accepted, no DATA.
	gwAccepts := findingByID(t, ready, "send.gateway-accepts")
	assert.Equal(t, "pass", gwAccepts.Status, "%s: %s", gwAccepts.ID, gwAccepts.Message)
	assert.Equal(t, cutoverGatewaySubject, gwAccepts.Subject)
	assert.Equal(t, []any{cutoverPostmaster}, gwAccepts.Evidence["to"], "send.gateway-accepts asks for postmaster@DOMAIN")
	assert.EqualValues(t, 250, gwAccepts.Evidence["code"])
	notQueued(t, m, "good")
	assert.True(t, hasLine(smtpdLines(m.since(t), "good"), "connect from "), "the RCPT test reached the gateway listener")
	// TLS of the MX as it is: cloud-open, not yet the gateway.
	for _, id := range []string{"tls.starttls-offered", "tls.handshake", "tls.cert-chain", "tls.cert-hostname", "tls.cert-expiry"} {
		assert.Equal(t, "pass", statusOf(t, ready, id, cutoverCloudSubject), "%s on the current MX", id)
	}
	assert.False(t, hasFindingOn(ready, "tls.", cutoverGatewaySubject), "the gateway is no MX yet: no TLS rows for it")
	assert.False(t, hasFindingOn(ready, "send.inbound", cutoverGatewaySubject), "readiness sends no message")
	assert.Equal(t, "", statusOf(t, ready, "mx.bypass-mx", cutoverDomain))
	l.queueEmpty(t)
	assert.Equal(t, before, len(l.messages(t)), "readiness delivers nothing")

	// 2. The MX change in the served zone.
	z.swap(t)

	// 3. Smoke, right after it.
	m = l.mark(t)
	r, smoke := runMfcheck(t, append(common, "--mode", "smoke", "--send", "--to", cutoverRcpt, "--from", cutoverSender,
		"--bypass-host", lockedHost)...)
	validateSchema(t, r.stdout)
	smokeFile := filepath.Join(dir, "smoke.json")
	require.NoError(t, os.WriteFile(smokeFile, []byte(r.stdout), 0o600))
	t.Logf("smoke (exit %d): %v", r.code, keys(smoke))
	assert.Equal(t, 0, r.code, "nothing fails after the cutover; stderr %s", r.stderr)
	for _, f := range smoke.Findings {
		assert.NotEqual(t, "error", f.Status, "everything in the lab answers: %s %s %s", f.ID, f.Subject, f.Message)
	}
	assert.Equal(t, "pass", statusOf(t, smoke, "mx.at-gateway", cutoverDomain))
	assert.Equal(t, []any{"10 mx-good.tls.test."}, findingByID(t, smoke, "mx.present").Evidence["mx"])
	nsc := findingByID(t, smoke, "mx.ns-consistency")
	assert.Equal(t, "pass", nsc.Status, "every authoritative server serves the new MX: %s", nsc.Message)
	assert.Contains(t, nsc.Message, fmt.Sprint(cutoverAfterSerial), "the new serial")
	assert.Empty(t, slices.DeleteFunc(keys(smoke), func(k string) bool { return !strings.HasPrefix(k, "mx.bypass-mx ") }), "the old MX is gone")
	assert.Equal(t, "pass", statusOf(t, smoke, "spf.ranges-authorized", cutoverDomain), "SPF now has ip4:127.0.62.10")
	for _, id := range []string{"tls.starttls-offered", "tls.handshake", "tls.cert-chain", "tls.cert-hostname", "tls.cert-expiry"} {
		assert.Equal(t, "pass", statusOf(t, smoke, id, cutoverGatewaySubject), "%s on the new MX", id)
	}
	assert.False(t, hasFindingOn(smoke, "tls.", cutoverCloudSubject), "cloud-open is no MX any more")
	in := findingByID(t, smoke, "send.inbound")
	require.Equal(t, "pass", in.Status, "%s: %s\n%v", in.ID, in.Message, in.Evidence)
	assert.Equal(t, cutoverGatewaySubject, in.Subject, "sent through the new MX")
	var ev sendEvidence
	evidenceOf(t, in, &ev)
	require.NotEmpty(t, ev.Token, "send.inbound evidence has no token: %v", in.Evidence)
	require.NotEmpty(t, ev.QueueID, "send.inbound evidence has no queue_id: %v", in.Evidence)
	deliveredTo(t, m, "good", ev.QueueID, cutoverRcpt)
	file := l.waitForToken(t, ev.Token)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	hops := receivedHops(t, data)
	require.NotEmpty(t, hops)
	assert.Equal(t, hop{By: gatewayHost, With: "ESMTPS"}, hops[0], "the gateway's hop in %s", file)
	assert.Contains(t, string(data), "Delivered-To: "+cutoverRcpt)
	by := findingByID(t, smoke, "bypass.direct-delivery")
	assert.Equal(t, "pass", by.Status, "%s: %s", by.ID, by.Message)
	assert.Equal(t, cutoverLockedSubject, by.Subject)
	assert.Equal(t, 550, replyCode(t, by).Code, "cloud-locked refuses: %v", by.Evidence)
	notQueued(t, m, "cloud-locked")
	assert.True(t, hasLine(smtpdLines(m.since(t), "cloud-locked"), "NOQUEUE: reject: RCPT from", refusalText, "to=<"+cutoverRcpt+">"),
		"Postfix refused the bypass RCPT for %s", cutoverRcpt)
	l.queueEmpty(t)
	assert.Equal(t, before+1, len(l.messages(t)), "only the smoke test's message was delivered")

	// 4. What changed.
	requireDiffCommand(t)
	r, d := runDiff(t, readyFile, smokeFile)
	t.Logf("diff readiness -> smoke (exit %d): %s", r.code, r.stdout)
	assert.Equal(t, 0, r.code, "the cutover made nothing worse; stderr %s", r.stderr)
	assert.False(t, d.Worse)
	dom := d.Domains[0]
	require.NotNil(t, dom.MX, "the diff shows the MX change")
	assert.Equal(t, []string{"10 cloud-open.tls.test"}, dom.MX.Before)
	assert.Equal(t, []string{"10 mx-good.tls.test"}, dom.MX.After)
	assert.Equal(t, []string{"10 mx-good.tls.test"}, dom.MX.Added)
	assert.Equal(t, []string{"10 cloud-open.tls.test"}, dom.MX.Removed)
	require.NotNil(t, dom.SPF, "the diff shows the SPF change")
	assert.Equal(t, "v=spf1 ip4:127.0.62.21 -all", dom.SPF.Before.Record)
	assert.Equal(t, "v=spf1 ip4:127.0.62.10 ip4:127.0.62.21 -all", dom.SPF.After.Record)
	for _, want := range []diffChange{
		// info -> pass: pkg/report calls every move to pass "fixed".
		{Change: "fixed", ID: "mx.at-gateway", Subject: cutoverDomain, Before: "info", After: "pass"},
		{Change: "fixed", ID: "spf.ranges-authorized", Subject: cutoverDomain, Before: "fail", After: "pass"},
		{Change: "new", ID: "send.inbound", Subject: cutoverGatewaySubject, After: "pass"},
		{Change: "new", ID: "bypass.direct-delivery", Subject: cutoverLockedSubject, After: "pass"},
		{Change: "new", ID: "tls.cert-chain", Subject: cutoverGatewaySubject, After: "pass"},
		{Change: "removed", ID: "tls.cert-chain", Subject: cutoverCloudSubject, Before: "pass"},
	} {
		got, ok := d.change(want.ID, want.Subject)
		if assert.True(t, ok, "the diff lists %s on %s: %+v", want.ID, want.Subject, dom.Changes) {
			assert.Equal(t, want, got)
		}
	}
	var tlsChanges []string
	for _, c := range dom.TLS {
		tlsChanges = append(tlsChanges, strings.Join(strings.Fields(c.Change+" "+c.Host+" "+c.Before+" "+c.After), " "))
	}
	assert.ElementsMatch(t, []string{"new mx-good.tls.test verified", "removed cloud-open.tls.test verified"}, tlsChanges,
		"the TLS endpoints: the new MX probed, the old one no more")
	for _, c := range dom.Changes {
		assert.False(t, c.Regression, "no regression: %+v", c)
		assert.NotEqual(t, "worse", c.Change, "%+v", c)
	}

	r, rev := runDiff(t, smokeFile, readyFile)
	t.Logf("diff smoke -> readiness (exit %d): %s", r.code, r.stdout)
	assert.Equal(t, 1, r.code, "going back is worse; stderr %s", r.stderr)
	assert.True(t, rev.Worse)
	got, ok := rev.change("spf.ranges-authorized", cutoverDomain)
	assert.True(t, ok, "%+v", rev.Domains[0].Changes)
	assert.Equal(t, diffChange{Change: "worse", ID: "spf.ranges-authorized", Subject: cutoverDomain, Before: "pass", After: "fail", Regression: true}, got)
	got, ok = rev.change("mx.at-gateway", cutoverDomain)
	assert.True(t, ok, "%+v", rev.Domains[0].Changes)
	assert.Equal(t, diffChange{Change: "worse", ID: "mx.at-gateway", Subject: cutoverDomain, Before: "pass", After: "info"}, got,
		"pass -> info is worse, but below --fail-on fail")
	if assert.NotNil(t, rev.Domains[0].MX) {
		assert.Equal(t, []string{"10 cloud-open.tls.test"}, rev.Domains[0].MX.Added)
	}
}
