package policy_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/profile"
)

// The four parts run at once, and every (name, type) is asked once: with
// 100 ms per answer the whole analysis costs the longest chain of
// dependent lookups (_mta-sts TXT, then mta-sts A/AAAA, then the fetch),
// not the sum of a dozen lookups.
func TestAnalyzeConcurrentAndDistinct(t *testing.T) {
	w, p := startWorld(t), newPKI(t)
	port := policyServer(t, p.leaf(t, "mta-sts.sts.test"), servePolicy(goodPolicy))
	m365, err := profile.Builtin().Get("microsoft365")
	require.NoError(t, err)
	o := stsOptions(t, p, port)
	o.Mailbox = m365
	o.Selectors = []string{"s2026"}
	w.dns.SetDelay(100 * time.Millisecond)

	start := time.Now()
	res := w.analyze(t, "sts.test", o)
	took := time.Since(start)
	assert.Less(t, took, 450*time.Millisecond, "critical path is 2 round trips plus the fetch")

	seen := map[string]int{}
	for _, q := range w.dns.Log() {
		seen[q.Name+"/"+typeName(q.Type)]++
	}
	for k, n := range seen {
		assert.Equal(t, 1, n, "%s asked %d times", k, n)
	}
	assert.GreaterOrEqual(t, len(seen), 9, "%v", seen)

	// The result is JSON data.
	b, err := json.Marshal(res)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	for _, k := range []string{"dmarc", "mta_sts", "tls_rpt", "dkim", "findings"} {
		assert.Contains(t, back, k)
	}
	assert.NotNil(t, res.MTASTS.Policy)
	assert.Len(t, res.DKIM, 3)
}

func typeName(t uint16) string {
	return map[uint16]string{1: "A", 15: "MX", 16: "TXT", 28: "AAAA", 5: "CNAME"}[t]
}
