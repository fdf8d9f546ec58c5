package mx_test

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/lab"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// startZones serves testdata/zones on 127.0.53.1/127.0.53.2 (random port),
// the same files NSD serves in CI.
func startZones(t *testing.T) *lab.World {
	t.Helper()
	w, err := lab.StartDir("../../testdata/zones", "127.0.53.1", "127.0.53.2")
	require.NoError(t, err)
	t.Cleanup(w.Close)
	return w
}

func analyze(t *testing.T, w *lab.World, domain string, opt mx.Options) (*mx.Result, *resolver.Client) {
	t.Helper()
	c, err := resolver.New(resolver.Config{Servers: []string{w.Resolver}, AttemptTimeout: time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opt.NSPort = w.NSPort
	if opt.Profiles == nil {
		opt.Profiles = profile.Builtin()
	}
	return mx.Analyze(ctx, c, domain, opt), c
}

// statuses maps finding ID to the statuses it was reported with, in order.
func statuses(fs []report.Finding) map[string][]report.Status {
	out := map[string][]report.Status{}
	for _, f := range fs {
		out[f.ID] = append(out[f.ID], f.Status)
	}
	return out
}

func byID(fs []report.Finding, id string) []report.Finding {
	var out []report.Finding
	for _, f := range fs {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func mimecastEU(t *testing.T) *profile.Profile {
	p, err := profile.Builtin().Get("mimecast-eu")
	require.NoError(t, err)
	return p
}

func TestScenarios(t *testing.T) {
	w := startZones(t)
	gw := mimecastEU(t)
	for _, tc := range []struct {
		domain string
		opt    mx.Options
		want   map[string][]report.Status
		absent []string
	}{
		{"good-gw.test", mx.Options{Mode: mx.ModeSmoke, Profile: gw}, map[string][]report.Status{
			mx.IDPresent: {"pass"}, mx.IDTTL: {"info"}, mx.IDIPv6: {"info"}, mx.IDNSConsistency: {"pass"}, mx.IDAtGateway: {"pass"},
		}, []string{mx.IDBypassMX, mx.IDNull, mx.IDTargetCNAME, mx.IDTargetUnresolv}},
		{"eu.good-gw.test", mx.Options{Mode: mx.ModeSmoke, Profile: gw}, map[string][]report.Status{
			mx.IDPresent: {"pass"}, mx.IDNSConsistency: {"pass"}, mx.IDAtGateway: {"pass"},
		}, nil},
		{"bypass.test", mx.Options{Mode: mx.ModeSmoke, Profile: gw}, map[string][]report.Status{
			mx.IDTTL: {"info"}, mx.IDAtGateway: {"fail"}, mx.IDBypassMX: {"fail"},
		}, nil},
		{"bypass.test", mx.Options{Mode: mx.ModeReadiness, Profile: gw}, map[string][]report.Status{
			mx.IDTTL: {"warn"}, mx.IDAtGateway: {"warn"}, mx.IDBypassMX: {"warn"},
		}, nil},
		{"null-mx.test", mx.Options{}, map[string][]report.Status{mx.IDPresent: {"pass"}, mx.IDNull: {"info"}},
			[]string{mx.IDTargetUnresolv, mx.IDIPv6}},
		{"null-mx.test", mx.Options{Mode: mx.ModeSmoke, Profile: gw}, map[string][]report.Status{mx.IDNull: {"info"}, mx.IDAtGateway: {"fail"}}, nil},
		{"null-mixed.test", mx.Options{}, map[string][]report.Status{mx.IDNull: {"fail"}}, nil},
		{"cname-mx.test", mx.Options{}, map[string][]report.Status{mx.IDTargetCNAME: {"warn"}}, []string{mx.IDTargetUnresolv}},
		{"iplit-mx.test", mx.Options{}, map[string][]report.Status{mx.IDTargetIPLit: {"fail"}}, []string{mx.IDTargetUnresolv}},
		{"dangling-mx.test", mx.Options{}, map[string][]report.Status{mx.IDTargetUnresolv: {"fail"}}, nil},
		{"no-mx.test", mx.Options{}, map[string][]report.Status{mx.IDPresent: {"warn"}}, []string{mx.IDTTL}},
		{"dup-mx.test", mx.Options{}, map[string][]report.Status{mx.IDDuplicate: {"warn"}}, nil},
		{"disagree.test", mx.Options{}, map[string][]report.Status{mx.IDNSConsistency: {"fail"}}, nil},
		{"does-not-exist.test", mx.Options{SkipNSConsistency: true}, map[string][]report.Status{mx.IDPresent: {"fail"}}, nil},
	} {
		t.Run(tc.domain+"/"+tc.opt.Mode, func(t *testing.T) {
			res, _ := analyze(t, w, tc.domain, tc.opt)
			got := statuses(res.Findings)
			for id, want := range tc.want {
				assert.Equal(t, want, got[id], "%s: %+v", id, byID(res.Findings, id))
			}
			for _, id := range tc.absent {
				assert.Empty(t, got[id], id)
			}
			for _, f := range res.Findings {
				assert.True(t, f.Status.Valid(), "%s has status %q", f.ID, f.Status)
				assert.NotEmpty(t, f.Message)
				assert.NotEmpty(t, f.Subject)
			}
		})
	}
}

func TestEvidence(t *testing.T) {
	w := startZones(t)
	res, _ := analyze(t, w, "bypass.test", mx.Options{Mode: mx.ModeSmoke, Profile: mimecastEU(t)})
	require.Len(t, res.Hosts, 3)
	assert.Equal(t, "contoso-test.mail.protection.outlook.com.", res.Hosts[2].Name)
	assert.Equal(t, "microsoft365", res.Hosts[2].Platform)
	assert.EqualValues(t, 86400, res.TTL)
	bypass := byID(res.Findings, mx.IDBypassMX)
	require.Len(t, bypass, 1)
	assert.Equal(t, "contoso-test.mail.protection.outlook.com", bypass[0].Subject)
	assert.Contains(t, bypass[0].Remediation, "20 contoso-test.mail.protection.outlook.com.")

	res, _ = analyze(t, w, "disagree.test", mx.Options{})
	require.Len(t, res.Servers, 2)
	assert.Equal(t, "ns1.zones.test", res.Servers[0].NS)
	assert.EqualValues(t, 2026112302, res.Servers[0].Serial)
	assert.EqualValues(t, 2026112301, res.Servers[1].Serial)
	assert.Equal(t, []string{"10 mail.disagree.test."}, res.Servers[1].MX)
	f := byID(res.Findings, mx.IDNSConsistency)
	require.Len(t, f, 1)
	assert.Contains(t, f[0].Message, "disagree")

	res, _ = analyze(t, w, "no-mx.test", mx.Options{})
	assert.True(t, res.Implicit)
	assert.Equal(t, []string{"127.0.53.42"}, res.Hosts[0].IPv4)
}

// "Could not check" stays apart from "misconfigured".
func TestResolverFailuresAreErrors(t *testing.T) {
	w := startZones(t)
	w.DNS[0].SetFault("good-gw.test", dnstest.Fault{Rcode: dns.RcodeServerFailure, Types: []uint16{dns.TypeMX}})
	res, _ := analyze(t, w, "good-gw.test", mx.Options{})
	assert.Equal(t, []report.Status{report.StatusError}, statuses(res.Findings)[mx.IDPresent])

	w.DNS[0].ClearFaults()
	w.DNS[0].SetFault("eu-smtp-inbound-2.mimecast.com", dnstest.Fault{Drop: true})
	res, _ = analyze(t, w, "good-gw.test", mx.Options{})
	un := byID(res.Findings, mx.IDTargetUnresolv)
	require.Len(t, un, 1)
	assert.Equal(t, report.StatusError, un[0].Status)
	assert.Equal(t, "eu-smtp-inbound-2.mimecast.com", un[0].Subject)

	// An unreachable secondary is an error for that server only; the
	// servers that answered are still compared.
	w.DNS[0].ClearFaults()
	w.DNS[1].SetFault("disagree.test", dnstest.Fault{Drop: true})
	res, _ = analyze(t, w, "disagree.test", mx.Options{})
	got := statuses(res.Findings)[mx.IDNSConsistency]
	assert.ElementsMatch(t, []report.Status{report.StatusError, report.StatusPass}, got)
}

// Every (name, type) is asked once, even when several parts of the analysis
// need it: good-gw.test's MX hosts are asked for A and AAAA exactly once.
func TestEachQuestionAskedOnce(t *testing.T) {
	w := startZones(t)
	_, c := analyze(t, w, "good-gw.test", mx.Options{Mode: mx.ModeSmoke, Profile: mimecastEU(t)})
	seen := map[string]int{}
	for _, e := range c.Log() {
		if e.RD {
			seen[e.Name+" "+dns.TypeToString[e.Type]]++
		}
	}
	for q, n := range seen {
		assert.Equal(t, 1, n, q)
	}
	assert.Equal(t, 1, w.DNS[0].Count("eu-smtp-inbound-1.mimecast.com.", dns.TypeA))
}
