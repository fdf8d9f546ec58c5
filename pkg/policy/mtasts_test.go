package policy_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/testpki"
	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/policy"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

const goodPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.sts.test\r\nmx: *.sts.test\r\nmax_age: 604800\r\n"

// stsOptions are the options of a fetch from the policy server on port.
func stsOptions(t *testing.T, p *pki, port int) policy.Options {
	return policy.Options{Mode: policy.ModeHealth, Roots: p.ca.Pool(), HTTPSPort: port, Dial: loopbackOnly(t), FetchTimeout: 2 * time.Second}
}

func filter(m map[string][]report.Status, area string) map[string][]report.Status {
	out := map[string][]report.Status{}
	for k, v := range m {
		if strings.HasPrefix(k, area+".") {
			out[k] = v
		}
	}
	return out
}

func TestMTASTSGoodPolicy(t *testing.T) {
	w, p := startWorld(t), newPKI(t)
	port := policyServer(t, p.leaf(t, "mta-sts.sts.test"), servePolicy(goodPolicy))
	res := w.analyze(t, "sts.test", stsOptions(t, p, port))

	assert.Equal(t, map[string][]report.Status{
		policy.IDMTASTSRecord: {"pass"}, policy.IDMTASTSPolicy: {"pass"}, policy.IDMTASTSMXMatch: {"pass"},
	}, filter(statuses(res.Findings), "mtasts"))
	m := res.MTASTS
	require.NotNil(t, m.Policy)
	assert.Equal(t, "20260101000000", m.Record.ID)
	assert.Equal(t, "enforce", m.Policy.Mode)
	assert.Equal(t, []string{"mx1.sts.test", "*.sts.test"}, m.Policy.MX)
	assert.Equal(t, int64(604800), m.Policy.MaxAge)
	assert.Equal(t, "dns", m.MXSource)
	assert.Equal(t, []policy.MXMatch{{Host: "mx1.sts.test", Pattern: "mx1.sts.test"}, {Host: "mx2.sts.test", Pattern: "*.sts.test"}}, m.Matches)
	assert.Empty(t, m.Unused)
	f := one(t, res.Findings, policy.IDMTASTSPolicy)
	assert.Equal(t, "mta-sts.sts.test", f.Subject)
	assert.Equal(t, 200, f.Evidence["status_code"])
	assert.Equal(t, "text/plain; charset=utf-8", f.Evidence["content_type"])
	assert.Equal(t, goodPolicy, f.Evidence["body"])
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(port), m.Fetch.Connected)
	assert.Equal(t, []string{"mta-sts.sts.test"}, m.Fetch.Certificate.DNSNames)
	// TLS-RPT is published and valid.
	assert.Equal(t, []report.Status{"pass"}, statuses(res.Findings)[policy.IDTLSRPTPresent])
	assert.Equal(t, []string{"mailto:tls-reports@sts.test", "https://tlsrpt.sts.test/v1"}, res.TLSRPT.Record.RUA)
}

// Every way the policy host can be wrong is a fail (senders meet it too),
// with the HTTP and certificate evidence.
func TestMTASTSPolicyHostFailures(t *testing.T) {
	p := newPKI(t)
	good := p.leaf(t, "mta-sts.sts.test")
	selfSigned, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mta-sts.sts.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	cases := []struct {
		name    string
		handler http.Handler
		wrong   bool
		self    bool
		expired bool
		want    string
	}{
		{name: "wrong content type", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(goodPolicy))
		}), want: "content type text/html, not text/plain"},
		{name: "self-signed certificate", handler: servePolicy(goodPolicy), self: true, want: "certificate of 127.0.0.1"},
		{name: "certificate for another name", handler: servePolicy(goodPolicy), wrong: true, want: "not valid for mta-sts.sts.test"},
		{name: "expired certificate", handler: servePolicy(goodPolicy), expired: true, want: "expired"},
		{name: "redirect", handler: http.RedirectHandler("https://policies.example.net/sts.txt", http.StatusMovedPermanently), want: "HTTP 301 redirect to \"https://policies.example.net/sts.txt\""},
		{name: "oversized body", handler: servePolicy(goodPolicy + strings.Repeat("x-pad: "+strings.Repeat("a", 100)+"\n", 700)), want: "larger than 65536 octets"},
		{name: "404", handler: http.NotFoundHandler(), want: "HTTP 404 Not Found"},
		{name: "invalid policy", handler: servePolicy("version: STSv1\nmode: strict\nmx: mx1.sts.test\nmax_age: 86400\n"), want: "mode \"strict\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := startWorld(t)
			cert := good
			switch {
			case tc.self:
				cert = selfSigned.TLSCertificate(false)
			case tc.wrong:
				cert = p.leaf(t, "www.sts.test")
			case tc.expired:
				l, err := p.ca.Leaf(testpki.LeafOptions{DNSNames: []string{"mta-sts.sts.test"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
				require.NoError(t, err)
				cert = l.TLSCertificate(true)
			}
			port := policyServer(t, cert, tc.handler)
			res := w.analyze(t, "sts.test", stsOptions(t, p, port))
			f := one(t, res.Findings, policy.IDMTASTSPolicy)
			assert.Equal(t, report.StatusFail, f.Status, f.Message)
			assert.Contains(t, f.Message, tc.want)
			assert.NotEmpty(t, f.Remediation)
			assert.Empty(t, byID(res.Findings, policy.IDMTASTSMXMatch), "no policy, nothing to match")
			if tc.self || tc.wrong || tc.expired {
				assert.NotEmpty(t, f.Evidence["certificate_error"])
				assert.NotNil(t, f.Evidence["certificate"])
			} else {
				assert.NotZero(t, f.Evidence["status_code"])
			}
			if !strings.Contains(tc.name, "invalid") {
				assert.Contains(t, f.Message, "senders without a cached policy deliver as if the domain had no MTA-STS")
			}
		})
	}
}

// hungServer accepts connections and never says anything.
func hungServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { close(done); _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; _ = c.Close() }()
		}
	}()
	return port(t, ln.Addr())
}

func TestMTASTSDeadlines(t *testing.T) {
	p := newPKI(t)
	t.Run("a policy host that never answers fails after FetchTimeout", func(t *testing.T) {
		w := startWorld(t)
		o := stsOptions(t, p, hungServer(t))
		o.FetchTimeout = 300 * time.Millisecond
		start := time.Now()
		res := w.analyze(t, "sts.test", o)
		assert.Less(t, time.Since(start), 3*time.Second)
		f := one(t, res.Findings, policy.IDMTASTSPolicy)
		assert.Equal(t, report.StatusFail, f.Status, f.Message)
		assert.Contains(t, f.Message, "no answer from mta-sts.sts.test within 300ms")
	})
	t.Run("our own deadline running out is an error", func(t *testing.T) {
		w := startWorld(t)
		o := stsOptions(t, p, hungServer(t))
		o.FetchTimeout = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		res := policy.Analyze(ctx, w.c, "sts.test", o)
		f := one(t, res.Findings, policy.IDMTASTSPolicy)
		assert.Equal(t, report.StatusError, f.Status, f.Message)
	})
}

func TestMTASTSDNS(t *testing.T) {
	p := newPKI(t)
	t.Run("no record is info, and nothing is fetched", func(t *testing.T) {
		w := startWorld(t)
		res := w.analyze(t, "nosts.test", policy.Options{})
		f := one(t, res.Findings, policy.IDMTASTSRecord)
		assert.Equal(t, report.StatusInfo, f.Status)
		assert.Contains(t, f.Remediation, `_mta-sts.nosts.test. IN TXT "v=STSv1; id=`)
		assert.Empty(t, byID(res.Findings, policy.IDMTASTSPolicy))
		assert.Zero(t, w.dns.Count("mta-sts.nosts.test", dns.TypeA))
		assert.Equal(t, report.StatusInfo, one(t, res.Findings, policy.IDTLSRPTPresent).Status)
	})
	t.Run("invalid record", func(t *testing.T) {
		res := startWorld(t).analyze(t, "badsts.test", policy.Options{})
		f := one(t, res.Findings, policy.IDMTASTSRecord)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "id=2026-01-01 must be 1 to 32 letters and digits")
		assert.Empty(t, byID(res.Findings, policy.IDMTASTSPolicy))
	})
	t.Run("two records", func(t *testing.T) {
		res := startWorld(t).analyze(t, "multists.test", policy.Options{})
		assert.Equal(t, report.StatusFail, one(t, res.Findings, policy.IDMTASTSRecord).Status)
		assert.Equal(t, report.StatusFail, one(t, res.Findings, policy.IDTLSRPTPresent).Status)
	})
	t.Run("record behind a CNAME; policy host without address", func(t *testing.T) {
		res := startWorld(t).analyze(t, "alias.test", policy.Options{})
		f := one(t, res.Findings, policy.IDMTASTSRecord)
		assert.Equal(t, report.StatusPass, f.Status)
		assert.Equal(t, []string{"sts-records.provider.test"}, f.Evidence["cnames"])
		pf := one(t, res.Findings, policy.IDMTASTSPolicy)
		assert.Equal(t, report.StatusFail, pf.Status)
		assert.Contains(t, pf.Message, "mta-sts.alias.test has no A or AAAA record")
	})
	t.Run("SERVFAIL on the record is an error", func(t *testing.T) {
		w := startWorld(t)
		w.dns.SetFault("_mta-sts.sts.test", dnstest.Fault{Rcode: dns.RcodeServerFailure})
		res := w.analyze(t, "sts.test", policy.Options{})
		assert.Equal(t, report.StatusError, one(t, res.Findings, policy.IDMTASTSRecord).Status)
	})
	t.Run("SERVFAIL on the policy host's address is an error, not a fail", func(t *testing.T) {
		w := startWorld(t)
		w.dns.SetFault("mta-sts.sts.test", dnstest.Fault{Rcode: dns.RcodeServerFailure})
		res := w.analyze(t, "sts.test", stsOptions(t, p, 1))
		f := one(t, res.Findings, policy.IDMTASTSPolicy)
		assert.Equal(t, report.StatusError, f.Status, f.Message)
	})
	t.Run("timeout on the MX lookup is an error", func(t *testing.T) {
		w := startWorld(t)
		w.dns.SetFault("sts.test", dnstest.Fault{Drop: true, Types: []uint16{dns.TypeMX}})
		port := policyServer(t, p.leaf(t, "mta-sts.sts.test"), servePolicy(goodPolicy))
		res := w.analyze(t, "sts.test", stsOptions(t, p, port))
		assert.Equal(t, report.StatusPass, one(t, res.Findings, policy.IDMTASTSPolicy).Status)
		assert.Equal(t, report.StatusError, one(t, res.Findings, policy.IDMTASTSMXMatch).Status)
	})
}

func TestMTASTSMXMatching(t *testing.T) {
	p := newPKI(t)
	stale := func(mode string) string {
		return "version: STSv1\nmode: " + mode + "\nmx: mx1.sts.test\nmx: *.mail.protection.outlook.com\nmax_age: 1209600\n"
	}
	for _, tc := range []struct {
		mode string
		want report.Status
	}{{"enforce", report.StatusFail}, {"testing", report.StatusWarn}} {
		t.Run("both directions, "+tc.mode, func(t *testing.T) {
			w := startWorld(t)
			port := policyServer(t, p.leaf(t, "mta-sts.sts.test"), servePolicy(stale(tc.mode)))
			res := w.analyze(t, "sts.test", stsOptions(t, p, port))
			fs := byID(res.Findings, policy.IDMTASTSMXMatch)
			require.Len(t, fs, 2, "%+v", fs)
			assert.Equal(t, tc.want, fs[0].Status)
			assert.Equal(t, "mx2.sts.test", fs[0].Subject)
			assert.Contains(t, fs[0].Remediation, `Add "mx: mx2.sts.test"`)
			assert.Contains(t, fs[0].Remediation, `_mta-sts.sts.test. IN TXT "v=STSv1; id=`)
			assert.Equal(t, report.StatusInfo, fs[1].Status)
			assert.Contains(t, fs[1].Message, "*.mail.protection.outlook.com")
			assert.Equal(t, []string{"*.mail.protection.outlook.com"}, res.MTASTS.Unused)
			if tc.mode == "testing" {
				assert.Equal(t, report.StatusInfo, one(t, res.Findings, policy.IDMTASTSPolicy).Status)
			}
		})
	}

	t.Run("MX hosts from the options are not looked up", func(t *testing.T) {
		w := startWorld(t)
		port := policyServer(t, p.leaf(t, "mta-sts.sts.test"), servePolicy(goodPolicy))
		o := stsOptions(t, p, port)
		o.MXHosts = []string{"MX1.sts.test."}
		res := w.analyze(t, "sts.test", o)
		assert.Equal(t, report.StatusPass, one(t, res.Findings, policy.IDMTASTSMXMatch).Status)
		assert.Equal(t, "options", res.MTASTS.MXSource)
		assert.Zero(t, w.dns.Count("sts.test", dns.TypeMX))
	})

	t.Run("readiness: the gateway's MX must be in the policy before the cutover", func(t *testing.T) {
		w := startWorld(t)
		port := policyServer(t, p.leaf(t, "mta-sts.sts.test"), servePolicy(goodPolicy))
		o := stsOptions(t, p, port)
		o.Mode = policy.ModeReadiness
		o.Profile = &profile.Profile{ID: "gw", Name: "Gateway", Kind: profile.KindGateway,
			MXHosts: []string{"eu-inbound-1.gw.test", "in.sts.test", "<id>.gw.test"}}
		res := w.analyze(t, "sts.test", o)
		fs := byID(res.Findings, policy.IDMTASTSMXMatch)
		require.Len(t, fs, 2, "%+v", fs)
		assert.Equal(t, report.StatusPass, fs[0].Status, "the current MX hosts are covered")
		assert.Equal(t, report.StatusFail, fs[1].Status)
		assert.Equal(t, "eu-inbound-1.gw.test", fs[1].Subject)
		assert.Contains(t, fs[1].Message, "once the MX points at it")
		assert.Equal(t, []string{"<id>.gw.test"}, res.MTASTS.GatewaySkipped)
		assert.Equal(t, []policy.MXMatch{{Host: "eu-inbound-1.gw.test"}, {Host: "in.sts.test", Pattern: "*.sts.test"}}, res.MTASTS.Gateway)
	})

	t.Run("short max_age and testing mode without TLS-RPT", func(t *testing.T) {
		w := startWorld(t)
		w.dns.SetFault("_smtp._tls.sts.test", dnstest.Fault{Rcode: dns.RcodeNameError})
		port := policyServer(t, p.leaf(t, "mta-sts.sts.test"), servePolicy("version: STSv1\nmode: testing\nmx: *.sts.test\nmax_age: 3600\n"))
		res := w.analyze(t, "sts.test", stsOptions(t, p, port))
		assert.Equal(t, []report.Status{"info", "warn"}, statuses(res.Findings)[policy.IDMTASTSPolicy])
		f := one(t, res.Findings, policy.IDTLSRPTPresent)
		assert.Equal(t, report.StatusWarn, f.Status, f.Message)
		assert.Contains(t, f.Message, "testing mode")
	})
}
