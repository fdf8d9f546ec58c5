package policy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Fetch failure classes. Only errFetchDNS and errFetchOurs mean "could not
// check"; the others are properties of the domain's policy host, which
// senders meet too.
var (
	errFetchDNS     = errors.New("policy host lookup failed")
	errFetchOurs    = errors.New("our deadline ran out")
	errNoAddress    = errors.New("policy host has no address")
	errConnect      = errors.New("cannot connect")
	errCertificate  = errors.New("certificate not valid")
	errFetchTimeout = errors.New("fetch timed out")
	errHTTP         = errors.New("bad HTTP response")
)

// PolicyFetch is what fetching the policy file showed (RFC 8461 §3.3).
type PolicyFetch struct {
	URL       string   `json:"url"`
	Host      string   `json:"host"`
	Addresses []string `json:"addresses,omitempty"`
	// Connected is the address:port that answered.
	Connected   string `json:"connected,omitempty"`
	TLSVersion  string `json:"tls_version,omitempty"`
	Certificate *Cert  `json:"certificate,omitempty"`
	// CertError says why the certificate is not valid for Host.
	CertError   string `json:"certificate_error,omitempty"`
	StatusCode  int    `json:"status_code,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Location    string `json:"location,omitempty"`
	// Size is the number of body octets read (at most MaxPolicySize+1).
	Size int `json:"size,omitempty"`
	// Body is the policy text as fetched (when it is text and fits).
	Body       string  `json:"body,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`

	class error
	body  []byte
}

// Cert is the part of the leaf certificate a reader needs.
type Cert struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	DNSNames []string  `json:"dns_names,omitempty"`
	NotAfter time.Time `json:"not_after"`
	Chain    int       `json:"chain_length"`
}

// fetchPolicy fetches https://mta-sts.<domain>/.well-known/mta-sts.txt:
// the host's addresses come from r (never the system resolver), the TLS
// handshake uses SNI mta-sts.<domain> and the certificate is verified for
// that name against o.Roots (§3.3: "the certificate MUST be valid for the
// mta-sts host"), redirects are not followed (§3.3) and the body is read up
// to MaxPolicySize+1 octets, all within o.FetchTimeout.
func fetchPolicy(ctx context.Context, r Resolver, domain string, o Options) *PolicyFetch {
	host := "mta-sts." + domain
	pf := &PolicyFetch{Host: host, URL: "https://" + host + "/.well-known/mta-sts.txt"}
	start := time.Now()
	defer func() { pf.DurationMS = float64(time.Since(start).Microseconds()) / 1000 }()
	fail := func(class error, format string, a ...any) *PolicyFetch {
		if ctx.Err() != nil && class != errFetchDNS {
			class = errFetchOurs
		}
		pf.class = class
		pf.Error = fmt.Sprintf(format, a...)
		return pf
	}

	addrs, err := lookupAddrs(ctx, r, host)
	pf.Addresses = addrs
	if err != nil {
		return fail(errFetchDNS, "looking up %s: %v", host, err)
	}
	if len(addrs) == 0 {
		return fail(errNoAddress, "%s has no A or AAAA record", host)
	}

	timeout := o.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	port := o.HTTPSPort
	if port == 0 {
		port = 443
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	var mu sync.Mutex
	var dialErrs []string
	tr := &http.Transport{
		// Proxy stays nil: the policy host is reached directly, as senders
		// reach it, whatever HTTPS_PROXY says.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			// The transport asks for host:443; we connect to the addresses
			// our resolver gave, in order, until one answers.
			for _, a := range addrs {
				addr := net.JoinHostPort(a, strconv.Itoa(port))
				c, err := dial(ctx, "tcp", addr)
				if err == nil {
					mu.Lock()
					pf.Connected = addr
					mu.Unlock()
					return c, nil
				}
				mu.Lock()
				dialErrs = append(dialErrs, err.Error())
				mu.Unlock()
				if ctx.Err() != nil {
					break
				}
			}
			return nil, fmt.Errorf("%w to %s on port %d: %s", errConnect, strings.Join(addrs, ", "), port, strings.Join(dialErrs, "; "))
		},
		TLSClientConfig: &tls.Config{
			ServerName: host,
			// Verification is done in VerifyConnection, so the certificate
			// is recorded as evidence even when it is not valid.
			InsecureSkipVerify: true, //nolint:gosec // verified below
			VerifyConnection: func(cs tls.ConnectionState) error {
				mu.Lock()
				defer mu.Unlock()
				pf.TLSVersion = tls.VersionName(cs.Version)
				if len(cs.PeerCertificates) == 0 {
					pf.CertError = "the server sent no certificate"
					return fmt.Errorf("%w: %s", errCertificate, pf.CertError)
				}
				leaf := cs.PeerCertificates[0]
				pf.Certificate = &Cert{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), DNSNames: leaf.DNSNames, NotAfter: leaf.NotAfter, Chain: len(cs.PeerCertificates)}
				inter := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					inter.AddCert(c)
				}
				_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: o.Roots, Intermediates: inter, CurrentTime: now()})
				if err != nil {
					pf.CertError = err.Error()
					return fmt.Errorf("%w: %v", errCertificate, err)
				}
				return nil
			},
		},
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		// §3.3: "HTTP 3xx redirects MUST NOT be followed".
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, pf.URL, nil)
	if err != nil {
		return fail(errHTTP, "building the request: %v", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, errCertificate):
			return fail(errCertificate, "the certificate of %s is not valid for %s: %s", pf.Connected, host, pf.CertError)
		case errors.Is(err, errConnect):
			return fail(errConnect, "%v", unwrapURL(err))
		case fctx.Err() != nil:
			return fail(errFetchTimeout, "no answer from %s within %s", host, timeout)
		default:
			return fail(errConnect, "fetching %s: %v", pf.URL, unwrapURL(err))
		}
	}
	defer resp.Body.Close()
	pf.StatusCode = resp.StatusCode
	pf.ContentType = resp.Header.Get("Content-Type")
	pf.Location = resp.Header.Get("Location")
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	pf.Size = len(body)
	if err != nil {
		if fctx.Err() != nil {
			return fail(errFetchTimeout, "the body did not arrive within %s (%d octets read)", timeout, len(body))
		}
		return fail(errHTTP, "reading the body: %v", err)
	}
	pf.body = body
	mt, _, _ := mime.ParseMediaType(pf.ContentType)
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fail(errHTTP, "HTTP %d redirect to %q: senders do not follow redirects (RFC 8461 §3.3)", resp.StatusCode, pf.Location)
	case resp.StatusCode != http.StatusOK:
		return fail(errHTTP, "HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	case mt != "text/plain":
		ct := pf.ContentType
		if ct == "" {
			ct = "none"
		}
		return fail(errHTTP, "content type %s, not text/plain: senders that check it ignore the policy (RFC 8461 §3.2)", ct)
	case len(body) > MaxPolicySize:
		return fail(errHTTP, "the body is larger than %d octets", MaxPolicySize)
	}
	pf.Body = string(body)
	return pf
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// lookupAddrs resolves host's A and AAAA records at once. An error comes
// back only when neither question was answered with addresses and at least
// one failed: then we cannot say the host has no address.
func lookupAddrs(ctx context.Context, r Resolver, host string) ([]string, error) {
	type res struct {
		addrs []string
		err   error
	}
	var results [2]res
	var wg sync.WaitGroup
	for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := r.Lookup(ctx, host, qt)
			results[i].err = err
			if ans == nil {
				return
			}
			for _, a := range ans.Addrs() {
				results[i].addrs = append(results[i].addrs, a.String())
			}
		}()
	}
	wg.Wait()
	addrs := append(results[0].addrs, results[1].addrs...)
	if len(addrs) > 0 {
		return addrs, nil
	}
	return nil, errors.Join(results[0].err, results[1].err)
}
