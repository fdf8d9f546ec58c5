package lab

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/mfcheck/mfcheck/internal/testpki"
)

// mtaSTSAddr is mta-sts.contoso.example in the lab zone.
const mtaSTSAddr = "127.0.55.50"

// mtaSTSPolicy is the lab's policy (RFC 8461 §3.2). Testing mode, and only
// the gateway's MX names: the leftover Microsoft 365 MX is not covered, a
// mistake the report should point out before the mode becomes enforce.
const mtaSTSPolicy = "version: STSv1\r\nmode: testing\r\nmx: *.mimecast.com\r\nmax_age: 604800\r\n"

// startMTASTS serves the policy over HTTPS at mta-sts.contoso.example and
// returns the port.
func (mw *mailWorld) startMTASTS(issuing *testpki.CA) (int, error) {
	leaf, err := issuing.Leaf(testpki.LeafOptions{DNSNames: []string{"mta-sts." + Domain}})
	if err != nil {
		return 0, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(mtaSTSAddr, "0"))
	if err != nil {
		return 0, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/mta-sts.txt", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(mtaSTSPolicy))
	})
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate(true)}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	mw.https = srv
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the probe reports a dead policy host as what it is
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, nil
}
