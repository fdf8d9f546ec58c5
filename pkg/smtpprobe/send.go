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
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Sending a test message.
//
// Send speaks SMTP with go-smtp's Client on a connection we dial and wrap
// ourselves (tapConn, redact.go): the wrapper bounds every go-smtp
// command by our stage timeouts and the context, keeps a redacted
// transcript, and tells which stage a go-smtp call stopped in.
//
// # STARTTLS with go-smtp
//
// go-smtp's Client cannot start TLS on a session it already has: only
// NewClientStartTLS does STARTTLS, as part of creating the Client (it
// greets, says "EHLO localhost", checks that STARTTLS is offered, sends it
// and wraps the connection). So every send that may use TLS starts with
// NewClientStartTLS, and then says EHLO again with our name over TLS
// (RFC 3207 §4.2), which is when the handshake runs:
//
//   - STARTTLS offered (nearly every MX and smart host): one connection,
//     as an MTA would do it. The first EHLO says "localhost"; servers
//     judge the EHLO name at MAIL or RCPT (Postfix delays its HELO
//     restrictions there by default), when the name is ours.
//   - not offered: we say QUIT on that connection ourselves (go-smtp would
//     just close it). With TLS required that is a failure at "starttls";
//     otherwise (opportunistic TLS, the inbound and bypass paths) we
//     reconnect and go on in clear, as an MTA does (RFC 3207 §4: a
//     publicly-referenced server must not require TLS, so a sender may
//     go on without).
//   - offered, but refused (454) or the handshake fails: with TLS required
//     a failure at "starttls"; otherwise one more connection in clear,
//     like an MTA at opportunistic TLS, and the result says why TLS was
//     not used (TLSError).
//
// The certificate is never checked by the handshake (InsecureSkipVerify)
// but after it, with the probe's verify.go, so the result always holds the
// same verdict as tls.* findings. Where TLS is required, a certificate
// that does not verify stops the send before AUTH or MAIL: nothing but
// EHLO has gone over the unverified channel.
//
// Targets with ImplicitTLS (port 465, RFC 8314 §3.3) are wrapped with
// tls.Client before go-smtp sees them.

// Stage is a step of a send, in order. SendResult.Stage is the last stage
// that succeeded and SendResult.Failed the stage that failed ("" when the
// send went as asked).
type Stage string

const (
	StageConnect  Stage = "connect"
	StageBanner   Stage = "banner"
	StageEHLO     Stage = "ehlo"
	StageStartTLS Stage = "starttls" // STARTTLS and its handshake, or the implicit-TLS handshake
	StageAuth     Stage = "auth"
	StageMail     Stage = "mail"
	StageRcpt     Stage = "rcpt"
	StageData     Stage = "data" // DATA, the message and the reply to its final dot
	StageQuit     Stage = "quit"
	// StageTLS is accepted as SendOptions.QuitAfter for StageStartTLS.
	StageTLS Stage = "tls"
)

var stageOrder = map[Stage]int{
	StageConnect: 0, StageBanner: 1, StageEHLO: 2, StageStartTLS: 3, StageAuth: 4,
	StageMail: 5, StageRcpt: 6, StageData: 7, StageQuit: 8,
}

// SendPath is which way a send goes; it names the finding.
type SendPath string

const (
	// PathInbound delivers to the domain's MX hosts, as the Internet does.
	PathInbound SendPath = "inbound"
	// PathOutbound submits through a smart host or submission server.
	PathOutbound SendPath = "outbound"
	// PathBypass tries the mailbox platform directly, around the gateway.
	PathBypass SendPath = "bypass"
)

// Error kinds of a send beyond the probe's Kind constants.
const (
	KindInvalid     = "invalid"     // the options cannot be used; nothing was sent
	KindNoTLS       = "no-tls"      // TLS required but STARTTLS not offered
	KindUntrusted   = "untrusted"   // TLS required but the certificate did not verify
	KindUnsupported = "unsupported" // AUTH, or the mechanism asked for, is not offered
)

// Default timeouts of a send beyond Timeouts.
const (
	// DefaultDataTimeout bounds writing the message and waiting for the
	// reply to its final dot. RFC 5321 §4.5.3.2.6 lets a client wait 10
	// minutes there, since servers scan the message before answering;
	// gateways and Exchange Online answer within seconds.
	DefaultDataTimeout = 2 * time.Minute
	// maxMessageBytes refuses absurd messages: a test message is a few KB.
	maxMessageBytes = 10 << 20
	// maxRecipients bounds To: a test goes to a few named mailboxes.
	maxRecipients = 20
)

// Auth is SMTP AUTH (RFC 4954) with a user name and password. The
// password never appears in any output: not in the result, the finding,
// the transcript, error strings, or when the value is printed.
type Auth struct {
	Username string `json:"username"`
	Password string `json:"-"`
	// Mechanism is "plain", "login", or "" for the best one offered
	// (PLAIN, RFC 4616; LOGIN only when PLAIN is not offered).
	Mechanism string `json:"mechanism,omitempty"`
}

// String hides the password from %v and %s.
func (a Auth) String() string {
	return fmt.Sprintf("{Username:%s Password:%s Mechanism:%s}", a.Username, redacted, a.Mechanism)
}

// GoString hides the password from %#v.
func (a Auth) GoString() string { return "smtpprobe.Auth" + a.String() }

// SendOptions configure a send.
type SendOptions struct {
	Path SendPath
	// Targets are tried in order. Inbound: every MX address in preference
	// order; the next is tried when one cannot be reached, greets with a
	// 4xx or 5xx, answers EHLO with a 4xx, lacks required TLS, or drops
	// the connection before DATA (RFC 5321 §5.1; Postfix does the same),
	// never after an answer to MAIL, RCPT or DATA. Outbound and bypass:
	// one server, any further targets being other addresses of it.
	Targets []Target
	// HeloName is the EHLO argument; DefaultHeloName when empty or not a
	// single word.
	HeloName string
	// Roots verify certificates; nil means the system roots.
	Roots *x509.CertPool
	// RequireTLS fails at "starttls" when TLS cannot be used or the
	// certificate does not verify. It is always on when Auth is set:
	// credentials never travel in clear. Without it, STARTTLS is used
	// when offered (opportunistic, like an MTA) and the result says
	// whether TLS was used and whether the certificate verified.
	RequireTLS bool
	// InsecureSkipVerify accepts any certificate where one is required; the
	// result and the finding say so.
	InsecureSkipVerify bool
	// Auth, when set, authenticates after TLS.
	Auth *Auth
	// From is the reverse-path ("" is the null path <>, RFC 5321 §4.5.5).
	From string
	// To are the only recipients there will ever be: RCPT TO is sent for
	// these and nothing else.
	To []string
	// Message is sent after DATA (BuildMessage makes one); ignored when
	// QuitAfter stops before DATA.
	Message []byte
	// Token identifies the message in the result; when empty it is taken
	// from the message's X-Mfcheck-Token header.
	Token string
	// QuitAfter stops the send after that stage with QUIT (RSET first after
	// MAIL): "connect" (after the greeting), "ehlo", "tls", "auth", "mail"
	// or "rcpt". "" sends the message. DATA is never sent when set.
	// "tls" asks whether TLS works, so it requires TLS.
	QuitAfter Stage
	// Timeouts per stage; zero fields take the probe's defaults.
	Timeouts Timeouts
	// DataTimeout bounds the message and the reply to its final dot;
	// DefaultDataTimeout when 0.
	DataTimeout time.Duration
	// Dial connects; a net.Dialer when nil.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Now is the clock for certificate dates and the result; time.Now when
	// nil.
	Now func() time.Time
}

// SendAttempt is what happened at one target.
type SendAttempt struct {
	Target       Target  `json:"target"`
	Subject      string  `json:"subject"`
	Stage        Stage   `json:"stage,omitempty"`
	Failed       Stage   `json:"failed,omitempty"`
	Code         int     `json:"code,omitempty"`
	EnhancedCode string  `json:"enhanced_code,omitempty"`
	Reply        string  `json:"reply,omitempty"`
	TLSUsed      bool    `json:"tls_used"`
	TLSError     string  `json:"tls_error,omitempty"`
	Err          string  `json:"error,omitempty"`
	ErrKind      string  `json:"error_kind,omitempty"`
	MS           float64 `json:"ms"`
}

// SendResult is everything a send saw. Its top-level fields describe the
// last attempt, the one that answered (or the last tried).
type SendResult struct {
	Path      SendPath  `json:"path"`
	From      string    `json:"from"`
	To        []string  `json:"to"`
	QuitAfter Stage     `json:"quit_after,omitempty"`
	Start     time.Time `json:"started_at"`
	TotalMS   float64   `json:"total_ms"`
	// Target is the last server that answered (the one that accepted, on
	// success); nil when none could be reached.
	Target   *Target       `json:"target,omitempty"`
	Subject  string        `json:"subject"`
	Attempts []SendAttempt `json:"attempts"`

	// Stage is the last stage that succeeded; Failed the stage that
	// failed, "" when the send went as asked.
	Stage  Stage `json:"stage,omitempty"`
	Failed Stage `json:"failed,omitempty"`
	// Code, EnhancedCode (RFC 3463) and Reply are the server's last
	// answer: the refusal when Failed is set, else the acceptance.
	Code         int    `json:"code,omitempty"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Reply        string `json:"reply,omitempty"`

	// RequireTLS is whether TLS was required (RequireTLS or Auth).
	RequireTLS bool `json:"require_tls"`
	TLSOffered bool `json:"tls_offered"`
	TLSUsed    bool `json:"tls_used"`
	// TLS is the session and the certificate verdict, as the probe gives.
	TLS *TLSState `json:"tls,omitempty"`
	// TLSError says why opportunistic TLS was not used though offered.
	TLSError           string `json:"tls_error,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
	AuthMechanism      string `json:"auth_mechanism,omitempty"`
	// AuthUser is the user name authenticated as (never the password).
	AuthUser string `json:"auth_user,omitempty"`

	Token string `json:"token,omitempty"`
	// QueueID is the server's id for the message, from the reply to the
	// final dot (ParseQueueID), when it gives one.
	QueueID string `json:"queue_id,omitempty"`
	// Accepted: the server accepted what was asked, the message after DATA
	// or, with QuitAfter, the last command of that stage.
	Accepted bool `json:"accepted"`

	// Phases are the timings of the last attempt.
	Phases []Phase `json:"phases"`
	// Transcript is the redacted session, every attempt, a few KB at most.
	Transcript []string `json:"transcript,omitempty"`
	Err        string   `json:"error,omitempty"`
	ErrKind    string   `json:"error_kind,omitempty"`
}

// PhaseMS returns the durations by phase name, for evidence.
func (r *SendResult) PhaseMS() map[string]float64 {
	m := make(map[string]float64, len(r.Phases))
	for _, p := range r.Phases {
		m[p.Name] = p.MS
	}
	return m
}

// Bypass asks target whether it takes mail for rcpt that did not come
// through the gateway: connect, EHLO, STARTTLS when offered, MAIL FROM,
// RCPT TO, then RSET and QUIT. It never sends DATA and never
// authenticates: a bypassing sender has no credentials.
func Bypass(ctx context.Context, t []Target, from, rcpt string, o SendOptions) *SendResult {
	o.Path, o.Targets, o.From, o.To = PathBypass, t, from, []string{rcpt}
	o.QuitAfter, o.Message, o.Auth = StageRcpt, nil, nil
	return Send(ctx, o)
}

// sendConfig is SendOptions checked and with defaults.
type sendConfig struct {
	SendOptions
	requireTLS bool  // as the session enforces it (QuitAfter "tls" included)
	quitAfter  Stage // normalised; "" for a full send
}

// normalize checks the options; an error means nothing may be sent.
func normalize(o SendOptions) (*sendConfig, error) {
	c := &sendConfig{SendOptions: o}
	switch o.Path {
	case PathInbound, PathOutbound, PathBypass:
	default:
		return nil, fmt.Errorf("unknown send path %q (want inbound, outbound or bypass)", o.Path)
	}
	if len(o.Targets) == 0 {
		return nil, errors.New("no server to send to")
	}
	if len(o.To) == 0 {
		return nil, errors.New("no recipient: mfcheck sends only to recipients it is given")
	}
	if len(o.To) > maxRecipients {
		return nil, fmt.Errorf("%d recipients: a test message goes to at most %d", len(o.To), maxRecipients)
	}
	for _, to := range o.To {
		if err := validateAddress(to); err != nil {
			return nil, fmt.Errorf("recipient %q: %w", printable(to, 80), err)
		}
	}
	if o.From != "" {
		if err := validateAddress(o.From); err != nil {
			return nil, fmt.Errorf("sender %q: %w", printable(o.From, 80), err)
		}
	}
	// A CR or LF in the name would let a caller inject commands; strip
	// them, and fall back to the default for anything but one word.
	c.HeloName = strings.NewReplacer("\r", "", "\n", "").Replace(o.HeloName)
	if c.HeloName == "" || strings.ContainsAny(c.HeloName, " \t") || !isPrintASCII(c.HeloName) {
		c.HeloName = DefaultHeloName
	}
	switch q := Stage(strings.ToLower(string(o.QuitAfter))); q {
	case "", StageData, StageQuit:
		c.quitAfter = ""
	case StageConnect, StageBanner:
		c.quitAfter = StageConnect
	case StageTLS, StageStartTLS:
		c.quitAfter = StageStartTLS
	case StageEHLO, StageAuth, StageMail, StageRcpt:
		c.quitAfter = q
	default:
		return nil, fmt.Errorf("unknown stage %q to quit after (want connect, ehlo, tls, auth, mail or rcpt)", printable(string(o.QuitAfter), 40))
	}
	if o.Path == PathBypass {
		// Never DATA on the bypass path, and no credentials.
		if c.quitAfter == "" {
			c.quitAfter = StageRcpt
		}
		c.Auth = nil
	}
	if c.quitAfter == StageAuth && c.Auth == nil {
		return nil, errors.New("quit after auth needs credentials")
	}
	if c.Auth != nil {
		if c.Auth.Username == "" || c.Auth.Password == "" {
			return nil, errors.New("AUTH needs a user name and a password")
		}
		if strings.ContainsAny(c.Auth.Username, "\r\n\x00") {
			return nil, errors.New("the AUTH user name contains a control character")
		}
		switch strings.ToLower(c.Auth.Mechanism) {
		case "", "plain", "login":
		default:
			return nil, fmt.Errorf("unknown AUTH mechanism %q (want plain or login)", printable(c.Auth.Mechanism, 40))
		}
	}
	if c.quitAfter == "" {
		if len(o.Message) == 0 {
			return nil, errors.New("no message to send (build one with BuildMessage, or set QuitAfter)")
		}
		if len(o.Message) > maxMessageBytes {
			return nil, fmt.Errorf("the message has %d bytes; a test message has at most %d", len(o.Message), maxMessageBytes)
		}
	}
	c.requireTLS = o.RequireTLS || c.Auth != nil || c.quitAfter == StageStartTLS
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = d.DialContext
	}
	// The probe's defaults, phase by phase.
	c.Timeouts = Options{Timeouts: c.Timeouts}.withDefaults().Timeouts
	c.DataTimeout = orDefault(c.DataTimeout, DefaultDataTimeout)
	if c.Token == "" {
		c.Token = headerValue(o.Message, "X-Mfcheck-Token")
	}
	return c, nil
}

// Send runs one send: each target in turn until one answers (see
// SendOptions.Targets). It never returns nil and never panics; every step
// has a deadline (the stage timeout, and the context's).
func Send(ctx context.Context, o SendOptions) (res *SendResult) {
	wall := time.Now()
	res = &SendResult{Path: o.Path, From: o.From, To: o.To, QuitAfter: o.QuitAfter, Attempts: []SendAttempt{}, Phases: []Phase{}}
	red := newRedactor(o.Auth)
	var rec *recorder
	defer func() {
		if p := recover(); p != nil {
			// A bug of ours, not the server's: still a result, never a crash.
			res.Failed, res.ErrKind = StageConnect, KindProtocol
			res.Err = fmt.Sprintf("internal error: %v", p)
		}
		if rec != nil {
			res.Transcript = rec.lines()
		}
		res.TotalMS = ms(time.Since(wall))
		res.scrub(red)
	}()
	c, err := normalize(o)
	if err != nil {
		res.Start = time.Now()
		if o.Now != nil {
			res.Start = o.Now()
		}
		res.Failed, res.Err, res.ErrKind = StageConnect, "nothing sent: "+err.Error(), KindInvalid
		return res
	}
	res.Start, res.QuitAfter, res.Token = c.Now(), c.quitAfter, c.Token
	res.RequireTLS = c.RequireTLS || c.Auth != nil
	res.InsecureSkipVerify = c.InsecureSkipVerify
	if c.Auth != nil {
		res.AuthUser = printable(c.Auth.Username, 120)
	}
	rec = newRecorder(red)
	for i, t := range c.Targets {
		if i > 0 {
			rec.note("trying the next target: " + t.Subject())
		}
		s := &sendSession{ctx: ctx, o: c, res: res, rec: rec, t: t}
		next := s.run()
		res.Attempts = append(res.Attempts, s.a)
		res.Phases = rec.attemptPhases()
		if !next || ctx.Err() != nil {
			break
		}
	}
	a := res.Attempts[len(res.Attempts)-1]
	res.Subject, res.Stage, res.Failed = a.Subject, a.Stage, a.Failed
	res.Code, res.EnhancedCode, res.Reply = a.Code, a.EnhancedCode, a.Reply
	res.Err, res.ErrKind, res.TLSUsed, res.TLSError = a.Err, a.ErrKind, a.TLSUsed, a.TLSError
	return res
}

// scrub removes the secrets from every string of the result.
func (r *SendResult) scrub(red *redactor) {
	r.Err, r.Reply, r.TLSError = red.scrub(r.Err), red.scrub(r.Reply), red.scrub(r.TLSError)
	for i := range r.Attempts {
		a := &r.Attempts[i]
		a.Err, a.Reply, a.TLSError = red.scrub(a.Err), red.scrub(a.Reply), red.scrub(a.TLSError)
	}
	for i := range r.Phases {
		r.Phases[i].Err = red.scrub(r.Phases[i].Err)
	}
	for i := range r.Transcript {
		r.Transcript[i] = red.scrub(r.Transcript[i])
	}
}

// sendSession is one attempt at one target (one or two connections).
type sendSession struct {
	ctx context.Context
	o   *sendConfig
	res *SendResult
	rec *recorder
	t   Target
	a   SendAttempt

	tap *tapConn
	c   *smtp.Client
}

// run makes the attempt and reports whether the next target may be tried.
func (s *sendSession) run() bool {
	t0 := time.Now()
	defer func() { s.a.MS = ms(time.Since(t0)) }()
	s.a = SendAttempt{Target: s.t, Subject: s.t.Subject()}
	s.rec.startAttempt()
	next, plain := s.once(false)
	if plain && s.ctx.Err() == nil {
		s.a.Failed, s.a.Code, s.a.EnhancedCode, s.a.Reply, s.a.Err, s.a.ErrKind = "", 0, "", "", "", ""
		s.a.Stage = ""
		next, _ = s.once(true)
	}
	return next
}

// reach records a stage that succeeded. After a failure the polite end
// (RSET, QUIT) does not count: Stage stays the last step before it.
func (s *sendSession) reach(st Stage) {
	if s.a.Failed != "" {
		return
	}
	if stageOrder[st] >= stageOrder[s.a.Stage] || s.a.Stage == "" {
		s.a.Stage = st
	}
}

// once is one connection. plain: do not try STARTTLS (the retry after
// opportunistic TLS failed). It reports whether the next target may be
// tried, and whether to retry this one in clear.
func (s *sendSession) once(plain bool) (next, retryPlain bool) {
	s.rec.newConnection()
	s.c = nil
	conn, err := s.dial()
	if err != nil {
		s.failErr(StageConnect, err)
		return s.retryable(), false
	}
	s.reach(StageConnect)
	t := s.t
	s.res.Target = &t
	hard, _ := s.ctx.Deadline()
	s.tap = &tapConn{Conn: conn, rec: s.rec, record: true, per: s.o.Timeouts.Command, banner: s.o.Timeouts.Banner, hard: hard}
	stop := context.AfterFunc(s.ctx, s.tap.kill)
	defer func() {
		stop()
		s.tap.hold.Store(false)
		_ = s.tap.Close()
	}()
	s.rec.open(PhaseBanner)

	if s.o.quitAfter == StageConnect {
		s.greetAndQuit()
		return false, false
	}
	if s.t.ImplicitTLS || plain {
		return s.helloPlain(), false
	}
	return s.helloStartTLS()
}

// dial connects within the connect timeout; implicit-TLS targets also get
// their handshake here, since it comes before the greeting.
func (s *sendSession) dial() (net.Conn, error) {
	if !s.t.Addr.IsValid() {
		return nil, errors.New("no address to connect to")
	}
	addr := s.t.address()
	s.rec.note("connect " + addr)
	ctx, cancel := context.WithTimeout(s.ctx, s.o.Timeouts.Connect)
	defer cancel()
	t0 := time.Now()
	c, err := s.o.Dial(ctx, "tcp", addr)
	if err == nil && c == nil {
		err = errors.New("the dialer returned no connection")
	}
	if err != nil {
		s.rec.addPhase(PhaseConnect, time.Since(t0), err.Error())
		return nil, err
	}
	s.rec.addPhase(PhaseConnect, time.Since(t0), "")
	if !s.t.ImplicitTLS {
		return c, nil
	}
	t1 := time.Now()
	tc := tls.Client(c, s.tlsConfig())
	hctx, cancel2 := context.WithTimeout(s.ctx, s.o.Timeouts.Handshake)
	defer cancel2()
	dl, _ := hctx.Deadline()
	_ = c.SetDeadline(dl)
	err = tc.HandshakeContext(hctx)
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		s.rec.addPhase(PhaseHandshake, time.Since(t1), err.Error())
		_ = c.Close()
		s.reach(StageConnect)
		return nil, &tlsFailure{err}
	}
	s.rec.addPhase(PhaseHandshake, time.Since(t1), "")
	s.tlsDone(tc.ConnectionState())
	return tc, nil
}

// tlsFailure marks a failed handshake, to be classified at "starttls".
type tlsFailure struct{ err error }

func (e *tlsFailure) Error() string { return "the TLS handshake failed: " + e.err.Error() }
func (e *tlsFailure) Unwrap() error { return e.err }

func (s *sendSession) tlsConfig() *tls.Config {
	cfg := &tls.Config{
		// Verified after the handshake (verify.go), so that a bad
		// certificate is evidence, and a failure where TLS is required.
		InsecureSkipVerify: true,             //nolint:gosec // verified in newTLSState
		MinVersion:         tls.VersionTLS12, // RFC 8996: no TLS 1.0 or 1.1 for a real send
	}
	if s.t.Host != "" {
		if _, err := netip.ParseAddr(s.t.Host); err != nil {
			cfg.ServerName = strings.TrimSuffix(s.t.Host, ".") // SNI carries names only (RFC 6066 §3)
		}
	}
	return cfg
}

// tlsDone records a completed handshake.
func (s *sendSession) tlsDone(st tls.ConnectionState) {
	s.res.TLS = newTLSState(st, s.t, s.o.Roots, s.o.Now())
	s.res.TLSOffered = true
	s.a.TLSUsed = true
	s.rec.note(fmt.Sprintf("TLS established: %s, %s; certificate %s", s.res.TLS.Version, s.res.TLS.Cipher, verdictWord(s.res.TLS)))
}

func verdictWord(t *TLSState) string {
	if t.Verified {
		return "verified"
	}
	return "not verified (" + t.VerifyError + ")"
}

// verifiedEnough stops a send whose required TLS has a certificate that
// does not verify. It reports whether the send may go on.
func (s *sendSession) verifiedEnough() bool {
	if !s.o.requireTLS || s.o.InsecureSkipVerify || s.res.TLS == nil || s.res.TLS.Verified {
		return true
	}
	s.fail(StageStartTLS, KindUntrusted, 0, "", "the certificate of "+nameOr(s.t)+" does not verify: "+s.res.TLS.VerifyError)
	return false
}

// helloStartTLS is the STARTTLS path (see the comment at the top).
func (s *sendSession) helloStartTLS() (next, retryPlain bool) {
	s.tap.hold.Store(true)
	c, err := smtp.NewClientStartTLS(s.tap, s.tlsConfig())
	s.tap.hold.Store(false)
	if err != nil {
		w := s.rec.state()
		var se *smtp.SMTPError
		isReply := errors.As(err, &se)
		if w.ehloOK && !w.startTLSSent && !hasExtension(w.ehloExt, "STARTTLS") {
			s.res.TLSOffered = false
			s.reach(StageBanner)
			s.reach(StageEHLO)
			s.rawQuit()
			if s.o.requireTLS {
				s.fail(StageStartTLS, KindNoTLS, 0, "", "the server does not offer STARTTLS (RFC 3207), and TLS is required")
				return s.retryable(), false
			}
			s.rec.note("STARTTLS is not offered: sending without TLS, on a new connection")
			return false, true
		}
		stage := s.failedStage(w)
		if stage == StageStartTLS {
			s.res.TLSOffered = true
		}
		if isReply && !w.tlsGo {
			s.rawQuit()
		}
		if stage == StageStartTLS && !s.o.requireTLS && isReply && s.ctx.Err() == nil {
			s.a.TLSError = "STARTTLS is offered but was refused: " + w.lastReply
			s.rec.note(s.a.TLSError + "; sending without TLS, on a new connection")
			return false, true
		}
		s.failErr(stage, err)
		return s.retryable(), false
	}
	s.c = c
	c.DebugWriter = debugWriter{s.rec}
	s.res.TLSOffered = true
	s.reach(StageBanner)
	s.reach(StageEHLO)
	// The handshake runs with the first write over TLS, our EHLO.
	s.tap.budget(s.o.Timeouts.Handshake + s.o.Timeouts.Command)
	err = c.Hello(s.o.HeloName)
	st, _ := c.TLSConnectionState()
	if !st.HandshakeComplete {
		kind, _, _, msg := s.classify(err)
		if kind == KindReply || kind == KindNetwork || kind == KindClosed || kind == KindReset || kind == KindGarbage {
			kind = KindTLS
		}
		msg = "STARTTLS was accepted but the TLS handshake failed: " + msg
		if !s.o.requireTLS && kind != KindCanceled {
			s.a.TLSError = msg
			s.rec.note(msg + "; sending without TLS, on a new connection")
			return false, true
		}
		s.fail(StageStartTLS, kind, 0, "", msg)
		return s.retryable(), false
	}
	s.tlsDone(st)
	if err != nil {
		s.failErr(StageEHLO, err)
		return s.retryable(), false
	}
	if !s.verifiedEnough() {
		s.quit()
		return s.retryable(), false
	}
	s.reach(StageStartTLS)
	return s.afterHello(), false
}

// helloPlain greets without STARTTLS: implicit TLS (already up), or the
// retry in clear.
func (s *sendSession) helloPlain() bool {
	c := smtp.NewClient(s.tap)
	c.DebugWriter = debugWriter{s.rec}
	s.c = c
	s.tap.hold.Store(true)
	err := c.Hello(s.o.HeloName)
	s.tap.hold.Store(false)
	if err != nil {
		w := s.rec.state()
		stage := s.failedStage(w)
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			s.rawQuit()
		}
		s.failErr(stage, err)
		return s.retryable()
	}
	s.reach(StageBanner)
	s.reach(StageEHLO)
	if s.t.ImplicitTLS {
		if !s.verifiedEnough() {
			s.quit()
			return s.retryable()
		}
		s.reach(StageStartTLS)
	} else {
		if ok, _ := c.Extension("STARTTLS"); ok {
			s.res.TLSOffered = true
		}
		if s.o.requireTLS {
			// Only reached when the caller asked for TLS on a retry, which
			// does not happen; kept so that clear text can never follow a
			// requirement.
			s.fail(StageStartTLS, KindNoTLS, 0, "", "TLS is required but could not be used")
			s.quit()
			return s.retryable()
		}
	}
	return s.afterHello()
}

// failedStage says where a greeting/EHLO/STARTTLS call stopped, from what
// went over the wire.
func (s *sendSession) failedStage(w wireState) Stage {
	switch {
	case !w.sawBanner || w.lastCmd == "":
		return StageBanner
	case w.lastCmd == "STARTTLS" || w.tlsGo:
		return StageStartTLS
	}
	return StageEHLO
}

// afterHello runs AUTH, MAIL, RCPT and DATA as asked. It reports whether
// the next target may be tried.
func (s *sendSession) afterHello() bool {
	c := s.c
	if s.o.quitAfter == StageEHLO || s.o.quitAfter == StageStartTLS {
		s.accept()
		s.quit()
		return false
	}
	if s.o.Auth != nil {
		if !s.auth() {
			return s.retryable()
		}
		if s.o.quitAfter == StageAuth {
			s.accept()
			s.quit()
			return false
		}
	}

	s.tap.budget(s.o.Timeouts.Command)
	var mo *smtp.MailOptions
	if s.o.quitAfter == "" {
		// SIZE (RFC 1870) lets a server refuse a message too big for it
		// at MAIL rather than after the upload.
		mo = &smtp.MailOptions{Size: int64(len(s.o.Message))}
	}
	if err := c.Mail(s.o.From, mo); err != nil {
		s.failErr(StageMail, err)
		s.resetQuit(err)
		return s.retryable()
	}
	s.reach(StageMail)
	if s.o.quitAfter == StageMail {
		s.resetQuit(nil)
		return false
	}
	for _, to := range s.o.To {
		if err := c.Rcpt(to, nil); err != nil {
			s.failErr(StageRcpt, err)
			s.a.Err = "RCPT TO:<" + to + ">: " + strings.TrimPrefix(s.a.Err, string(StageRcpt)+": ")
			s.resetQuit(err)
			return s.retryable()
		}
	}
	s.reach(StageRcpt)
	if s.o.quitAfter == StageRcpt {
		s.resetQuit(nil)
		return false
	}

	w, err := c.Data()
	if err != nil {
		s.failErr(StageData, err)
		s.resetQuit(err)
		return s.retryable()
	}
	s.tap.budget(s.o.DataTimeout)
	_, err = w.Write(s.o.Message)
	var resp *smtp.DataResponse
	if err == nil {
		resp, err = w.CloseWithResponse()
	}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			// Refused after the final dot: a content decision.
			s.failErr(StageData, err)
			s.quit()
			return false
		}
		kind, _, _, msg := s.classify(err)
		if s.rec.state().dotSent {
			msg += ": the whole message and its final dot were sent, but no reply came, so we cannot tell whether the server accepted it (RFC 5321 §4.1.1.4; RFC 1047); look for the token in the mailbox before sending again"
		} else {
			msg += ": the message was cut off before its final dot, so the server must not deliver it (RFC 5321 §4.1.1.4); we cannot tell more"
		}
		s.fail(StageData, kind, 0, "", msg)
		return false // never resend a message that may have been taken
	}
	s.reach(StageData)
	s.res.QueueID = ParseQueueID(resp.StatusText)
	s.accept()
	s.quit()
	return false
}

// auth runs AUTH with the mechanism asked for or the best offered.
func (s *sendSession) auth() bool {
	c, au := s.c, s.o.Auth
	ok, mechs := c.Extension("AUTH")
	if !ok {
		s.fail(StageAuth, KindUnsupported, 0, "", "the server offers no AUTH (RFC 4954) after TLS")
		s.quit()
		return false
	}
	mech := strings.ToUpper(au.Mechanism)
	if mech == "" {
		switch {
		case c.SupportsAuth("PLAIN"):
			mech = "PLAIN"
		case c.SupportsAuth("LOGIN"):
			mech = "LOGIN"
		default:
			s.fail(StageAuth, KindUnsupported, 0, "", "the server offers AUTH "+printable(mechs, 120)+" but neither PLAIN nor LOGIN")
			s.quit()
			return false
		}
	} else if !c.SupportsAuth(mech) {
		s.fail(StageAuth, KindUnsupported, 0, "", "the server does not offer AUTH "+mech+" (it offers "+printable(mechs, 120)+")")
		s.quit()
		return false
	}
	var cl sasl.Client
	if mech == "PLAIN" {
		cl = sasl.NewPlainClient("", au.Username, au.Password)
	} else {
		cl = &loginClient{user: au.Username, pass: au.Password}
	}
	s.res.AuthMechanism = mech
	s.tap.budget(s.o.Timeouts.Command)
	if err := c.Auth(cl); err != nil {
		s.failErr(StageAuth, err)
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			s.quit()
		}
		return false
	}
	s.reach(StageAuth)
	return true
}

// loginClient is SASL LOGIN (draft-murchison-sasl-login). go-sasl's
// NewLoginClient sends the user name as an initial response and insists
// on the exact challenge "Password:"; servers differ ("Username:" first,
// "password:", or an empty challenge), so this one sends no initial
// response and answers the first challenge with the user name and the
// second with the password, whatever their text.
type loginClient struct {
	user, pass string
	step       int
}

func (l *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (l *loginClient) Next(challenge []byte) ([]byte, error) {
	l.step++
	switch l.step {
	case 1:
		if strings.Contains(strings.ToLower(string(challenge)), "pass") {
			l.step++
			return []byte(l.pass), nil
		}
		return []byte(l.user), nil
	case 2:
		return []byte(l.pass), nil
	}
	return nil, errors.New("unexpected third LOGIN challenge")
}

// greetAndQuit reads the greeting and says QUIT: QuitAfter "connect".
// go-smtp cannot do this (any Client call says EHLO first).
func (s *sendSession) greetAndQuit() {
	s.tap.budget(s.o.Timeouts.Command)
	tp := textproto.NewReader(bufio.NewReader(s.tap))
	code, msg, err := tp.ReadResponse(220)
	if err != nil {
		var te *textproto.Error
		if errors.As(err, &te) {
			s.failReply(StageBanner, te.Code, te.Msg)
			s.rawQuit()
			return
		}
		s.failErr(StageBanner, err)
		return
	}
	_, _ = code, msg
	s.reach(StageBanner)
	s.accept()
	s.rawQuit()
}

// accept records the server's acceptance from the last reply.
func (s *sendSession) accept() {
	w := s.rec.state()
	s.res.Accepted = true
	s.a.Code, s.a.Reply = w.lastCode, w.lastReply
	s.a.EnhancedCode = parseEnhancedCode(replyText(w.lastReply))
}

// replyText is the text of the last line of a reply as recorded ("250 2.1.5 Ok"
// gives "2.1.5 Ok").
func replyText(r string) string {
	if i := strings.LastIndex(r, " / "); i >= 0 {
		r = r[i+3:]
	}
	if len(r) > 4 {
		return r[4:]
	}
	return ""
}

// rawQuit says QUIT on the plaintext connection when go-smtp cannot (its
// Quit insists on a successful EHLO first). Best effort, within
// quitTimeout.
func (s *sendSession) rawQuit() {
	if s.rec.tlsStarted() {
		return // the raw connection carries TLS now; go-smtp is gone
	}
	s.tap.budget(min(quitTimeout, s.o.Timeouts.Command))
	s.rec.open(PhaseQuit)
	if _, err := io.WriteString(s.tap, "QUIT\r\n"); err != nil {
		return
	}
	_, _, _ = textproto.NewReader(bufio.NewReader(s.tap)).ReadResponse(221)
}

// quit says QUIT through go-smtp, best effort: RFC 5321 §4.1.1.10 has the
// client end with QUIT, and a failed QUIT changes nothing about the send.
func (s *sendSession) quit() {
	if s.c == nil {
		return
	}
	s.tap.budget(min(quitTimeout, s.o.Timeouts.Command))
	if err := s.c.Quit(); err == nil {
		s.reach(StageQuit)
	}
}

// resetQuit ends a transaction that will not be completed: RSET (RFC 5321
// §4.1.1.5), then QUIT. After a network error there is nobody to tell.
// go-smtp's Reset makes its Quit say EHLO again first: harmless.
func (s *sendSession) resetQuit(err error) {
	var se *smtp.SMTPError
	if err != nil && !errors.As(err, &se) {
		return
	}
	if err == nil {
		s.accept()
	}
	s.tap.budget(min(quitTimeout, s.o.Timeouts.Command))
	if s.c.Reset() != nil {
		return
	}
	s.quit()
}

// fail records the failure of the attempt (the first one only).
func (s *sendSession) fail(st Stage, kind string, code int, enh, msg string) {
	if s.a.Failed != "" {
		return
	}
	s.a.Failed, s.a.ErrKind, s.a.Code, s.a.EnhancedCode = st, kind, code, enh
	s.a.Err = string(st) + ": " + msg
	if kind == KindReply {
		w := s.rec.state()
		if w.lastCode == code && w.lastReply != "" {
			s.a.Reply = w.lastReply
		}
	}
	s.rec.failPending(s.a.Err)
	s.rec.note(s.a.Err)
}

// failReply records a refusal from a reply outside go-smtp.
func (s *sendSession) failReply(st Stage, code int, text string) {
	text = s.rec.red.scrub(text)
	enh := parseEnhancedCode(text)
	s.fail(st, KindReply, code, enh, fmt.Sprintf("%s: %d %s", refusalLead(st), code, printable(text, 300)))
	if s.a.Reply == "" {
		s.a.Reply = fmt.Sprintf("%d %s", code, printable(text, 300))
	}
}

// failErr classifies err and records it.
func (s *sendSession) failErr(st Stage, err error) {
	var tf *tlsFailure
	if errors.As(err, &tf) {
		kind, _, _, msg := s.classify(tf.err)
		if kind != KindTimeout && kind != KindCanceled {
			kind = KindTLS
		}
		s.fail(StageStartTLS, kind, 0, "", "the implicit-TLS handshake failed (RFC 8314 §3.3): "+msg)
		return
	}
	kind, code, enh, msg := s.classify(err)
	if kind == KindReply {
		text := msg
		if enh != "" {
			text = enh + " " + msg
		}
		s.fail(st, kind, code, enh, fmt.Sprintf("%s: %d %s", refusalLead(st), code, printable(text, 300)))
		if s.a.Reply == "" {
			s.a.Reply = fmt.Sprintf("%d %s", code, printable(text, 300))
		}
		return
	}
	s.fail(st, kind, 0, "", msg)
}

func refusalLead(st Stage) string {
	switch st {
	case StageBanner:
		return "the server greeted with"
	case StageEHLO:
		return "the server answered EHLO with"
	case StageStartTLS:
		return "the server answered STARTTLS with"
	case StageAuth:
		return "authentication refused"
	case StageMail:
		return "MAIL FROM refused"
	case StageRcpt:
		return "refused"
	case StageData:
		return "the message was refused"
	}
	return "the server answered"
}

// classify turns an error into a kind, the SMTP code and enhanced code of
// a reply, and a message for a mail admin, with the secrets already
// removed (before any cut to length could leave half a password).
func (s *sendSession) classify(err error) (kind string, code int, enh, msg string) {
	kind, code, enh, msg = s.classifyRaw(err)
	return kind, code, enh, s.rec.red.scrub(msg)
}

func (s *sendSession) classifyRaw(err error) (kind string, code int, enh, msg string) {
	var (
		se       *smtp.SMTPError
		te       *textproto.Error
		netErr   net.Error
		protoErr textproto.ProtocolError
		recErr   tls.RecordHeaderError
		alert    tls.AlertError
	)
	dl, hasDL := s.ctx.Deadline()
	ctxOver := s.ctx.Err() != nil || hasDL && !time.Now().Before(dl)
	timeout := errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
	switch {
	case errors.As(err, &se):
		if e := se.EnhancedCode; e != (smtp.EnhancedCode{}) && e != smtp.NoEnhancedCode {
			enh = fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
		}
		return KindReply, se.Code, enh, strings.ReplaceAll(se.Message, "\n", " / ")
	case errors.As(err, &te):
		return KindReply, te.Code, parseEnhancedCode(te.Msg), te.Msg
	case ctxOver && (timeout || errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed)):
		return KindCanceled, 0, "", fmt.Sprintf("stopped by the run's deadline or cancel (%v)", context.Cause(s.ctx))
	case timeout:
		return KindTimeout, 0, "", fmt.Sprintf("no reply within %v", s.tapBudget())
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused, 0, "", "connection refused by " + s.t.address()
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return KindReset, 0, "", "the server reset the connection"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return KindClosed, 0, "", "the server closed the connection"
	case errors.Is(err, smtp.ErrTooLongLine):
		return KindTooLong, 0, "", "a reply line is too long"
	case errors.Is(err, errServerFlood):
		return KindTooLong, 0, "", errServerFlood.Error()
	case errors.As(err, &protoErr):
		return KindGarbage, 0, "", "not an SMTP reply: " + printable(string(protoErr), 200)
	case errors.As(err, &recErr):
		return KindTLS, 0, "", fmt.Sprintf("the server did not answer with TLS (first bytes %q)", printable(string(recErr.RecordHeader[:]), 20))
	case errors.As(err, &alert):
		return KindTLS, 0, "", err.Error()
	}
	return KindNetwork, 0, "", err.Error()
}

func (s *sendSession) tapBudget() time.Duration {
	if s.tap == nil {
		return s.o.Timeouts.Connect
	}
	return s.tap.currentBudget()
}

// retryable: may the next target be tried after this attempt? Yes when
// the server could not be reached or talked to before DATA (nothing can
// have been delivered), greeted with 4xx/5xx (Postfix skips 5xx greetings,
// smtp_skip_5xx_greeting), refused EHLO temporarily, or lacked required
// TLS. No after any answer to MAIL, RCPT or DATA, after an AUTH refusal,
// or once the message is on its way.
func (s *sendSession) retryable() bool {
	a := s.a
	switch {
	case a.ErrKind == KindCanceled || a.ErrKind == KindInvalid || a.ErrKind == KindUnsupported:
		return false
	case a.ErrKind == KindNoTLS || a.ErrKind == KindUntrusted:
		return true
	case a.ErrKind == KindReply:
		switch a.Failed {
		case StageBanner, StageStartTLS:
			return true
		case StageEHLO:
			return a.Code/100 == 4
		}
		return false
	}
	if a.Failed == StageData {
		return !s.rec.state().bodyStart
	}
	return true
}

// headerValue returns the first header field named name in msg's header,
// unfolded (RFC 5322 §2.2.3), or "".
func headerValue(msg []byte, name string) string {
	hdr, _, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, f := range splitFields(hdr + "\r\n") {
		k, v, ok := strings.Cut(f, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return printable(strings.TrimSpace(strings.NewReplacer("\r\n", "", "\t", " ").Replace(v)), 1024)
		}
	}
	return ""
}

func isPrintASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
