package e2e

// The send/trace/bypass must-show of issue 5, against the real Postfix of
// scripts/postfix-lab.sh (started by .ci/run):
//
//   - mx-good.tls.test (127.0.62.10) is the gateway: `mfcheck send` delivers
//     through it into the lab's Maildir, the test finds the message by its
//     token, Postfix's own log says the queue ID mfcheck reported was
//     delivered, and `mfcheck trace` on the file shows the gateway hop with
//     ESMTPS. swaks sends through the same listener as a cross-check, and
//     both messages must show the same hop.
//   - cloud-locked.tls.test (127.0.62.20) refuses RCPT from everyone but the
//     gateway, a locked-down cloud mailbox endpoint: the bypass test passes
//     with the same 5xx swaks gets; cloud-open.tls.test (127.0.62.21)
//     accepts, an open one: the bypass test fails. Postfix's log shows the
//     bypass never queued a message, and the Maildir does not grow.
//
// The Postfix/swaks halves (TestSwaks*) need no mfcheck command; the rest
// need `mfcheck send` and `mfcheck trace` (issue 5's CLI contract).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	gatewayAddr   = "127.0.62.10"
	gatewayHost   = "mx-good.tls.test"
	lockedAddr    = "127.0.62.20"
	lockedHost    = "cloud-locked.tls.test"
	openAddr      = "127.0.62.21"
	openHost      = "cloud-open.tls.test"
	probeRcpt     = "probe@tls.test"
	probeSender   = "sender@tls.test"
	labProfiles   = "testdata/gateway-profile.yaml"
	labProfileID  = "lab-gateway"
	refusalText   = "direct delivery refused: mail must come through the gateway"
	deliveryBound = 30 * time.Second // Postfix delivers asynchronously; locally it takes milliseconds
	logBound      = 10 * time.Second
)

// mailLab is a running scripts/postfix-lab.sh with its Maildir and log.
type mailLab struct {
	dir     string // MFCHECK_POSTFIX
	ca      string // CA.pem
	maildir string // mail/tls.test (new/, cur/, tmp/)
	log     string // postfix.log (maillog_file)
	nsd     string
}

// newMailLab checks the lab of tls_test.go and the listeners and files the
// send tests add, or skips (fails under MFCHECK_E2E=required).
func newMailLab(t *testing.T) *mailLab {
	t.Helper()
	dir := postfixLab(t)
	l := &mailLab{dir: dir, ca: filepath.Join(dir, "CA.pem"), maildir: filepath.Join(dir, "mail", "tls.test"),
		log: filepath.Join(dir, "postfix.log"), nsd: nsdAddr(t)}
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + "; restart it with `sudo scripts/postfix-lab.sh start` (an older lab has no cloud listeners)"
		if os.Getenv("MFCHECK_E2E") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for addr, name := range map[string]string{lockedAddr: lockedHost, openAddr: openHost} {
		if banner, err := greeting(addr); err != nil || !strings.HasPrefix(banner, "220 "+name+" ESMTP mfcheck-lab") {
			unavailable("Postfix lab host %s:25 does not greet as %s (got %q, %v)", addr, name, banner, err)
		}
	}
	if _, err := os.Stat(l.log); err != nil {
		unavailable("the Postfix lab writes no log: %v", err)
	}
	for _, sub := range []string{"new", "cur"} {
		if _, err := os.Stat(filepath.Join(l.maildir, sub)); err != nil {
			unavailable("the Postfix lab has no Maildir: %v", err)
		}
	}
	return l
}

// requireSwaks skips (fails when required) without swaks and its TLS module.
func requireSwaks(t *testing.T) {
	t.Helper()
	msg := ""
	if _, err := exec.LookPath("swaks"); err != nil {
		msg = fmt.Sprintf("swaks is not installed: %v", err)
	} else if out, err := exec.Command("swaks", "--support").CombinedOutput(); err != nil || !strings.Contains(string(out), "=== TLS supported") {
		msg = fmt.Sprintf("swaks has no STARTTLS (Debian package libnet-ssleay-perl): %s", strings.TrimSpace(string(out)))
	}
	if msg == "" {
		return
	}
	if os.Getenv("MFCHECK_E2E") == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireSendCommands fails once, clearly, while the binary lacks issue 5's
// `mfcheck send` / `mfcheck trace` or their flags.
func requireSendCommands(t *testing.T) {
	t.Helper()
	r := run(t, "send", "--help")
	require.Equal(t, 0, r.code, "mfcheck send, the command of issue 5's CLI contract, is missing: %s", strings.TrimSpace(r.stderr))
	for _, f := range []string{"--path", "--server", "--to", "--from", "--ca-file"} {
		require.Contains(t, r.stdout, f, "mfcheck send --help lists no %s", f)
	}
	r = run(t, "trace", "--help")
	require.Equal(t, 0, r.code, "mfcheck trace, the command of issue 5's CLI contract, is missing: %s", strings.TrimSpace(r.stderr))
	for _, f := range []string{"--maildir", "--token", "--profiles-file"} {
		require.Contains(t, r.stdout, f, "mfcheck trace --help lists no %s", f)
	}
}

func newToken(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + "-" + hex.EncodeToString(b)
}

// messages lists the Maildir's message files (new/ and cur/).
func (l *mailLab) messages(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(l.maildir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		for _, e := range entries {
			if e.Type().IsRegular() {
				out = append(out, filepath.Join(l.maildir, sub, e.Name()))
			}
		}
	}
	return out
}

// waitForToken polls the Maildir until one message holds token, and
// returns its path; it fails after deliveryBound, or if two messages do.
func (l *mailLab) waitForToken(t *testing.T, token string) string {
	t.Helper()
	deadline := time.Now().Add(deliveryBound)
	for {
		var found []string
		for _, p := range l.messages(t) {
			data, err := os.ReadFile(p)
			if errors.Is(err, os.ErrNotExist) {
				continue // moved from new/ to cur/ meanwhile
			}
			require.NoError(t, err)
			if bytes.Contains(data, []byte(token)) {
				found = append(found, p)
			}
		}
		require.LessOrEqual(t, len(found), 1, "token %s is in more than one message: %v", token, found)
		if len(found) == 1 {
			return found[0]
		}
		if time.Now().After(deadline) {
			tail, _ := os.ReadFile(l.log)
			t.Fatalf("no message with token %s in %s after %s; Postfix log:\n%s", token, l.maildir, deliveryBound, lastLines(string(tail), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logMark is a position in postfix.log; since returns what was logged after it.
type logMark struct {
	path   string
	offset int64
}

func (l *mailLab) mark(t *testing.T) logMark {
	t.Helper()
	fi, err := os.Stat(l.log)
	require.NoError(t, err)
	return logMark{path: l.log, offset: fi.Size()}
}

func (m logMark) since(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(m.path)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Seek(m.offset, 0)
	require.NoError(t, err)
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())
	return lines
}

// waitLog polls the log after m until ok says the lines are complete
// (postlogd writes asynchronously), and returns them.
func (m logMark) waitLog(t *testing.T, what string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(logBound)
	for {
		lines := m.since(t)
		if ok(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix log: no %s within %s; logged since the mark:\n%s", what, logBound, strings.Join(lines, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// smtpdLines are the lines of one lab listener's smtpd (syslog_name
// postfix/NAME in scripts/postfix-lab.sh).
func smtpdLines(lines []string, listener string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, " postfix/"+listener+"/smtpd[") {
			out = append(out, l)
		}
	}
	return out
}

func hasLine(lines []string, parts ...string) bool {
	return slices.ContainsFunc(lines, func(l string) bool {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	})
}

var queueIDLine = regexp.MustCompile(`: ([0-9A-F]{6,}): client=`)

// delivered waits for Postfix to log that queueID, received by listener,
// went into the Maildir.
func delivered(t *testing.T, m logMark, listener, queueID string) {
	t.Helper()
	m.waitLog(t, "delivery of "+queueID, func(lines []string) bool {
		return hasLine(smtpdLines(lines, listener), queueID+": client=") &&
			hasLine(lines, queueID+": to=<"+probeRcpt+">", "relay=virtual", "status=sent (delivered to maildir)")
	})
}

// notQueued waits for the listener's connection to end and asserts that
// nothing it accepted became a message: no DATA in its disconnect summary
// and no cleanup/qmgr line for a queue ID it opened.
func notQueued(t *testing.T, m logMark, listener string) {
	t.Helper()
	lines := m.waitLog(t, listener+" disconnect", func(lines []string) bool {
		return hasLine(smtpdLines(lines, listener), "disconnect from ")
	})
	own := smtpdLines(lines, listener)
	for _, l := range own {
		if strings.Contains(l, "disconnect from ") {
			assert.NotContains(t, l, " data=", "the bypass test sent DATA to %s: %s", listener, l)
			assert.NotContains(t, l, " bdat=", "the bypass test sent BDAT to %s: %s", listener, l)
		}
	}
	for _, l := range own {
		if m := queueIDLine.FindStringSubmatch(l); m != nil {
			// Postfix opens a queue file at the first accepted RCPT and drops
			// it at RSET/QUIT; a message would get cleanup's message-id and
			// qmgr's from= lines.
			assert.False(t, hasLine(lines, m[1]+": message-id="), "queue file %s from %s became a message:\n%s", m[1], listener, strings.Join(lines, "\n"))
			assert.False(t, hasLine(lines, m[1]+": from=<"), "queue file %s from %s was queued:\n%s", m[1], listener, strings.Join(lines, "\n"))
		}
	}
}

// queueEmpty asserts the lab's queue holds nothing (no deferred mail that
// could try to leave; every outbound transport is error: anyway).
func (l *mailLab) queueEmpty(t *testing.T) {
	t.Helper()
	out, err := exec.Command("postqueue", "-c", filepath.Join(l.dir, "etc"), "-p").CombinedOutput()
	require.NoError(t, err, "postqueue: %s", out)
	assert.Contains(t, string(out), "Mail queue is empty", "the lab queue")
}

// hop is one Received header as read by this test, independently of
// mfcheck's parser: the "by" host and the "with" protocol, comments removed.
type hop struct{ By, With string }

var (
	byRe   = regexp.MustCompile(`(?i)\bby\s+([^\s;()]+)`)
	withRe = regexp.MustCompile(`(?i)\bwith\s+([^\s;()]+)`)
)

// stripComments removes RFC 5322 (comments), nested, so the "with cipher"
// inside Postfix's "(using TLSv1.3 with cipher ...)" is not the protocol.
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// receivedHops reads a message's Received headers, newest (top) first.
func receivedHops(t *testing.T, data []byte) []hop {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	require.NoError(t, err)
	var hops []hop
	for _, v := range msg.Header["Received"] {
		v = stripComments(v)
		if i := strings.LastIndexByte(v, ';'); i >= 0 {
			v = v[:i]
		}
		var h hop
		if m := byRe.FindStringSubmatch(v); m != nil {
			h.By = strings.ToLower(m[1])
		}
		if m := withRe.FindStringSubmatch(v); m != nil {
			h.With = strings.ToUpper(m[1])
		}
		hops = append(hops, h)
	}
	return hops
}

// swaksResult is one swaks run.
type swaksResult struct {
	out  string
	code int
}

func swaks(t *testing.T, l *mailLab, addr string, extra ...string) swaksResult {
	t.Helper()
	args := []string{"--server", addr, "--port", "25", "--to", probeRcpt, "--from", probeSender,
		"--ehlo", "swaks.tls.test", "--tls", "--tls-verify", "--tls-ca-path", l.ca, "--timeout", "20"}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "swaks", args...).CombinedOutput()
	require.NoError(t, ctx.Err(), "swaks %v hung", args)
	r := swaksResult{out: string(out)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("swaks %v: %v", args, err)
	}
	return r
}

// smtpReply is a reply read from a transcript.
type smtpReply struct {
	Code     int
	Enhanced string
	Text     string
}

var (
	// swaks prints commands as " -> CMD" (" ~> " after STARTTLS) and replies
	// as "<-  250 ..." ("<~  " under TLS); an error reply as "<** 550 ..."
	// ("<~* " under TLS).
	swaksReplyRe   = regexp.MustCompile(`^<[-~*][* ] (\d{3})([ -])(.*)$`)
	enhancedCodeRe = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3})\b ?(.*)$`)
	swaksQueuedRe  = regexp.MustCompile(`^<[-~]  250 .*queued as ([0-9A-F]+)`)
	// mfcheck's transcripts (pkg/smtpprobe) write server lines as "S: 250 ...".
	transcriptReplyRe = regexp.MustCompile(`^S: ([2-5]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3})\b)?`)
	swaksCommandPfx   = []string{" -> ", " ~> "}
)

// swaksReply is the (last line of the) reply swaks printed to the first
// command starting with cmd ("RCPT TO", "DATA", ...); ok is false when
// swaks never sent it.
func swaksReply(out, cmd string) (smtpReply, bool) {
	lines := strings.Split(strings.ReplaceAll(out, "\r", ""), "\n")
	for i, l := range lines {
		sent := false
		for _, p := range swaksCommandPfx {
			sent = sent || strings.HasPrefix(l, p+cmd)
		}
		if !sent {
			continue
		}
		for _, r := range lines[i+1:] {
			m := swaksReplyRe.FindStringSubmatch(r)
			if m == nil {
				continue
			}
			if m[2] == "-" {
				continue // continuation; the last line has the code and a space
			}
			code, _ := strconv.Atoi(m[1])
			rep := smtpReply{Code: code, Text: m[3]}
			if e := enhancedCodeRe.FindStringSubmatch(m[3]); e != nil {
				rep.Enhanced, rep.Text = e[1], e[2]
			}
			return rep, true
		}
		return smtpReply{}, false
	}
	return smtpReply{}, false
}

func swaksQueueID(out string) string {
	for _, l := range strings.Split(strings.ReplaceAll(out, "\r", ""), "\n") {
		if m := swaksQueuedRe.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	return ""
}

func swaksSent(out, cmd string) bool {
	for _, l := range strings.Split(out, "\n") {
		for _, p := range swaksCommandPfx {
			if strings.HasPrefix(l, p+cmd) {
				return true
			}
		}
	}
	return false
}

// TestSwaksThroughGateway: swaks delivers through the gateway listener with
// verified STARTTLS; the message is found by its token, Postfix logged the
// delivery of the queue ID swaks was given, and the top Received line is
// the gateway's ESMTPS hop. No mfcheck involved.
func TestSwaksThroughGateway(t *testing.T) {
	l := newMailLab(t)
	requireSwaks(t)
	token := newToken(t, "swaks")
	m := l.mark(t)
	r := swaks(t, l, gatewayAddr, "--header", "X-Mfcheck-Token: "+token)
	require.Equal(t, 0, r.code, "swaks through the gateway:\n%s", r.out)
	assert.Contains(t, r.out, `TLS peer DN="/CN=`+gatewayHost+`"`, r.out)
	rep, ok := swaksReply(r.out, "RCPT TO")
	require.True(t, ok, r.out)
	assert.Equal(t, 250, rep.Code, r.out)
	qid := swaksQueueID(r.out)
	require.NotEmpty(t, qid, "swaks printed no queue ID:\n%s", r.out)
	delivered(t, m, "good", qid)
	file := l.waitForToken(t, token)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	hops := receivedHops(t, data)
	require.NotEmpty(t, hops, "%s has no Received header", file)
	assert.Equal(t, hop{By: gatewayHost, With: "ESMTPS"}, hops[0], "the gateway's hop in %s", file)
	t.Logf("swaks: queued as %s, delivered to %s; Received: %+v", qid, file, hops)
	l.queueEmpty(t)
}

// TestSwaksBypassEndpoints: swaks gets the locked endpoint's 550 5.7.1 at
// RCPT and an open endpoint's 250, and sending stops there (--quit-after
// RCPT on the open one, like the bypass test): nothing is queued, nothing
// delivered.
func TestSwaksBypassEndpoints(t *testing.T) {
	l := newMailLab(t)
	requireSwaks(t)
	before := len(l.messages(t))

	m := l.mark(t)
	r := swaks(t, l, lockedAddr)
	assert.Equal(t, 24, r.code, "swaks exits 24 when RCPT is refused:\n%s", r.out)
	assert.Contains(t, r.out, `TLS peer DN="/CN=`+lockedHost+`"`, r.out)
	locked, ok := swaksReply(r.out, "RCPT TO")
	require.True(t, ok, r.out)
	assert.Equal(t, smtpReply{Code: 550, Enhanced: "5.7.1", Text: "<localhost[127.0.0.1]>: Client host rejected: " + refusalText}, locked, r.out)
	assert.False(t, swaksSent(r.out, "DATA"), "no DATA after a refused RCPT:\n%s", r.out)
	lines := m.waitLog(t, "cloud-locked reject", func(lines []string) bool {
		return hasLine(smtpdLines(lines, "cloud-locked"), "disconnect from ")
	})
	assert.True(t, hasLine(smtpdLines(lines, "cloud-locked"), "NOQUEUE: reject: RCPT from", "550 5.7.1", refusalText, "to=<"+probeRcpt+">"),
		"Postfix logged the refusal:\n%s", strings.Join(lines, "\n"))
	notQueued(t, m, "cloud-locked")

	m = l.mark(t)
	r = swaks(t, l, openAddr, "--quit-after", "RCPT")
	assert.Equal(t, 0, r.code, r.out)
	open, ok := swaksReply(r.out, "RCPT TO")
	require.True(t, ok, r.out)
	assert.Equal(t, 250, open.Code, r.out)
	assert.Equal(t, "2.1.5", open.Enhanced, r.out)
	assert.False(t, swaksSent(r.out, "DATA"), r.out)
	notQueued(t, m, "cloud-open")
	l.queueEmpty(t)
	assert.Equal(t, before, len(l.messages(t)), "the Maildir grew")
	t.Logf("swaks: cloud-locked RCPT -> %d %s %s; cloud-open RCPT -> %d %s %s", locked.Code, locked.Enhanced, locked.Text, open.Code, open.Enhanced, open.Text)
}

// sendEvidence is the contract's evidence of send.inbound.
type sendEvidence struct {
	Token        string         `json:"token"`
	QueueID      string         `json:"queue_id"`
	Transcript   []string       `json:"transcript"`
	Stage        string         `json:"stage"`
	Code         int            `json:"code"`
	EnhancedCode string         `json:"enhanced_code"`
	TLS          map[string]any `json:"tls"`
}

func evidenceOf(t *testing.T, f finding, into any) {
	t.Helper()
	b, err := json.Marshal(f.Evidence)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, into), "%s evidence: %s", f.ID, b)
}

func findingByID(t *testing.T, rep jsonReport, id string) finding {
	t.Helper()
	var found []finding
	for _, f := range rep.Findings {
		if f.ID == id {
			found = append(found, f)
		}
	}
	require.Len(t, found, 1, "want one %s finding, got: %v", id, keys(rep))
	return found[0]
}

// traceReport is a report with the trace section of `mfcheck trace`.
type traceReport struct {
	jsonReport
	Trace *struct {
		Source string `json:"source"`
		Token  string `json:"token"`
		Hops   []struct {
			Index   int    `json:"index"`
			From    string `json:"from"`
			By      string `json:"by"`
			With    string `json:"with"`
			TLS     bool   `json:"tls"`
			Gateway bool   `json:"gateway"`
		} `json:"hops"`
	} `json:"trace"`
}

// runTrace runs mfcheck trace with NSD as its resolver (DKIM keys, if it
// looks any up, come from the lab's zones, never from off the machine).
func runTrace(t *testing.T, l *mailLab, args ...string) traceReport {
	t.Helper()
	r, _ := runMfcheck(t, append(append([]string{"trace"}, args...), "--resolver", l.nsd, "-o", "json")...)
	validateSchema(t, r.stdout)
	var rep traceReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	require.NotNil(t, rep.Trace, "mfcheck trace %v: no trace section\n%s", args, r.stdout)
	return rep
}

// gatewayHopOf returns the trace hop "by" the gateway.
func gatewayHopOf(t *testing.T, rep traceReport) (by, with string, tls bool) {
	t.Helper()
	for _, h := range rep.Trace.Hops {
		if strings.EqualFold(strings.TrimSuffix(h.By, "."), gatewayHost) {
			return strings.ToLower(h.By), strings.ToUpper(h.With), h.TLS
		}
	}
	t.Fatalf("no hop by %s in the trace: %+v", gatewayHost, rep.Trace.Hops)
	return "", "", false
}

// replyCode is the SMTP reply of a bypass finding: evidence code and
// enhanced_code as the contract names them for send.inbound, else the last
// server reply in its transcript.
func replyCode(t *testing.T, f finding) smtpReply {
	t.Helper()
	var ev struct {
		Code         any      `json:"code"`
		EnhancedCode string   `json:"enhanced_code"`
		Transcript   []string `json:"transcript"`
	}
	evidenceOf(t, f, &ev)
	var rep smtpReply
	switch c := ev.Code.(type) {
	case float64:
		rep.Code = int(c)
	case string:
		rep.Code, _ = strconv.Atoi(c)
	}
	rep.Enhanced = ev.EnhancedCode
	if rep.Code == 0 {
		for _, l := range ev.Transcript {
			if m := transcriptReplyRe.FindStringSubmatch(l); m != nil {
				rep.Code, _ = strconv.Atoi(m[1])
				rep.Enhanced = m[2]
			}
		}
		t.Logf("%s has no evidence code; from its transcript: %d %s", f.ID, rep.Code, rep.Enhanced)
	}
	return rep
}

// TestSendInboundAndTrace is the must-show's first half: mfcheck send
// delivers through the gateway, Postfix confirms the queue ID, the message
// is in the Maildir, mfcheck trace shows the gateway hop with ESMTPS, and a
// swaks message through the same listener shows the same hop.
func TestSendInboundAndTrace(t *testing.T) {
	l := newMailLab(t)
	requireSwaks(t)
	requireSendCommands(t)

	m := l.mark(t)
	r, rep := runMfcheck(t, "send", "--path", "inbound", "--to", probeRcpt, "--from", probeSender, "--server", gatewayHost,
		"--resolver", l.nsd, "--ca-file", l.ca, "-o", "json", "--timeout", "30s")
	validateSchema(t, r.stdout)
	assert.Equal(t, 0, r.code, "an accepted message exits 0; stderr %s", r.stderr)
	f := findingByID(t, rep, "send.inbound")
	require.Equal(t, "pass", f.Status, "%s: %s\n%v", f.ID, f.Message, f.Evidence)
	var ev sendEvidence
	evidenceOf(t, f, &ev)
	require.NotEmpty(t, ev.Token, "send.inbound evidence has no token: %v", f.Evidence)
	require.NotEmpty(t, ev.QueueID, "send.inbound evidence has no queue_id: %v", f.Evidence)
	assert.Equal(t, 250, ev.Code)
	assert.Equal(t, "2.0.0", ev.EnhancedCode)
	assert.NotEmpty(t, ev.Stage)
	assert.NotEmpty(t, ev.TLS, "send.inbound evidence has no tls: %v", f.Evidence)
	require.NotEmpty(t, ev.Transcript)
	transcript := strings.ToUpper(strings.Join(ev.Transcript, "\n"))
	for _, s := range []string{"STARTTLS", "RCPT TO:<" + strings.ToUpper(probeRcpt) + ">", "DATA", "QUEUED AS " + ev.QueueID} {
		assert.Contains(t, transcript, s, "send.inbound transcript")
	}
	// Postfix's own word: that queue ID came in on the gateway listener and
	// was delivered to the Maildir.
	delivered(t, m, "good", ev.QueueID)
	file := l.waitForToken(t, ev.Token)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	hops := receivedHops(t, data)
	require.NotEmpty(t, hops, "%s has no Received header", file)
	assert.Equal(t, hop{By: gatewayHost, With: "ESMTPS"}, hops[0], "the gateway's hop in mfcheck's message %s", file)
	t.Logf("mfcheck send: token %s, queued as %s, delivered to %s", ev.Token, ev.QueueID, file)

	// mfcheck trace finds the message by token, and on the file itself.
	tr := runTrace(t, l, "--maildir", l.maildir, "--token", ev.Token, "--profiles-file", labProfiles, "--profile", labProfileID)
	assert.Equal(t, ev.Token, tr.Trace.Token)
	gw := findingByID(t, tr.jsonReport, "trace.gateway-hop")
	assert.Equal(t, "pass", gw.Status, "trace.gateway-hop: %s", gw.Message)
	tlsHops := findingByID(t, tr.jsonReport, "trace.tls-hops")
	assert.Equal(t, "pass", tlsHops.Status, "trace.tls-hops: %s", tlsHops.Message)
	// Postfix adds no Authentication-Results header: the finding may say
	// so (info/warn) but cannot pass or fail on a header that is not there.
	ar := findingByID(t, tr.jsonReport, "trace.auth-results")
	assert.Contains(t, []string{"info", "warn"}, ar.Status, "trace.auth-results without an Authentication-Results header: %s", ar.Message)
	assert.NotContains(t, string(data), "Authentication-Results:", "the lab adds none; if it does, assert on it")
	by, with, tls := gatewayHopOf(t, tr)
	assert.Equal(t, gatewayHost, by)
	assert.Equal(t, "ESMTPS", with)
	assert.True(t, tls, "the gateway hop says ESMTPS")
	assert.Len(t, tr.Trace.Hops, len(hops), "mfcheck trace and this test read the same Received headers")

	direct := runTrace(t, l, file, "--profiles-file", labProfiles, "--profile", labProfileID)
	assert.Equal(t, "pass", findingByID(t, direct.jsonReport, "trace.tls-hops").Status)
	assert.Equal(t, "pass", findingByID(t, direct.jsonReport, "trace.gateway-hop").Status)
	assert.Equal(t, tr.Trace.Hops, direct.Trace.Hops, "trace --maildir --token and trace FILE read the same hops")

	// The swaks cross-check through the same listener: the same hop.
	token := newToken(t, "swaks")
	m = l.mark(t)
	sw := swaks(t, l, gatewayAddr, "--header", "X-Mfcheck-Token: "+token)
	require.Equal(t, 0, sw.code, sw.out)
	delivered(t, m, "good", swaksQueueID(sw.out))
	swFile := l.waitForToken(t, token)
	swData, err := os.ReadFile(swFile)
	require.NoError(t, err)
	swHops := receivedHops(t, swData)
	require.NotEmpty(t, swHops)
	assert.Equal(t, hops[0], swHops[0], "mfcheck's and swaks's messages arrive through the same hop")
	// swaks's message carries the same X-Mfcheck-Token header, so trace
	// finds it in the Maildir as it finds mfcheck's.
	swTrace := runTrace(t, l, "--maildir", l.maildir, "--token", token, "--profiles-file", labProfiles, "--profile", labProfileID)
	assert.Equal(t, token, swTrace.Trace.Token)
	swBy, swWith, swTLS := gatewayHopOf(t, swTrace)
	assert.Equal(t, []any{by, with, tls}, []any{swBy, swWith, swTLS}, "mfcheck trace: the same gateway hop for both messages")
	assert.Equal(t, "pass", findingByID(t, swTrace.jsonReport, "trace.gateway-hop").Status)
	t.Logf("both messages: by %s with %s (tls %v)", by, with, tls)
	l.queueEmpty(t)
}

// TestTraceBypassedMessage is the gateway hop's negative: a message handed
// straight to the open cloud endpoint (swaks, with DATA: the delivery the
// bypass test warns about) never went through mx-good.tls.test, so trace
// must not say it passed the gateway. Without this, a trace.gateway-hop
// that passes everything would pass the must-show.
func TestTraceBypassedMessage(t *testing.T) {
	l := newMailLab(t)
	requireSwaks(t)
	requireSendCommands(t)
	token := newToken(t, "swaks-bypass")
	m := l.mark(t)
	sw := swaks(t, l, openAddr, "--header", "X-Mfcheck-Token: "+token)
	require.Equal(t, 0, sw.code, sw.out)
	delivered(t, m, "cloud-open", swaksQueueID(sw.out))
	data, err := os.ReadFile(l.waitForToken(t, token))
	require.NoError(t, err)
	hops := receivedHops(t, data)
	require.Len(t, hops, 1)
	assert.Equal(t, hop{By: openHost, With: "ESMTPS"}, hops[0])

	tr := runTrace(t, l, "--maildir", l.maildir, "--token", token, "--profiles-file", labProfiles, "--profile", labProfileID)
	require.Len(t, tr.Trace.Hops, 1)
	h := tr.Trace.Hops[0]
	assert.Equal(t, openHost, h.By)
	assert.True(t, h.TLS)
	assert.False(t, h.Gateway, "the hop by %s is not the gateway %s (the profile names only %s and %s/32)", openHost, gatewayHost, gatewayHost, gatewayAddr)
	gw := findingByID(t, tr.jsonReport, "trace.gateway-hop")
	assert.NotEqual(t, "pass", gw.Status, "trace.gateway-hop on a message that skipped the gateway: %s", gw.Message)
	assert.Equal(t, "pass", findingByID(t, tr.jsonReport, "trace.tls-hops").Status, "the direct hop still used TLS")
}

// TestSendBypass: the bypass test tells the locked endpoint (pass, the same
// 5xx swaks gets) from the open one (fail, exit 1), never sends DATA, and
// leaves nothing in the queue or the Maildir.
func TestSendBypass(t *testing.T) {
	l := newMailLab(t)
	requireSwaks(t)
	requireSendCommands(t)
	before := len(l.messages(t))
	bypass := func(host string) (result, finding) {
		t.Helper()
		r, rep := runMfcheck(t, "send", "--path", "bypass", "--server", host, "--to", probeRcpt, "--from", probeSender,
			"--resolver", l.nsd, "--ca-file", l.ca, "-o", "json", "--timeout", "30s")
		validateSchema(t, r.stdout)
		return r, findingByID(t, rep, "bypass.direct-delivery")
	}

	m := l.mark(t)
	r, f := bypass(lockedHost)
	assert.Equal(t, "pass", f.Status, "%s on %s: %s\n%v", f.ID, lockedHost, f.Message, f.Evidence)
	assert.Equal(t, 0, r.code, r.stderr)
	got := replyCode(t, f)
	assert.Equal(t, 550, got.Code, "bypass.direct-delivery evidence: %v", f.Evidence)
	notQueued(t, m, "cloud-locked")
	assert.True(t, hasLine(smtpdLines(m.since(t), "cloud-locked"), "NOQUEUE: reject: RCPT from", refusalText), "Postfix refused the bypass RCPT")
	sw := swaks(t, l, lockedAddr)
	swRep, ok := swaksReply(sw.out, "RCPT TO")
	require.True(t, ok, sw.out)
	assert.Equal(t, swRep.Code, got.Code, "swaks and mfcheck get the same reply code from %s", lockedHost)
	if got.Enhanced != "" {
		assert.Equal(t, swRep.Enhanced, got.Enhanced, "swaks and mfcheck get the same enhanced code from %s", lockedHost)
	}

	m = l.mark(t)
	r, f = bypass(openHost)
	assert.Equal(t, "fail", f.Status, "%s on %s: %s\n%v", f.ID, openHost, f.Message, f.Evidence)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Equal(t, 250, replyCode(t, f).Code, "bypass.direct-delivery evidence: %v", f.Evidence)
	notQueued(t, m, "cloud-open")
	assert.True(t, hasLine(smtpdLines(m.since(t), "cloud-open"), ": client=localhost[127.0.0.1]"), "cloud-open accepted the RCPT (a queue file was opened)")

	l.queueEmpty(t)
	time.Sleep(time.Second) // a message queued despite all would be delivered by now
	assert.Equal(t, before, len(l.messages(t)), "the bypass test must not deliver anything")
	t.Logf("mfcheck bypass: %s -> pass (%d %s, swaks %d %s), %s -> fail", lockedHost, got.Code, got.Enhanced, swRep.Code, swRep.Enhanced, openHost)
}

// TestSendCheckWithBypass: `mfcheck check --send` sends through the MX in
// preference order (mx-good first) and runs the bypass test at the given
// open endpoint, which fails.
func TestSendCheckWithBypass(t *testing.T) {
	l := newMailLab(t)
	requireSendCommands(t)
	before := len(l.messages(t))
	m := l.mark(t)
	r, rep := runMfcheck(t, "check", "tls.test", "--send", "--to", probeRcpt, "--from", probeSender, "--bypass-host", openHost,
		"--resolver", l.nsd, "--ca-file", l.ca, "-o", "json", "--timeout", "60s")
	validateSchema(t, r.stdout)
	assert.Equal(t, 1, r.code, "the open endpoint (and the broken lab MX) fail; stderr %s", r.stderr)
	in := findingByID(t, rep, "send.inbound")
	require.Equal(t, "pass", in.Status, "%s: %s\n%v", in.ID, in.Message, in.Evidence)
	var ev sendEvidence
	evidenceOf(t, in, &ev)
	require.NotEmpty(t, ev.QueueID)
	delivered(t, m, "good", ev.QueueID) // the first MX by preference
	l.waitForToken(t, ev.Token)
	by := findingByID(t, rep, "bypass.direct-delivery")
	assert.Equal(t, "fail", by.Status, "%s at %s: %s", by.ID, openHost, by.Message)
	notQueued(t, m, "cloud-open")
	l.queueEmpty(t)
	assert.Equal(t, before+1, len(l.messages(t)), "only the inbound message was delivered")
}

// The readers on real swaks 20201014 and Postfix 3.7 output (shortened);
// these run without peers.
func TestSwaksReaders(t *testing.T) {
	const locked = "=== Connected to 127.0.62.20.\n<-  220 cloud-locked.tls.test ESMTP mfcheck-lab Postfix\n -> EHLO vm\n" +
		"<-  250-cloud-locked.tls.test\n<-  250-STARTTLS\n<-  250 CHUNKING\n -> STARTTLS\n<-  220 2.0.0 Ready to start TLS\n" +
		"=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256\n ~> EHLO vm\n<~  250-cloud-locked.tls.test\n<~  250 CHUNKING\n" +
		" ~> MAIL FROM:<sender@tls.test>\n<~  250 2.1.0 Ok\n ~> RCPT TO:<probe@tls.test>\n" +
		"<~* 550 5.7.1 <localhost[127.0.0.1]>: Client host rejected: " + refusalText + "\n ~> QUIT\n<~  221 2.0.0 Bye\n"
	rep, ok := swaksReply(locked, "RCPT TO")
	require.True(t, ok)
	assert.Equal(t, smtpReply{550, "5.7.1", "<localhost[127.0.0.1]>: Client host rejected: " + refusalText}, rep)
	rep, ok = swaksReply(locked, "EHLO")
	require.True(t, ok)
	assert.Equal(t, smtpReply{Code: 250, Text: "CHUNKING"}, rep)
	_, ok = swaksReply(locked, "DATA")
	assert.False(t, ok)
	assert.False(t, swaksSent(locked, "DATA"))
	rep, _ = swaksReply("<** 550 5.7.1 no\n", "RCPT TO")
	assert.Zero(t, rep.Code, "a reply without its command")
	rep, ok = swaksReply(" -> RCPT TO:<a@b>\n<** 554 5.7.1 <a@b>: Relay access denied\n", "RCPT TO")
	require.True(t, ok)
	assert.Equal(t, smtpReply{554, "5.7.1", "<a@b>: Relay access denied"}, rep)
	assert.Equal(t, "64B7B510521", swaksQueueID(" ~> .\n<~  250 2.0.0 Ok: queued as 64B7B510521\n ~> QUIT\n"))
	assert.Empty(t, swaksQueueID(locked))

	const msg = "Return-Path: <sender@tls.test>\r\nDelivered-To: probe@tls.test\r\n" +
		"Received: from vm (localhost [127.0.0.1])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n" +
		"\t key-exchange X25519 server-signature ECDSA (prime256v1) server-digest SHA256)\r\n\t(No client certificate requested)\r\n" +
		"\tby mx-good.tls.test (Postfix) with ESMTPS id 64B7B510521\r\n\tfor <probe@tls.test>; Tue,  1 Dec 2026 09:03:22 +0000 (UTC)\r\n" +
		"Received: from client.example (client.example [192.0.2.1]) by relay.example with SMTP; Tue,  1 Dec 2026 09:03:21 +0000\r\n" +
		"Subject: x\r\n\r\nbody\r\n"
	assert.Equal(t, []hop{{By: "mx-good.tls.test", With: "ESMTPS"}, {By: "relay.example", With: "SMTP"}}, receivedHops(t, []byte(msg)))

	lines := []string{
		"Dec 01 09:04:32 cloud-open postfix/cloud-open/smtpd[13562]: connect from localhost[127.0.0.1]",
		"Dec 01 09:04:32 cloud-open postfix/cloud-open/smtpd[13562]: 19D1151054E: client=localhost[127.0.0.1]",
		"Dec 01 09:04:32 cloud-open postfix/cloud-open/smtpd[13562]: disconnect from localhost[127.0.0.1] ehlo=2 starttls=1 mail=1 rcpt=1 quit=1 commands=6",
		"Dec 01 09:04:32 mx-good postfix/good/smtpd[13540]: 22C1051054E: client=localhost[127.0.0.1]",
	}
	assert.Len(t, smtpdLines(lines, "cloud-open"), 3)
	assert.Equal(t, "19D1151054E", queueIDLine.FindStringSubmatch(lines[1])[1])
	assert.True(t, hasLine(lines, "22C1051054E", "client="))
	assert.False(t, hasLine(lines, "19D1151054E", "message-id="))
}
