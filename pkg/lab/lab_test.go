package lab_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/lab"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

func TestDemoWorld(t *testing.T) {
	w, err := lab.Start()
	require.NoError(t, err)
	defer w.Close()
	c, err := resolver.New(resolver.Config{Servers: []string{w.Resolver}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	ans, err := c.Lookup(ctx, lab.Domain, dns.TypeMX)
	require.NoError(t, err)
	assert.Len(t, ans.Records, 3)
	ans, err = c.Lookup(ctx, "eu-smtp-inbound-1.mimecast.com", dns.TypeA)
	require.NoError(t, err)
	require.Len(t, ans.Records, 1)
	assert.True(t, ans.Records[0].(*dns.A).A.IsLoopback())
	ans, err = c.Lookup(ctx, "www.example.org", dns.TypeA)
	require.NoError(t, err)
	assert.Equal(t, resolver.OutcomeNXDomain, ans.Outcome, "the root zone makes unknown names NXDOMAIN")

	// The second name server serves the stale copy on the same port.
	_, port, _ := strings.Cut(w.Resolver, ":")
	ans, err = c.QueryServer(ctx, "127.0.54.2:"+port, lab.Domain, dns.TypeSOA)
	require.NoError(t, err)
	assert.EqualValues(t, 2026112301, ans.Records[0].(*dns.SOA).Serial)
}

// Tests and the demo may only ever reach loopback: every address in every
// zone file the project serves must be a loopback address.
func TestZonesUseOnlyLoopbackAddresses(t *testing.T) {
	var files []string
	for _, pattern := range []string{"zones/*.zone", "zones/*/*.zone", "../../testdata/zones/*.zone", "../../testdata/zones/*/*.zone"} {
		m, err := filepath.Glob(pattern)
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.Greater(t, len(files), 10)
	for _, f := range files {
		z, err := dnstest.LoadZoneFile(f, "")
		require.NoError(t, err, f)
		for _, rr := range z.Records {
			var ip netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				ip, _ = netip.AddrFromSlice(v.A.To4())
			case *dns.AAAA:
				ip, _ = netip.AddrFromSlice(v.AAAA)
			default:
				continue
			}
			assert.True(t, ip.IsLoopback(), "%s: %s is not on loopback", f, rr)
		}
	}
}
