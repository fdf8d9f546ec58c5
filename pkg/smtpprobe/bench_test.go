package smtpprobe

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// benchTargets starts n servers on 127.0.70.1..n, each 50 ms away (every
// reply, the TLS server flight included, is held back 50 ms).
func benchTargets(b *testing.B, n int) []Target {
	p := testPKI(b)
	cfg := serverConfig(p.leaf.TLSCertificate(true))
	var ts []Target
	for i := 1; i <= n; i++ {
		ts = append(ts, smtpServer{TLS: cfg, IP: fmt.Sprintf("127.0.70.%d", i),
			Wrap: func(c net.Conn) net.Conn { return newDelayConn(c, 50*time.Millisecond) }}.start(b))
	}
	return ts
}

func checkResults(b *testing.B, rs []*Result) {
	for _, r := range rs {
		if r.Err != "" || r.TLS == nil || !r.TLS.Verified {
			b.Fatalf("%s: probe failed: %s", r.Subject, r.Err)
		}
	}
}

// BenchmarkProbeAll probes 8 addresses concurrently: the wall time should
// be about one probe's (six 50 ms round trips), not eight.
func BenchmarkProbeAll(b *testing.B) {
	ts := benchTargets(b, 8)
	o := testPKI(b).opts()
	b.ResetTimer()
	for b.Loop() {
		checkResults(b, ProbeAll(context.Background(), ts, o))
	}
}

// BenchmarkProbeSerial probes the same 8 addresses one after another, as
// a sequential checker would.
func BenchmarkProbeSerial(b *testing.B) {
	ts := benchTargets(b, 8)
	o := testPKI(b).opts()
	b.ResetTimer()
	for b.Loop() {
		for _, t := range ts {
			checkResults(b, []*Result{Probe(context.Background(), t, o)})
		}
	}
}
