package smtpprobe

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseEHLO: whatever the reply text, parseEHLO keeps a bounded number
// of clean, non-empty extensions and never panics.
func FuzzParseEHLO(f *testing.F) {
	for _, s := range []string{
		"mx.example Hello\nPIPELINING\nSIZE 35882577\nSTARTTLS",
		"", "\n\n\n", "x\n  \nstarttls\n\x00\x1b[31m",
		"mx\n" + strings.Repeat("A\n", 200),
		"\xff\xfe\n\xc3\x28",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		g, ext := parseEHLO(text)
		if len(ext) > maxExtensions {
			t.Fatalf("%d extensions kept", len(ext))
		}
		for _, e := range append([]string{g}, ext...) {
			if strings.ContainsAny(e, "\r\n\x00\x1b") {
				t.Fatalf("control character kept: %q", e)
			}
			if !utf8.ValidString(e) {
				t.Fatalf("invalid UTF-8 kept: %q", e)
			}
			if len(e) > maxLineLen+len("…") {
				t.Fatalf("line of %d bytes kept", len(e))
			}
		}
		for _, e := range ext {
			if e == "" {
				t.Fatal("empty extension kept")
			}
		}
		_ = hasExtension(ext, "STARTTLS")
	})
}

// FuzzReadReply feeds arbitrary server bytes to the reply reader: it must
// end (error or replies), respect the limits and never panic.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"220 mx.example ESMTP\r\n",
		"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
		"250-a\r\nnot a line\r\n25x\r\n250 b\r\n",
		"SSH-2.0-OpenSSH_9.6\r\n", "220", "22", "\r\n", "999 x\r\n", "100 x\r\n",
		"220-" + strings.Repeat("x", 3000) + "\r\n",
		"250-\r\n250-\r\n250\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &session{}
		s.lim = newLimitReader(bytes.NewReader(data))
		s.tp = textproto.NewReader(bufio.NewReader(s.lim))
		for range len(data) + 1 {
			rep, err := s.readReply()
			if err != nil {
				return
			}
			if rep.Code < 200 || rep.Code > 599 {
				t.Fatalf("code %d accepted", rep.Code)
			}
			for _, l := range strings.Split(rep.Text, "\n") {
				if len(l) > maxLineLen+len("…") || strings.ContainsAny(l, "\r\x00") {
					t.Fatalf("bad line kept: %q", l)
				}
			}
		}
		t.Fatal("more replies than bytes")
	})
}
