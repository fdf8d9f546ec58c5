package smtpprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Phase names, in the order a STARTTLS probe runs them. An implicit-TLS
// probe runs connect, handshake, banner, ehlo, quit. "helo" appears only
// when EHLO was refused.
const (
	PhaseConnect   = "connect"
	PhaseBanner    = "banner"
	PhaseEHLO      = "ehlo"
	PhaseHELO      = "helo"
	PhaseStartTLS  = "starttls"
	PhaseHandshake = "handshake"
	PhaseEHLOTLS   = "ehlo-tls"
	PhaseQuit      = "quit"
)

// Error kinds: Result.ErrKind classifies why the probe stopped, so findings
// (and callers) need not parse error text.
const (
	KindRefused  = "refused"  // the connection was refused
	KindTimeout  = "timeout"  // the phase timeout passed without an answer
	KindCanceled = "canceled" // the caller's context ended (its deadline or a cancel)
	KindClosed   = "closed"   // the server closed the connection
	KindReset    = "reset"    // the connection was reset
	KindGarbage  = "garbage"  // a reply that is not SMTP
	KindTooLong  = "too-long" // a line or reply over the limits
	KindReply    = "reply"    // a well-formed reply refusing the command
	KindTLS      = "tls"      // the TLS handshake failed (alert, bad record)
	KindProtocol = "protocol" // the server broke the protocol otherwise
	KindNetwork  = "network"  // any other network error (no route, ...)
)

// Phase is the timing of one protocol step.
type Phase struct {
	Name string  `json:"name"`
	MS   float64 `json:"ms"`
	Err  string  `json:"error,omitempty"`
}

// Result is everything one probe saw. A nil field was not reached.
type Result struct {
	Target  Target `json:"target"`
	Subject string `json:"subject"`
	// Start is when the probe began, by Options.Now.
	Start   time.Time `json:"started_at"`
	TotalMS float64   `json:"total_ms"`

	Banner *Reply `json:"banner,omitempty"`
	// EHLO is the reply to EHLO before TLS (or to HELO when HELOFallback).
	EHLO         *Reply `json:"ehlo,omitempty"`
	HELOFallback bool   `json:"helo_fallback,omitempty"`
	// Extensions are the EHLO keywords with parameters, before TLS (RFC
	// 5321 §4.1.1.1); ExtensionsTLS those announced again after it.
	Extensions      []string `json:"extensions,omitempty"`
	ExtensionsTLS   []string `json:"extensions_tls,omitempty"`
	StartTLSOffered bool     `json:"starttls_offered"`
	// StartTLSReply is the reply to STARTTLS (220 when it went ahead).
	StartTLSReply *Reply `json:"starttls_reply,omitempty"`
	// TLS is set once a handshake completed.
	TLS *TLSState `json:"tls,omitempty"`

	Phases []Phase `json:"phases"`
	// Transcript is an excerpt of the session, a few KB at most.
	Transcript []string `json:"transcript,omitempty"`

	// Err says which step could not be done and why; ErrPhase is that
	// step's phase name and ErrKind one of the Kind constants. Empty when
	// the probe ran to the end (a failed QUIT is not an error).
	Err      string `json:"error,omitempty"`
	ErrPhase string `json:"error_phase,omitempty"`
	ErrKind  string `json:"error_kind,omitempty"`

	// PeerCertificates is the chain as the server presented it, leaf
	// first, for DANE matching (TLSASet.Match).
	PeerCertificates []*x509.Certificate `json:"-"`
}

// PhaseMS returns the durations by phase name, for evidence.
func (r *Result) PhaseMS() map[string]float64 {
	m := make(map[string]float64, len(r.Phases))
	for _, p := range r.Phases {
		m[p.Name] = p.MS
	}
	return m
}

// Probe runs one probe. It never returns nil and never panics on what the
// server sends; it returns when the probe is done or ctx ends, whichever
// comes first (plus the time to close the connection).
func Probe(ctx context.Context, t Target, o Options) *Result {
	o = o.withDefaults()
	r := &Result{Target: t, Subject: t.Subject(), Start: o.Now(), Phases: []Phase{}}
	s := &session{ctx: ctx, o: o, r: r}
	wall := time.Now()
	s.run()
	r.TotalMS = ms(time.Since(wall))
	r.Transcript = s.tr.lines
	return r
}

// ProbeAll probes every target concurrently and returns the results in the
// order of ts. At most o.MaxPerAddress probes run at once against one
// address (Target.Addr, whatever the port), counted across every ProbeAll
// call that shares o.Limiter; targets waiting for their turn when ctx ends
// get a Result with ErrKind KindCanceled.
func ProbeAll(ctx context.Context, ts []Target, o Options) []*Result {
	o = o.withDefaults()
	lim := o.Limiter
	if lim == nil {
		lim = NewLimiter(o.MaxPerAddress)
	}
	out := make([]*Result, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() {
			sem := lim.sem(t.Addr)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				r := &Result{Target: t, Subject: t.Subject(), Start: o.Now(), Phases: []Phase{}}
				r.Err, r.ErrPhase, r.ErrKind = fmt.Sprintf("connect: not started: %v", ctx.Err()), PhaseConnect, KindCanceled
				out[i] = r
				return
			}
			defer func() { <-sem }()
			out[i] = Probe(ctx, t, o)
		})
	}
	wg.Wait()
	return out
}

// Limiter bounds how many probes run at once against each address. One
// Limiter shared by several ProbeAll calls (a run's MX probes and its
// smart-host probes, which start at different times) keeps the bound for
// the run as a whole.
type Limiter struct {
	max  int
	mu   sync.Mutex
	sems map[netip.Addr]chan struct{}
}

// NewLimiter allows max probes per address at once (DefaultMaxPerAddress
// when max < 1).
func NewLimiter(max int) *Limiter {
	if max < 1 {
		max = DefaultMaxPerAddress
	}
	return &Limiter{max: max, sems: map[netip.Addr]chan struct{}{}}
}

func (l *Limiter) sem(a netip.Addr) chan struct{} {
	a = a.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sems[a]
	if s == nil {
		s = make(chan struct{}, l.max)
		l.sems[a] = s
	}
	return s
}

// session is one probe in progress.
type session struct {
	ctx context.Context
	o   Options
	r   *Result
	tr  transcript

	raw  net.Conn // the TCP connection
	conn net.Conn // raw, or the TLS connection over it
	lim  *limitReader
	tp   *textproto.Reader

	// mu orders setting a phase deadline against the context's AfterFunc
	// forcing an immediate one, so a cancel is never overwritten.
	mu sync.Mutex
	// byCtx: the current deadline is the context's, not the phase's, so a
	// timeout is the caller's deadline (KindCanceled), not the server's.
	byCtx bool
}

// probeError is a failure already explained for the reader.
type probeError struct {
	kind string
	msg  string
}

func (e *probeError) Error() string { return e.msg }

func (s *session) run() {
	t, o, r := s.r.Target, s.o, s.r
	if !t.Addr.IsValid() {
		s.stop(PhaseConnect, &probeError{KindNetwork, "connect: no address to connect to"})
		return
	}
	if err := s.connect(); err != nil {
		return
	}
	defer s.raw.Close()
	stop := context.AfterFunc(s.ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = s.raw.SetDeadline(time.Unix(1, 0)) // unblock any read or write now
	})
	defer stop()

	if t.ImplicitTLS {
		if !s.handshake() {
			return
		}
	}

	// Greeting (RFC 5321 §4.3.1: 220, or 554 for "no service here").
	banner, err := s.phase(PhaseBanner, o.Timeouts.Banner, s.readReply)
	if err != nil {
		s.stop(PhaseBanner, err)
		return
	}
	r.Banner = banner
	if banner.Code != 220 {
		// RFC 5321 §3.1: after a 554 greeting the client should QUIT;
		// a 421 server closes itself, and QUIT then fails harmlessly.
		s.quit()
		return
	}

	// EHLO, or HELO for a server that refuses EHLO (RFC 5321 §4.1.4: a
	// 500, 502 or 504 means the extension mechanism is not supported).
	ehlo, err := s.phase(PhaseEHLO, o.Timeouts.Command, func() (*Reply, error) { return s.cmd("EHLO " + o.HeloName) })
	if err != nil {
		s.stop(PhaseEHLO, err)
		return
	}
	if ehlo.Code/100 == 5 {
		helo, err := s.phase(PhaseHELO, o.Timeouts.Command, func() (*Reply, error) { return s.cmd("HELO " + o.HeloName) })
		if err != nil {
			s.stop(PhaseHELO, err)
			return
		}
		if helo.Code != 250 {
			s.stop(PhaseHELO, &probeError{KindReply, fmt.Sprintf("ehlo: the server refused EHLO (%s) and HELO (%s)", ehlo, helo)})
			s.quit()
			return
		}
		r.EHLO, r.HELOFallback = helo, true
		s.quit()
		return // HELO has no extensions, so no STARTTLS
	}
	if ehlo.Code != 250 {
		s.stop(PhaseEHLO, &probeError{KindReply, fmt.Sprintf("ehlo: the server answered %s", ehlo)})
		s.quit()
		return
	}
	r.EHLO = ehlo
	_, r.Extensions = parseEHLO(ehlo.Text)
	if t.ImplicitTLS {
		s.quit()
		return
	}
	r.StartTLSOffered = hasExtension(r.Extensions, "STARTTLS")
	if !r.StartTLSOffered {
		s.quit()
		return
	}

	// STARTTLS (RFC 3207 §4): 220 means "go ahead"; 454 "not now".
	rep, err := s.phase(PhaseStartTLS, o.Timeouts.Command, func() (*Reply, error) { return s.cmd("STARTTLS") })
	if err != nil {
		s.stop(PhaseStartTLS, err)
		return
	}
	r.StartTLSReply = rep
	if rep.Code != 220 {
		s.stop(PhaseStartTLS, &probeError{KindReply, fmt.Sprintf("starttls: the server offered STARTTLS, then answered %s", rep)})
		s.quit()
		return
	}
	if n := s.tp.R.Buffered(); n > 0 {
		// Bytes after the 220 and before the handshake would be read as if
		// they came over TLS by a careless client: the STARTTLS injection
		// flaw (CVE-2011-0411 and kin). RFC 3207 §4.2 has the client
		// discard what came before TLS; we stop, it is a broken server.
		s.stop(PhaseStartTLS, &probeError{KindProtocol, fmt.Sprintf("starttls: the server sent %d bytes after its 220 reply, before the TLS handshake", n)})
		return
	}
	if !s.handshake() {
		return
	}

	// RFC 3207 §4.2: the client must forget what it learnt before TLS and
	// say EHLO again; the extensions may differ (AUTH often appears only
	// now).
	ehlo2, err := s.phase(PhaseEHLOTLS, o.Timeouts.Command, func() (*Reply, error) { return s.cmd("EHLO " + o.HeloName) })
	if err != nil {
		s.stop(PhaseEHLOTLS, err)
		return
	}
	if ehlo2.Code != 250 {
		s.stop(PhaseEHLOTLS, &probeError{KindReply, fmt.Sprintf("ehlo-tls: after TLS the server answered EHLO with %s", ehlo2)})
		s.quit()
		return
	}
	_, r.ExtensionsTLS = parseEHLO(ehlo2.Text)
	s.quit()
}

// connect dials within the connect timeout.
func (s *session) connect() error {
	t0 := time.Now()
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(t0.Add(s.o.Timeouts.Connect)) {
		s.byCtx = true
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.Timeouts.Connect)
	defer cancel()
	s.tr.add("!: ", "connect "+s.r.Target.address())
	c, err := s.o.Dial(ctx, "tcp", s.r.Target.address())
	ph := Phase{Name: PhaseConnect, MS: ms(time.Since(t0))}
	if err == nil && c == nil {
		err = errors.New("dialer returned no connection")
	}
	if err != nil {
		perr := s.explain(PhaseConnect, s.o.Timeouts.Connect, ctx, err)
		ph.Err = perr.Error()
		s.r.Phases = append(s.r.Phases, ph)
		s.stop(PhaseConnect, perr)
		return perr
	}
	s.r.Phases = append(s.r.Phases, ph)
	s.raw, s.conn = c, c
	s.lim = newLimitReader(c)
	s.tp = textproto.NewReader(bufio.NewReader(s.lim))
	return nil
}

// handshake runs the TLS client handshake over the raw connection and
// records the TLS state, verified separately (verify.go). It reports
// whether the session can go on.
func (s *session) handshake() bool {
	t := s.r.Target
	cfg := &tls.Config{
		// Verification is done afterwards, against Options.Roots, so that
		// a bad certificate is evidence rather than a dial error.
		InsecureSkipVerify: true, //nolint:gosec // verified in verifyState
		// Go's client refuses TLS 1.0 and 1.1 by default; the probe must
		// see old servers to report them (tls.version).
		MinVersion:   tls.VersionTLS10,
		CipherSuites: probeCipherSuites,
	}
	if t.Host != "" {
		if _, err := netip.ParseAddr(t.Host); err != nil {
			cfg.ServerName = t.Host // SNI carries names only (RFC 6066 §3)
		}
	}
	tc := tls.Client(s.raw, cfg)
	_, err := s.phase(PhaseHandshake, s.o.Timeouts.Handshake, func() (*Reply, error) {
		s.tr.add("!: ", "TLS handshake")
		return nil, tc.HandshakeContext(s.ctx)
	})
	if err != nil {
		s.stop(PhaseHandshake, err)
		return false
	}
	st := tc.ConnectionState()
	s.r.PeerCertificates = st.PeerCertificates
	s.r.TLS = newTLSState(st, t, s.o.Roots, s.o.Now())
	s.tr.add("!: ", fmt.Sprintf("TLS established: %s, %s", s.r.TLS.Version, s.r.TLS.Cipher))
	s.conn = tc
	s.lim = newLimitReader(tc)
	s.tp = textproto.NewReader(bufio.NewReader(s.lim))
	return true
}

// probeCipherSuites offers every suite Go implements, insecure ones
// included, so that a server that only has those is still reached and
// reported (tls.version) rather than unreachable.
var probeCipherSuites = func() []uint16 {
	var ids []uint16
	for _, c := range tls.CipherSuites() {
		ids = append(ids, c.ID)
	}
	for _, c := range tls.InsecureCipherSuites() {
		ids = append(ids, c.ID)
	}
	return ids
}()

// quit says QUIT and reads the reply, best effort, within quitTimeout:
// RFC 5321 §4.1.1.10 has the client QUIT, and servers log an abrupt close
// as a lost connection.
func (s *session) quit() {
	_, _ = s.phase(PhaseQuit, min(quitTimeout, s.o.Timeouts.Command), func() (*Reply, error) { return s.cmd("QUIT") })
}

// phase runs fn with the phase deadline set and records its timing.
func (s *session) phase(name string, timeout time.Duration, fn func() (*Reply, error)) (*Reply, error) {
	t0 := time.Now()
	var rep *Reply
	err := s.setDeadline(timeout)
	if err == nil {
		rep, err = fn()
	}
	ph := Phase{Name: name, MS: ms(time.Since(t0))}
	if err != nil {
		err = s.explain(name, timeout, s.ctx, err)
		ph.Err = err.Error()
		s.tr.add("!: ", ph.Err)
	}
	s.r.Phases = append(s.r.Phases, ph)
	return rep, err
}

// setDeadline bounds the next phase by the earlier of now+d and the
// context's deadline.
func (s *session) setDeadline(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ctx.Err(); err != nil {
		return err
	}
	dl := time.Now().Add(d)
	s.byCtx = false
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(dl) {
		dl, s.byCtx = cd, true
	}
	return s.raw.SetDeadline(dl)
}

// cmd sends one command line and reads the reply.
func (s *session) cmd(line string) (*Reply, error) {
	s.tr.add("C: ", line)
	t0 := time.Now()
	if _, err := io.WriteString(s.conn, line+"\r\n"); err != nil {
		return nil, err
	}
	rep, err := s.readReply()
	if rep != nil {
		rep.MS = ms(time.Since(t0))
	}
	return rep, err
}

// readReply reads one reply with textproto's multi-line parser, within the
// size limits of limitReader.
func (s *session) readReply() (*Reply, error) {
	t0 := time.Now()
	s.lim.reset()
	if err := s.checkReplyStart(); err != nil {
		return nil, err
	}
	code, text, err := s.tp.ReadResponse(0)
	if s.lim.err != nil {
		// The stream broke (deadline, close, limit) under the reply:
		// bufio.Reader.ReadLine hands out the partial line first and the
		// error later, so what textproto parsed, or the "short response"
		// it complained of, is a cut line. The break is the news.
		s.tr.add("S: ", text)
		return nil, s.lim.err
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = printable(l, maxLineLen)
	}
	rep := &Reply{Code: code, Text: strings.Join(lines, "\n"), MS: ms(time.Since(t0))}
	s.tr.reply(code, text)
	if code < 200 || code > 599 {
		// 1yz replies are not used in SMTP (RFC 5321 §4.2.1); textproto
		// accepts any three digits from 100.
		return rep, &probeError{KindGarbage, fmt.Sprintf("reply code %d is not an SMTP reply code", code)}
	}
	return rep, nil
}

// checkReplyStart looks at the first bytes of a reply before textproto
// parses it. textproto.Reader.ReadResponse takes any line whose fourth byte
// is '-' as the start of a multi-line reply and keeps reading even when the
// code is not a number ("SSH-2.0-OpenSSH" would make it wait for more lines
// until the deadline), so a first line that does not start with three
// digits and a separator (RFC 5321 §4.2) is rejected here as garbage.
func (s *session) checkReplyStart() error {
	b, err := s.tp.R.Peek(4)
	if err != nil && len(b) < 4 {
		if s.lim.err != nil {
			return s.lim.err
		}
		return err
	}
	ok := '1' <= b[0] && b[0] <= '5' && '0' <= b[1] && b[1] <= '9' && '0' <= b[2] && b[2] <= '9' &&
		(b[3] == ' ' || b[3] == '-' || b[3] == '\r' || b[3] == '\n')
	if ok {
		return nil
	}
	line, _ := s.tp.R.Peek(min(s.tp.R.Buffered(), 80))
	first, _, _ := strings.Cut(string(line), "\n")
	s.tr.add("S: ", strings.TrimRight(first, "\r"))
	return &probeError{KindGarbage, "not an SMTP reply: " + strconv.Quote(printable(strings.TrimRight(first, "\r"), 60))}
}

// stop records the error that ended the probe (the first one only).
func (s *session) stop(phase string, err error) {
	if s.r.Err != "" {
		return
	}
	var pe *probeError
	if !errors.As(err, &pe) {
		pe = &probeError{KindNetwork, phase + ": " + err.Error()}
	}
	s.r.Err, s.r.ErrPhase, s.r.ErrKind = pe.msg, phase, pe.kind
}

// explain turns a low-level error into a probeError that says, for a mail
// admin, what happened in which phase.
func (s *session) explain(phase string, timeout time.Duration, ctx context.Context, err error) *probeError {
	var pe *probeError
	if errors.As(err, &pe) {
		if len(pe.msg) < len(phase) || pe.msg[:len(phase)] != phase {
			pe = &probeError{pe.kind, phase + ": " + pe.msg}
		}
		return pe
	}
	var (
		netErr   net.Error
		recErr   tls.RecordHeaderError
		protoErr textproto.ProtocolError
	)
	wrap := func(kind, format string, args ...any) *probeError {
		return &probeError{kind, phase + ": " + fmt.Sprintf(format, args...)}
	}
	switch {
	case (s.ctx.Err() != nil || s.byCtx) && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()):
		return wrap(KindCanceled, "stopped by the run's deadline or cancel (%v)", context.Cause(s.ctx))
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		what := "no reply"
		switch phase {
		case PhaseConnect:
			what = "no connection"
		case PhaseBanner:
			what = "no complete greeting"
		case PhaseHandshake:
			what = "the TLS handshake did not complete"
		}
		return wrap(KindTimeout, "%s within %v", what, timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return wrap(KindRefused, "connection refused by %s", s.r.Target.address())
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return wrap(KindReset, "the server reset the connection")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if phase == PhaseHandshake {
			return wrap(KindTLS, "the server closed the connection during the TLS handshake")
		}
		return wrap(KindClosed, "the server closed the connection")
	case errors.Is(err, ErrLineTooLong):
		return wrap(KindTooLong, "a reply line is longer than %d bytes", maxLineLen)
	case errors.Is(err, ErrReplyTooLong):
		return wrap(KindTooLong, "the reply is longer than %d bytes", maxReplyBytes)
	case errors.As(err, &protoErr):
		return wrap(KindGarbage, "not an SMTP reply: %s", printable(string(protoErr), 200))
	case errors.As(err, &recErr):
		return wrap(KindTLS, "the server did not answer with TLS (first bytes %q)", printable(string(recErr.RecordHeader[:]), 20))
	case phase == PhaseHandshake:
		return wrap(KindTLS, "%v", err)
	}
	return wrap(KindNetwork, "%v", err)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
