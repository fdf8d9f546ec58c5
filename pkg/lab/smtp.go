package lab

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mfcheck/mfcheck/internal/testpki"
)

// The lab's SMTP hosts: the gateway's MX and smart hosts and the Microsoft
// 365 MX, each with the TLS setup it shows in the demo. Addresses match the
// lab zones. A real gateway would relay; these accept mail for the lab
// domain into memory and refuse everything else.
type mailHost struct {
	name  string
	addrs []string
	// cert describes the certificate the host presents.
	cert certKind
}

type certKind int

const (
	certValid certKind = iota
	// certExpiringSoon expires within the 21-day warning window.
	certExpiringSoon
	// certNoIntermediate is valid but served without its intermediate: an
	// Exchange Online connector set to "issued by a trusted CA" fails on it.
	certNoIntermediate
)

var mailHosts = []mailHost{
	{name: "eu-smtp-inbound-1.mimecast.com", addrs: []string{"127.0.55.31"}},
	{name: "eu-smtp-inbound-2.mimecast.com", addrs: []string{"127.0.55.32"}, cert: certExpiringSoon},
	{name: "eu-smtp-o365-outbound-1.mimecast.com", addrs: []string{"127.0.55.41"}},
	{name: "eu-smtp-o365-outbound-2.mimecast.com", addrs: []string{"127.0.55.42"}, cert: certNoIntermediate},
	{name: "eu-smtp-outbound-1.mimecast.com", addrs: []string{"127.0.55.43"}},
	{name: "eu-smtp-outbound-2.mimecast.com", addrs: []string{"127.0.55.44"}},
	// The zone also gives this host ::1; it is served there when the
	// machine has IPv6 loopback.
	{name: "contoso-example.mail.protection.outlook.com", addrs: []string{"127.0.55.20", "::1"}},
}

// Message is one message a lab SMTP host accepted.
type Message struct {
	Host     string // the lab host that accepted it
	From     string
	To       []string
	Data     []byte
	Received time.Time
}

// mailWorld is the SMTP and HTTPS half of a World: the mail hosts and the
// MTA-STS policy host.
type mailWorld struct {
	servers []*smtp.Server
	https   *http.Server
	ca      *testpki.CA
	// httpsPort is where the MTA-STS policy host listens.
	httpsPort int

	mu       sync.Mutex
	messages []Message
}

// maxLabMessage bounds what a lab host stores, so a runaway client cannot
// fill memory.
const maxLabMessage = 1 << 20

func startMail() (*mailWorld, int, error) {
	root, err := testpki.NewCA("mfcheck lab root CA")
	if err != nil {
		return nil, 0, err
	}
	issuing, err := root.Intermediate("mfcheck lab issuing CA")
	if err != nil {
		return nil, 0, err
	}
	mw := &mailWorld{ca: root}
	var lastErr error
	// Every host must listen on the same port (MX records carry none);
	// the port the OS picks for the first may be taken on another address.
	for attempt := 0; attempt < 10; attempt++ {
		port, err := mw.listenAll(issuing, 0)
		if err == nil {
			if mw.httpsPort, err = mw.startMTASTS(issuing); err != nil {
				mw.close()
				return nil, 0, err
			}
			return mw, port, nil
		}
		mw.close()
		lastErr = err
	}
	return nil, 0, fmt.Errorf("lab: could not start the SMTP hosts on one port: %w", lastErr)
}

// listenAll starts every lab host on port (0: let the OS choose for the
// first host and use that port for the rest).
func (mw *mailWorld) listenAll(issuing *testpki.CA, port int) (int, error) {
	now := time.Now()
	for _, h := range mailHosts {
		opts := testpki.LeafOptions{DNSNames: []string{h.name}, NotBefore: now.Add(-30 * 24 * time.Hour), NotAfter: now.Add(180 * 24 * time.Hour)}
		if h.cert == certExpiringSoon {
			opts.NotAfter = now.Add(12*24*time.Hour + time.Hour)
		}
		leaf, err := issuing.Leaf(opts)
		if err != nil {
			return 0, err
		}
		cert := leaf.TLSCertificate(h.cert != certNoIntermediate)
		for _, addr := range h.addrs {
			l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
			if err != nil {
				if strings.Contains(addr, ":") && port != 0 {
					// No IPv6 loopback here: the probe will say it could
					// not connect, which is what a real IPv6 gap looks like.
					continue
				}
				return 0, err
			}
			if port == 0 {
				port = l.Addr().(*net.TCPAddr).Port
			}
			s := smtp.NewServer(&labBackend{world: mw, host: h.name})
			s.Domain = h.name
			s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			s.ReadTimeout, s.WriteTimeout = 30*time.Second, 30*time.Second
			s.MaxMessageBytes, s.MaxRecipients = maxLabMessage, 10
			s.ErrorLog = discardLogger{}
			mw.servers = append(mw.servers, s)
			go func() { _ = s.Serve(l) }()
		}
	}
	return port, nil
}

func (mw *mailWorld) close() {
	for _, s := range mw.servers {
		_ = s.Close()
	}
	mw.servers = nil
	if mw.https != nil {
		_ = mw.https.Close()
		mw.https = nil
	}
}

// roots is the pool that verifies the lab's certificates (the lab's own
// root CA): what --ca-file adds for a private CA.
func (mw *mailWorld) roots() *x509.CertPool { return mw.ca.Pool() }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

type labBackend struct {
	world *mailWorld
	host  string
}

func (b *labBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &labSession{backend: b}, nil
}

type labSession struct {
	backend *labBackend
	from    string
	to      []string
}

func (s *labSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.to = from, nil
	return nil
}

// Rcpt accepts only the lab's two domains: the customer's and the simulated
// outside mailbox the outbound test writes to. The lab never relays
// (DESIGN.md: a test message goes only to recipients the user named).
func (s *labSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	lower := strings.ToLower(to)
	if !strings.HasSuffix(lower, "@"+Domain) && !strings.HasSuffix(lower, "@"+ExternalDomain) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied: the lab accepts mail for " + Domain + " and " + ExternalDomain + " only"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *labSession) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, maxLabMessage+1)); err != nil {
		return err
	}
	if buf.Len() > maxLabMessage {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big for the lab"}
	}
	if len(s.to) == 0 {
		return errors.New("no valid recipients")
	}
	w := s.backend.world
	w.mu.Lock()
	w.messages = append(w.messages, Message{Host: s.backend.host, From: s.from, To: s.to, Data: buf.Bytes(), Received: time.Now()})
	w.mu.Unlock()
	return nil
}

func (s *labSession) Reset()        { s.from, s.to = "", nil }
func (s *labSession) Logout() error { return nil }
