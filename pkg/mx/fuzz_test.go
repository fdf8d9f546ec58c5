package mx_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// FuzzAnalyzeZone serves an arbitrary zone body for fuzz.test and runs the MX
// analysis against it through the real resolver: whatever the records, the
// analysis must return valid findings, never panic or hang.
//
// The propagation check is off here: it would query the addresses of
// whatever NS records the fuzzer invents, and tests never leave loopback.
func FuzzAnalyzeZone(f *testing.F) {
	for _, seed := range []string{
		"@ MX 10 mx.fuzz.test.\nmx A 127.0.0.2\n",
		"@ MX 0 .\n",
		"@ MX 0 .\n@ MX 10 mx.fuzz.test.\n",
		"@ MX 10 alias.fuzz.test.\nalias CNAME alias.fuzz.test.\n",
		"@ MX 10 127.0.0.1.\n",
		"@ MX 10 a.fuzz.test.\n@ MX 10 a.fuzz.test.\na AAAA ::1\n",
		"@ MX 10 gone.fuzz.test.\n",
		"@ A 127.0.0.3\n",
		"@ CNAME other.test.\n",
		"* MX 10 mx.fuzz.test.\n",
	} {
		f.Add(seed)
	}
	gw, err := profile.Builtin().Get("mimecast-eu")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		text := "$ORIGIN fuzz.test.\n$TTL 60\n@ SOA ns.fuzz.test. h.fuzz.test. 1 2 3 4 5\n" + body
		z, err := dnstest.ParseZone(strings.NewReader(text), "fuzz.test.", "fuzz")
		if err != nil {
			return
		}
		srv, err := dnstest.NewServer(z)
		if err != nil {
			return
		}
		if err := srv.Start("127.0.0.1:0"); err != nil {
			t.Skip(err)
		}
		defer srv.Close()
		c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, AttemptTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, mode := range []string{mx.ModeReadiness, mx.ModeSmoke} {
			res := mx.Analyze(ctx, c, "fuzz.test", mx.Options{Mode: mode, Profile: gw, Profiles: profile.Builtin(), SkipNSConsistency: true})
			rep := report.New("fuzz.test", mode)
			rep.Add(res.Findings...)
			if err := rep.Validate(); err != nil {
				t.Fatalf("invalid findings for %q: %v", body, err)
			}
			for _, f := range res.Findings {
				if f.Message == "" || f.Subject == "" {
					t.Fatalf("empty message or subject: %+v", f)
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("analysis of %q ran into the deadline", body)
		}
	})
}
