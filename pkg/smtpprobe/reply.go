package smtpprobe

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what a server may send. RFC 5321 §4.5.3.1.5 caps a reply line
// at 512 octets; servers exceed it in banners and long EHLO lines, so we
// allow four times that (go-smtp allows 2000 on its server side). A whole
// reply, however many lines, is capped so that a server sending endless
// continuation lines ("250-...") costs bounded memory as well as bounded
// time.
const (
	maxLineLen    = 2048
	maxReplyBytes = 64 << 10
	// maxExtensions bounds what parseEHLO keeps; real servers announce
	// about ten.
	maxExtensions = 64
	// Transcript limits: the excerpt goes into every report, so it stays
	// a few KB however chatty the server.
	maxTranscriptBytes = 4 << 10
	maxTranscriptLine  = 240
)

// Sentinel errors for replies we refuse to read further.
var (
	ErrLineTooLong  = errors.New("smtpprobe: reply line too long")
	ErrReplyTooLong = errors.New("smtpprobe: reply too long")
)

// Reply is one SMTP reply (RFC 5321 §4.2): the code and the text of all its
// lines, joined by "\n", with the code and separator of each line removed.
type Reply struct {
	Code int    `json:"code"`
	Text string `json:"text"`
	// MS is how long the reply took to arrive, from the end of the
	// command (or of the connect, for the greeting).
	MS float64 `json:"ms"`
}

// String renders the reply as the server sent it, lines joined by " / ":
// "250-mx.example Hello / 250 STARTTLS".
func (r *Reply) String() string {
	if r == nil {
		return ""
	}
	lines := strings.Split(r.Text, "\n")
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString(" / ")
		}
		b.WriteString(strconv.Itoa(r.Code))
		if i < len(lines)-1 {
			b.WriteByte('-')
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return printable(b.String(), 512)
}

// limitReader sits between the connection and textproto's bufio.Reader. It
// fails the read as soon as a line exceeds maxLineLen or a reply exceeds
// maxReplyBytes, so neither the buffer nor the time spent can grow with
// what a hostile server sends. Every error is sticky: after one, the
// connection is abandoned.
type limitReader struct {
	r      io.Reader
	budget int // bytes left for the current reply
	line   int // bytes since the last LF
	err    error
}

func newLimitReader(r io.Reader) *limitReader {
	return &limitReader{r: r, budget: maxReplyBytes}
}

// reset starts the budget of a new reply.
func (l *limitReader) reset() { l.budget = maxReplyBytes }

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) > l.budget+1 {
		// Read at most one byte past the budget: enough to know it is
		// exceeded, and nothing is buffered beyond it.
		p = p[:l.budget+1]
	}
	n, err := l.r.Read(p)
	if err != nil {
		// Sticky: bufio.Reader.ReadLine returns a partial line without its
		// error, so readReply asks us whether the stream broke under it.
		l.err = err
	}
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.line = 0
			continue
		}
		l.line++
		if l.line > maxLineLen {
			l.err = ErrLineTooLong
			return i, l.err
		}
	}
	if n > l.budget {
		l.err = ErrReplyTooLong
		return l.budget, l.err
	}
	l.budget -= n
	return n, err
}

// parseEHLO splits the text of a 250 reply to EHLO (RFC 5321 §4.1.1.1):
// the first line is the server's name and greeting, each further line an
// extension keyword with its parameters. Extensions are kept as sent
// ("SIZE 35882577"), trimmed, without empty lines or control characters,
// at most maxExtensions of them.
func parseEHLO(text string) (greeting string, ext []string) {
	lines := strings.Split(text, "\n")
	greeting = printable(strings.TrimSpace(lines[0]), maxLineLen)
	for _, l := range lines[1:] {
		l = printable(strings.TrimSpace(l), maxLineLen)
		if l == "" {
			continue
		}
		if len(ext) == maxExtensions {
			break
		}
		ext = append(ext, l)
	}
	return greeting, ext
}

// hasExtension reports whether keyword is among ext. Keywords are case
// insensitive (RFC 5321 §2.4) and end at the first space.
func hasExtension(ext []string, keyword string) bool {
	for _, e := range ext {
		kw, _, _ := strings.Cut(e, " ")
		if strings.EqualFold(kw, keyword) {
			return true
		}
	}
	return false
}

// printable replaces control characters and invalid UTF-8 by U+FFFD-free
// escapes ("\x1b") and cuts s to max bytes, so server text is safe to show
// in a terminal, a table or a JUnit file.
func printable(s string, max int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size <= 1:
				b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
			case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
				b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
			default:
				b.WriteString(s[i : i+size])
			}
			i += size
		}
		s = b.String()
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// transcript is the excerpt of the session kept in Result.Transcript: "C: "
// lines the client sent, "S: " lines the server sent, "!: " for what went
// wrong. It stops growing at maxTranscriptBytes.
type transcript struct {
	lines []string
	size  int
	full  bool
}

func (t *transcript) add(prefix, line string) {
	if t.full {
		return
	}
	l := prefix + printable(line, maxTranscriptLine)
	if t.size+len(l) > maxTranscriptBytes {
		t.lines = append(t.lines, "!: (transcript truncated)")
		t.full = true
		return
	}
	t.lines = append(t.lines, l)
	t.size += len(l)
}

// reply adds a reply in the form it had on the wire.
func (t *transcript) reply(code int, text string) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		t.add("S: ", strconv.Itoa(code)+sep+l)
	}
}
