package smtpprobe

import (
	"context"
	"crypto/x509"
	"net"
	"strings"
	"time"
)

// Default timeouts. RFC 5321 §4.5.3.2 allows a client to wait 5 minutes for
// the greeting and most replies; a check that waits that long per address
// is useless, so we wait less, but long enough for greet-pause and
// tarpitting servers (Postfix postscreen waits 6 s before its banner,
// Exim's and Sendmail's greet pauses are configurable to tens of seconds).
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultBannerTimeout    = 30 * time.Second
	DefaultCommandTimeout   = 30 * time.Second
	DefaultHandshakeTimeout = 15 * time.Second
	// quitTimeout bounds the polite QUIT: its reply does not matter.
	quitTimeout = 2 * time.Second

	// DefaultHeloName is the EHLO name when Options.HeloName is empty. The
	// probe never sends MAIL or RCPT, and servers apply their HELO name
	// policies (Postfix smtpd_helo_restrictions, delayed by default) at
	// those commands; a name under .invalid (RFC 2606 §2) is a syntactically
	// valid FQDN that cannot belong to anyone and tells the server's admin,
	// in the logs, what connected. Set a real name of the probing host when
	// a server insists on one.
	DefaultHeloName = "mfcheck.invalid"
	// DefaultMaxPerAddress is how many probes ProbeAll runs at once
	// against one address, to stay polite to servers that limit
	// connections per client (Postfix smtpd_client_connection_count_limit).
	DefaultMaxPerAddress = 2
	// DefaultExpiryWarn is when tls.cert-expiry starts warning.
	DefaultExpiryWarn = 21 * 24 * time.Hour
)

// Timeouts bound each phase of a probe; the context's deadline bounds them
// all. Zero means the default.
type Timeouts struct {
	Connect   time.Duration `json:"connect"`
	Banner    time.Duration `json:"banner"`
	Command   time.Duration `json:"command"` // each of EHLO, STARTTLS, EHLO after TLS
	Handshake time.Duration `json:"handshake"`
}

// Options configure probes. The zero value is usable.
type Options struct {
	// HeloName is the EHLO argument; DefaultHeloName when empty.
	HeloName string
	// Roots verify the chain; nil means the system roots (the CLI adds
	// --ca-file here).
	Roots *x509.CertPool
	// Now is the clock for certificate validity; time.Now when nil.
	Now func() time.Time
	// Dial connects; a net.Dialer when nil.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Timeouts per phase.
	Timeouts Timeouts
	// MaxPerAddress is how many connections ProbeAll opens to one address
	// at once; DefaultMaxPerAddress when 0 or less.
	MaxPerAddress int
	// Limiter, when set, is shared with other ProbeAll calls so the
	// per-address bound holds across them; its own max then applies.
	Limiter *Limiter
	// ExpiryWarn: a certificate expiring within this is a warning;
	// DefaultExpiryWarn when 0.
	ExpiryWarn time.Duration
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	// A CR or LF in the name would let a caller inject commands.
	if o.HeloName == "" || strings.ContainsAny(o.HeloName, "\r\n \t") {
		o.HeloName = DefaultHeloName
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		d := &net.Dialer{}
		o.Dial = d.DialContext
	}
	o.Timeouts.Connect = orDefault(o.Timeouts.Connect, DefaultConnectTimeout)
	o.Timeouts.Banner = orDefault(o.Timeouts.Banner, DefaultBannerTimeout)
	o.Timeouts.Command = orDefault(o.Timeouts.Command, DefaultCommandTimeout)
	o.Timeouts.Handshake = orDefault(o.Timeouts.Handshake, DefaultHandshakeTimeout)
	if o.MaxPerAddress <= 0 {
		o.MaxPerAddress = DefaultMaxPerAddress
	}
	if o.ExpiryWarn <= 0 {
		o.ExpiryWarn = DefaultExpiryWarn
	}
	return o
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
