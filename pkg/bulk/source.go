package bulk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Entry is one selected line of the input: not blank, not a comment.
type Entry struct {
	// Line is the 1-based line number in the input.
	Line int
	// Index is the 0-based position among the non-blank, non-comment
	// lines: what --shard counts, so a shard keeps the same lines however
	// the comments around them change.
	Index int
	// Text is the line without surrounding space and without a trailing
	// comment. It need not be a valid domain name: Run reports it if not.
	Text string
}

// DomainSource yields the input's entries in order; Next returns io.EOF
// after the last one.
type DomainSource interface {
	Next() (Entry, error)
}

// maxLine is the most of one line that is kept. A domain name has at most
// 253 characters; a longer line is reported as not a domain name, with its
// first maxLine bytes, instead of stopping the run (bufio.Scanner would).
const maxLine = 1024

// Lines reads one domain per line from r, streaming: only the current line
// is held. Blank lines and comments are skipped: a line whose first
// non-space character is '#', and the rest of a line from a '#' that
// follows a space or tab ("contoso.com  # prod"). A UTF-8 byte order mark
// and CRLF line ends are accepted.
func Lines(r io.Reader) DomainSource {
	return &lineSource{r: bufio.NewReaderSize(r, 4096)}
}

type lineSource struct {
	r           *bufio.Reader
	line, index int
	err         error
}

func (s *lineSource) Next() (Entry, error) {
	for s.err == nil {
		raw, err := s.readLine()
		if err != nil {
			s.err = err
			if raw == nil {
				break
			}
		}
		s.line++
		if s.line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\uFEFF"))
		}
		text := clean(string(raw))
		if text == "" {
			continue
		}
		e := Entry{Line: s.line, Index: s.index, Text: text}
		s.index++
		return e, nil
	}
	return Entry{}, s.err
}

// readLine returns the next line without its end, keeping at most maxLine
// bytes of it. At the end of the input it returns the last, unterminated
// line with io.EOF, or nil and io.EOF.
func (s *lineSource) readLine() ([]byte, error) {
	var out []byte
	read := 0
	for {
		chunk, err := s.r.ReadSlice('\n')
		read += len(chunk)
		if keep := maxLine - len(out); keep > 0 {
			out = append(out, chunk[:min(len(chunk), keep)]...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			if read == 0 {
				return nil, err
			}
			return out, err
		}
		return out, nil
	}
}

func clean(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "#") {
		return ""
	}
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		if j := strings.Index(s[i:], "#"); j >= 0 && strings.TrimSpace(s[i:i+j]) == "" {
			s = s[:i]
		}
	}
	return strings.TrimSpace(s)
}

// Shard selects every Count-th entry starting at Index (0-based): entry k
// is kept when k mod Count == Index. The zero value keeps everything. The
// split depends only on the entries' order, so n jobs given i/n for i in
// 0..n-1 and the same list check each line exactly once.
type Shard struct {
	Index, Count int
}

// ParseShard parses "i/n" with 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("--shard %q: want i/n with 0 <= i < n, e.g. 0/4", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// Keeps reports whether the entry with the given Index belongs to the shard.
func (s Shard) Keeps(index int) bool {
	return s.Count <= 1 || index%s.Count == s.Index
}

func (s Shard) String() string {
	if s.Count <= 1 {
		return "0/1"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}
