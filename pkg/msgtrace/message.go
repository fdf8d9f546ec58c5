package msgtrace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/textproto"
	"strings"
)

// Bounds on what a message may make us read or keep. A message is data from
// anyone on the internet, so every one of them is a hard limit.
const (
	// MaxHeaderBytes bounds the header section. RFC 5322 §2.1.1 limits
	// lines to 998 characters but not their number; real header sections
	// are a few KiB, tens of KiB after many hops and ARC sets.
	MaxHeaderBytes = 1 << 20
	// MaxHeaderFields bounds the number of header fields.
	MaxHeaderFields = 1000
	// MaxMessageBytes bounds the message Analyze verifies DKIM over and
	// FindInMaildir reads (10 MiB, the size most gateways accept by default
	// is in that range; bigger files are not test messages).
	MaxMessageBytes = 10 << 20
)

// Sentinel error classes of Parse; errors wrap one of them with %w.
var (
	// ErrNotMessage: the input does not start with a header section.
	ErrNotMessage = errors.New("msgtrace: not an email message")
	// ErrTooLarge: the input exceeds one of the bounds above.
	ErrTooLarge = errors.New("msgtrace: message too large")
)

// Field is one header field, in the order of the message, its value
// unfolded (RFC 5322 §2.2.3: CRLF before white space removed).
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Message is a parsed header section and the unread body.
type Message struct {
	// Fields are the header fields in message order (topmost first, so the
	// most recently added Received comes first).
	Fields []Field
	// Header is the same fields keyed by canonical name, for net/mail's
	// helpers (Date, AddressList); values of one name keep their order.
	Header mail.Header
	// Offset is where the header section starts in the input: past an mbox
	// "From " separator line, if there was one.
	Offset int
	// HeaderSize is the size of the header section in bytes, blank line
	// included.
	HeaderSize int
	// Body is the rest of the input.
	Body io.Reader
}

// Get returns the first value of the named field ("" when absent).
func (m *Message) Get(name string) string { return m.Header.Get(name) }

// Values returns every value of the named field, topmost first.
func (m *Message) Values(name string) []string {
	return m.Header[textproto.CanonicalMIMEHeaderKey(name)]
}

// Parse reads a message's header section (RFC 5322 §2.2) and leaves the body
// unread in Message.Body. It reads at most MaxHeaderBytes and
// MaxHeaderFields. A leading mbox "From " line is skipped, since exported
// mailboxes often carry one. Header fields are split and unfolded here
// rather than by net/textproto, which rejects a whole message for one bad
// byte in one value: a trace must still show the other headers.
func Parse(r io.Reader) (*Message, error) {
	lr := &io.LimitedReader{R: r, N: MaxHeaderBytes + 1}
	br := bufio.NewReaderSize(lr, 32<<10)
	m := &Message{Header: mail.Header{}}
	var (
		cur     *strings.Builder
		curName string
		lineNo  int
		size    int
		ended   bool
	)
	flush := func() {
		if cur == nil {
			return
		}
		v := strings.TrimSpace(cur.String())
		m.Fields = append(m.Fields, Field{Name: curName, Value: v})
		key := textproto.CanonicalMIMEHeaderKey(curName)
		m.Header[key] = append(m.Header[key], v)
		cur = nil
	}
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			lineNo++
			if lineNo == 1 && strings.HasPrefix(line, "From ") {
				m.Offset = len(line) // mbox separator, not part of the message
			} else {
				size += len(line)
				if size > MaxHeaderBytes {
					return nil, fmt.Errorf("%w: the header section is larger than %d bytes", ErrTooLarge, MaxHeaderBytes)
				}
				body := strings.TrimRight(line, "\r\n")
				switch {
				case body == "":
					ended = true
				case body[0] == ' ' || body[0] == '\t':
					if cur == nil {
						return nil, fmt.Errorf("%w: line %d is a continuation line with no header field before it", ErrNotMessage, lineNo)
					}
					// Unfolding removes the line break only; the white
					// space that follows it stays (RFC 5322 §2.2.3).
					cur.WriteString(body)
				default:
					name, value, ok := strings.Cut(body, ":")
					name = strings.TrimRight(name, " \t") // obs-optional (RFC 5322 §4.5)
					if !ok || !validFieldName(name) {
						return nil, fmt.Errorf("%w: line %d is not a header field (%q)", ErrNotMessage, lineNo, abbreviate(body, 40))
					}
					flush()
					if len(m.Fields) >= MaxHeaderFields {
						return nil, fmt.Errorf("%w: more than %d header fields", ErrTooLarge, MaxHeaderFields)
					}
					cur, curName = &strings.Builder{}, name
					cur.WriteString(value)
				}
			}
		}
		if ended {
			break
		}
		if err == io.EOF {
			if lr.N <= 0 {
				return nil, fmt.Errorf("%w: the header section is larger than %d bytes", ErrTooLarge, MaxHeaderBytes)
			}
			break // a message with no body: legal (RFC 5322 §3.5)
		}
		if err != nil {
			return nil, fmt.Errorf("msgtrace: reading the message: %w", err)
		}
	}
	flush()
	if len(m.Fields) == 0 {
		return nil, fmt.Errorf("%w: no header fields", ErrNotMessage)
	}
	m.HeaderSize = size
	// The body is what bufio already holds plus the rest of r: the limit
	// applied to the header section only.
	buffered, _ := br.Peek(br.Buffered())
	m.Body = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), r)
	return m, nil
}

// validFieldName is RFC 5322 §3.6.8: printable US-ASCII except ':'.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// abbreviate shortens s for a message; evidence keeps more.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the text stays valid UTF-8.
	i := n
	for i > 0 && i < len(s) && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}
