package smtpprobe

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The send transcript and its redaction.
//
// go-smtp's Client has a DebugWriter, but it mixes both directions in one
// byte stream and is set only after the Client exists, which for
// NewClientStartTLS is after the greeting, EHLO and STARTTLS. So the
// transcript is taken from the connection go-smtp is given (tapConn):
// it knows which way bytes go. Once the server has said 220 to STARTTLS,
// those bytes are TLS records, and the plaintext is taken from the
// DebugWriter instead, with the direction of the last raw read or write
// (go-smtp is strictly command-then-reply, so the last raw operation
// before a DebugWriter call is the one that call reports).
//
// Every line is redacted before it is kept: AUTH payloads are replaced by
// "****" by protocol state (RFC 4954 §4: the AUTH line's initial
// response and every client line until the server's final reply), and
// any text containing the password, or its base64 in any alignment, is
// replaced wherever it appears: a server may echo what it got.

// redacted replaces a secret wherever it appears.
const redacted = "****"

// redactor knows the secrets of one send.
type redactor struct{ secrets []string }

// newRedactor collects the forms the password can take on the wire: the
// password itself, the base64 of the AUTH PLAIN message (RFC 4616 §2,
// with and without an authorization identity), and the part of the
// password's base64 that does not depend on what precedes it, for each of
// the three alignments a base64 stream can put it in.
func newRedactor(a *Auth) *redactor {
	r := &redactor{}
	if a == nil || a.Password == "" {
		return r
	}
	pw := a.Password
	set := map[string]bool{pw: true}
	for _, s := range []string{pw, "\x00" + a.Username + "\x00" + pw, a.Username + "\x00" + a.Username + "\x00" + pw} {
		set[base64.RawStdEncoding.EncodeToString([]byte(s))] = true
	}
	for k := 0; k < 3; k++ {
		enc := base64.RawStdEncoding.EncodeToString(append(make([]byte, k), pw...))
		// Characters wholly inside the password's bits: from
		// ceil(8k/6) to floor(8(k+n)/6).
		from, to := (8*k+5)/6, 8*(k+len(pw))/6
		if to-from >= 4 {
			set[enc[from:to]] = true
		}
	}
	for s := range set {
		r.secrets = append(r.secrets, s)
	}
	// Longest first, so a whole base64 blob goes before a part of it.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

// scrub replaces every secret in s.
func (r *redactor) scrub(s string) string {
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

const (
	dirClient = 0
	dirServer = 1
	// maxReadBetweenWrites bounds what a server may send between two of
	// our writes (a reply, or a TLS handshake with its certificates):
	// go-smtp reads a multi-line reply to its end, however long.
	maxReadBetweenWrites = 1 << 20
)

// recorder keeps the transcript and the protocol state visible on the
// wire: which command was sent last, whether the greeting came, the last
// reply, the EHLO extensions, whether the message's final dot went out.
// Send reads that state to know which stage a go-smtp call failed in,
// since one go-smtp call can cover several stages.
type recorder struct {
	mu  sync.Mutex
	red *redactor
	tr  transcript
	dir int // direction of the last raw read or write

	part [2][]byte
	skip [2]bool // dropping the rest of an overlong line

	// Per connection.
	lastCmd    string
	inAuth     bool
	inBody     bool
	bodyBytes  int
	dotSent    bool
	bodyStart  bool // DATA got its 354: the message is on its way
	sawBanner  bool
	ehloOK     bool
	ehloExt    []string
	tlsGo      bool // the server answered 220 to STARTTLS
	tlsGoAt    time.Time
	replyLines []string
	lastCode   int
	lastReply  string

	// Per attempt.
	phases    []Phase
	pending   string
	pendingAt time.Time
	names     map[string]int
}

func newRecorder(red *redactor) *recorder {
	return &recorder{red: red, names: map[string]int{}}
}

// startAttempt forgets the phases of the previous target.
func (r *recorder) startAttempt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases, r.pending, r.names = nil, "", map[string]int{}
}

// newConnection resets the protocol state; the transcript goes on.
func (r *recorder) newConnection() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
	r.lastCmd, r.inAuth, r.inBody, r.bodyBytes, r.dotSent, r.bodyStart = "", false, false, 0, false, false
	r.sawBanner, r.ehloOK, r.ehloExt, r.tlsGo = false, false, nil, false
	r.replyLines, r.lastCode, r.lastReply = nil, 0, ""
}

// wireState is a copy of the protocol state.
type wireState struct {
	lastCmd              string
	sawBanner, ehloOK    bool
	ehloExt              []string
	tlsGo                bool
	bodyStart, dotSent   bool
	lastCode             int
	lastReply            string
	startTLSSent, inBody bool
}

func (r *recorder) state() wireState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return wireState{
		lastCmd: r.lastCmd, sawBanner: r.sawBanner, ehloOK: r.ehloOK, ehloExt: slices.Clone(r.ehloExt),
		tlsGo: r.tlsGo, bodyStart: r.bodyStart, dotSent: r.dotSent, lastCode: r.lastCode, lastReply: r.lastReply,
		startTLSSent: r.lastCmd == "STARTTLS" || r.tlsGo, inBody: r.inBody,
	}
}

func (r *recorder) bannerSeen() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sawBanner
}

func (r *recorder) tlsStarted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tlsGo
}

func (r *recorder) setDir(d int) {
	r.mu.Lock()
	r.dir = d
	r.mu.Unlock()
}

// note adds a "!: " line: what mfcheck did or saw besides the protocol.
func (r *recorder) note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr.add("!: ", r.red.scrub(msg))
}

// addPhase records a phase timed by the caller (connect, an implicit-TLS
// handshake).
func (r *recorder) addPhase(name string, d time.Duration, errMsg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addPhaseLocked(Phase{Name: name, MS: ms(d), Err: r.red.scrub(errMsg)})
}

// open starts the phase that the next reply ends.
func (r *recorder) open(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.openLocked(name)
}

// failPending ends the open phase with an error.
func (r *recorder) failPending(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked(r.red.scrub(msg))
}

// lines returns the transcript, any unfinished line included.
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
	return slices.Clone(r.tr.lines)
}

// attemptPhases returns the phases of the current attempt, an open one
// closed as unanswered.
func (r *recorder) attemptPhases() []Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending != "" {
		r.closeLocked("no reply")
	}
	return slices.Clone(r.phases)
}

func (r *recorder) openLocked(name string) {
	if r.pending != "" {
		r.closeLocked("")
	}
	r.pending, r.pendingAt = name, time.Now()
}

func (r *recorder) closeLocked(errMsg string) {
	if r.pending == "" {
		return
	}
	r.addPhaseLocked(Phase{Name: r.pending, MS: ms(time.Since(r.pendingAt)), Err: errMsg})
	r.pending = ""
}

// addPhaseLocked keeps phase names unique ("rcpt", "rcpt-2") so that
// PhaseMS-style maps keep every one.
func (r *recorder) addPhaseLocked(p Phase) {
	r.names[p.Name]++
	if n := r.names[p.Name]; n > 1 {
		p.Name += "-" + strconv.Itoa(n)
	}
	r.phases = append(r.phases, p)
}

// write takes bytes that went over the wire in direction d.
func (r *recorder) write(d int, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := append(r.part[d], p...)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSuffix(string(b[:i]), "\r")
		b = b[i+1:]
		if r.skip[d] {
			r.skip[d] = false
			if r.inBody && d == dirClient {
				r.bodyBytes += len(line) + 2
			}
			continue
		}
		r.lineLocked(d, line)
	}
	if len(b) > maxLineLen {
		// An overlong line: keep its start, drop the rest.
		if !(r.inBody && d == dirClient) {
			r.lineLocked(d, printable(r.red.scrub(string(b)), maxLineLen))
		} else {
			r.bodyBytes += len(b)
		}
		r.skip[d] = true
		b = nil
	}
	r.part[d] = append([]byte(nil), b...)
}

// flushLocked records unfinished lines (a server that closed mid-line).
func (r *recorder) flushLocked() {
	for d := range r.part {
		if len(r.part[d]) > 0 && !r.skip[d] {
			r.lineLocked(d, strings.TrimSuffix(string(r.part[d]), "\r"))
		}
		r.part[d], r.skip[d] = nil, false
	}
}

func (r *recorder) lineLocked(d int, line string) {
	if d == dirClient {
		r.clientLine(line)
		return
	}
	r.serverLine(line)
}

func (r *recorder) clientLine(line string) {
	if r.inBody {
		// RFC 5321 §4.5.2: a line that is a lone dot ends the data; the
		// client doubles any leading dot of the message, so a lone dot
		// is never message text.
		if line == "." {
			r.inBody, r.dotSent = false, true
			r.tr.add("C: ", "("+strconv.Itoa(r.bodyBytes)+" bytes of message)")
			r.tr.add("C: ", ".")
			r.openLocked("message")
			return
		}
		r.bodyBytes += len(line) + 2
		return
	}
	if r.inAuth {
		// A SASL response (RFC 4954 §4): always secret.
		r.tr.add("C: ", redacted)
		return
	}
	if r.tlsGo && r.pending == "" && !r.tlsGoAt.IsZero() {
		r.addPhaseLocked(Phase{Name: PhaseHandshake, MS: ms(time.Since(r.tlsGoAt))})
		r.tlsGoAt = time.Time{}
	}
	verb, rest, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	r.lastCmd = verb
	if verb == "AUTH" {
		mech, ir, _ := strings.Cut(rest, " ")
		shown := "AUTH " + printable(mech, 40)
		if ir != "" {
			shown += " " + redacted
		}
		r.inAuth = true
		r.tr.add("C: ", shown)
		r.openLocked("auth")
		return
	}
	r.tr.add("C: ", r.red.scrub(line))
	name := strings.ToLower(verb)
	switch verb {
	case "EHLO", "HELO":
		name = PhaseEHLO
		if r.tlsGo {
			name = PhaseEHLOTLS
		}
	case "":
		name = "empty"
	}
	r.openLocked(printable(name, 20))
}

func (r *recorder) serverLine(line string) {
	line = r.red.scrub(line)
	r.tr.add("S: ", line)
	if len(r.replyLines) < maxExtensions+1 {
		r.replyLines = append(r.replyLines, line)
	}
	if len(line) >= 4 && line[3] == '-' {
		return // more lines follow (RFC 5321 §4.2.1)
	}
	code := 0
	if len(line) >= 3 {
		code, _ = strconv.Atoi(line[:3])
	}
	texts := make([]string, len(r.replyLines))
	for i, l := range r.replyLines {
		if len(l) > 4 {
			texts[i] = l[4:]
		}
	}
	r.lastCode = code
	r.lastReply = printable(r.red.scrub(strings.Join(r.replyLines, " / ")), 512)
	r.replyLines = nil
	if !r.sawBanner {
		r.sawBanner = true
	}
	r.closeLocked("")
	switch {
	case r.inAuth:
		if code != 334 {
			r.inAuth = false
		}
	case r.lastCmd == "DATA" && code == 354:
		r.inBody, r.bodyStart, r.bodyBytes = true, true, 0
	case (r.lastCmd == "EHLO" || r.lastCmd == "HELO") && code == 250:
		r.ehloOK = true
		_, r.ehloExt = parseEHLO(strings.Join(texts, "\n"))
	case r.lastCmd == "STARTTLS" && code == 220:
		r.tlsGo, r.tlsGoAt = true, time.Now()
	}
}

// debugWriter is go-smtp's DebugWriter: it records only after STARTTLS,
// when the tap below TLS sees ciphertext.
type debugWriter struct{ r *recorder }

func (w debugWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	on, d := w.r.tlsGo, w.r.dir
	w.r.mu.Unlock()
	if on {
		w.r.write(d, p)
	}
	return len(p), nil
}

// tapConn is the connection go-smtp gets. It records the plaintext until
// STARTTLS, notes the direction of every read and write, bounds what the
// server may send, and clamps every deadline go-smtp sets.
//
// go-smtp sets a deadline of CommandTimeout (5 minutes by default) before
// each command and clears it afterwards; it has no context. Clamping here
// puts our own bound on each of its commands, whichever go-smtp call makes
// them (NewClientStartTLS runs greeting, EHLO and STARTTLS before we can
// set any field of the Client): the stage budget from now, and never past
// the context's deadline. A cancel makes the deadline sticky in the past.
type tapConn struct {
	net.Conn
	rec    *recorder
	record bool // record the bytes (until STARTTLS; the DebugWriter takes over then)
	hold   atomic.Bool

	mu        sync.Mutex
	per       time.Duration // budget of each go-smtp command
	banner    time.Duration // budget until the greeting arrived
	hard      time.Time     // the context's deadline
	dead      bool
	readSince int
}

// errServerFlood: the server sent more than maxReadBetweenWrites without
// waiting for us.
var errServerFlood = errors.New("smtpprobe: the server sent over 1 MiB without waiting for a command")

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.setDir(dirServer)
	if n > 0 {
		c.mu.Lock()
		c.readSince += n
		flood := c.readSince > maxReadBetweenWrites
		c.mu.Unlock()
		if c.record && !c.rec.tlsStarted() {
			c.rec.write(dirServer, p[:n])
		}
		if flood {
			return n, errServerFlood
		}
	}
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.readSince = 0
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	c.rec.setDir(dirClient)
	if n > 0 && c.record && !c.rec.tlsStarted() {
		c.rec.write(dirClient, p[:n])
	}
	return n, err
}

// Close does nothing while hold is set: go-smtp closes the connection
// when the greeting or STARTTLS fails, and we want to say QUIT first.
func (c *tapConn) Close() error {
	if c.hold.Load() {
		return nil
	}
	return c.Conn.Close()
}

func (c *tapConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *tapConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *tapConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

func (c *tapConn) clamp(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return time.Unix(1, 0)
	}
	per := c.per
	if c.banner > 0 && !c.rec.bannerSeen() {
		per = c.banner
	}
	lim := time.Now().Add(per)
	if !c.hard.IsZero() && c.hard.Before(lim) {
		lim = c.hard
	}
	if t.IsZero() || lim.Before(t) {
		return lim
	}
	return t
}

// budget sets the bound of the next commands and starts it now.
func (c *tapConn) budget(d time.Duration) {
	c.mu.Lock()
	c.per = d
	c.mu.Unlock()
	_ = c.SetDeadline(time.Time{})
}

func (c *tapConn) currentBudget() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.banner > 0 && !c.rec.bannerSeen() {
		return c.banner
	}
	return c.per
}

// kill unblocks any read or write now and for good (the context ended).
func (c *tapConn) kill() {
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
	_ = c.Conn.SetDeadline(time.Unix(1, 0))
}
