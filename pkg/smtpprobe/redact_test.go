package smtpprobe

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactor(t *testing.T) {
	const user, pass = "sender@contoso.test", "correct horse battery"
	r := newRedactor(&Auth{Username: user, Password: pass})
	b64 := base64.StdEncoding.EncodeToString
	for _, s := range []string{
		pass,
		"x" + pass + "y",
		b64([]byte(pass)),
		b64([]byte("\x00" + user + "\x00" + pass)),
		// The password inside someone else's base64 blob, at each of the
		// three alignments.
		b64([]byte("a" + pass + "zz")),
		b64([]byte("ab" + pass + "z")),
		b64([]byte("abc" + pass)),
	} {
		out := r.scrub("S: 535 " + s)
		assert.Contains(t, out, redacted, s)
		assert.NotContains(t, out, pass)
		assert.NotContains(t, out, b64([]byte(pass))[:len(b64([]byte(pass)))-4], "no long run of the password's base64 survives")
	}
	assert.Equal(t, "250 ok", r.scrub("250 ok"))
	assert.Equal(t, "x", newRedactor(nil).scrub("x"))
}

func TestRecorderRedactsAuth(t *testing.T) {
	rec := newRecorder(newRedactor(&Auth{Username: "u", Password: "hunter2-long"}))
	feed := func(d int, s string) { rec.write(d, []byte(s)) }
	feed(dirServer, "220 hi\r\n")
	feed(dirClient, "EHLO me\r\n")
	feed(dirServer, "250-hi\r\n250 AUTH PLAIN LOGIN\r\n")
	feed(dirClient, "AUTH PLAIN AHUAaHVudGVyMi1sb25n\r\n")
	feed(dirServer, "535 5.7.8 no\r\n")
	feed(dirClient, "AUTH LOGIN\r\n")
	feed(dirServer, "334 VXNlcm5hbWU6\r\n")
	feed(dirClient, "dQ==\r\n")
	feed(dirServer, "334 UGFzc3dvcmQ6\r\n")
	feed(dirClient, "aHVudGVyMi1sb25n\r\n")
	feed(dirServer, "235 ok\r\n")
	feed(dirClient, "MAIL FROM:<a@b.test>\r\n")
	feed(dirServer, "250 o")
	feed(dirServer, "k\r\n") // a reply split over two reads
	lines := rec.lines()
	assert.Equal(t, []string{
		"S: 220 hi", "C: EHLO me", "S: 250-hi", "S: 250 AUTH PLAIN LOGIN",
		"C: AUTH PLAIN ****", "S: 535 5.7.8 no",
		"C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: ****", "S: 334 UGFzc3dvcmQ6", "C: ****", "S: 235 ok",
		"C: MAIL FROM:<a@b.test>", "S: 250 ok",
	}, lines)
	assert.NotContains(t, strings.Join(lines, "\n"), "hunter2")
	w := rec.state()
	assert.True(t, w.ehloOK)
	assert.True(t, hasExtension(w.ehloExt, "AUTH"))
	assert.Equal(t, 250, w.lastCode)
}

func TestRecorderBodyAndLimits(t *testing.T) {
	rec := newRecorder(nil)
	rec.write(dirClient, []byte("DATA\r\n"))
	rec.write(dirServer, []byte("354 go\r\n"))
	rec.write(dirClient, []byte("Subject: secret-ish\r\n\r\n..dot-stuffed\r\n.\r\n"))
	rec.write(dirServer, []byte("250 2.0.0 Ok: queued as X1\r\n"))
	rec.write(dirServer, []byte(strings.Repeat("x", 3*maxLineLen)+"\r\n"))
	lines := rec.lines()
	assert.Contains(t, lines, "C: (38 bytes of message)")
	assert.Contains(t, lines, "C: .")
	assert.NotContains(t, strings.Join(lines, "\n"), "secret-ish", "the message body is not kept")
	assert.True(t, rec.state().dotSent)
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	assert.LessOrEqual(t, total, maxTranscriptBytes+100, "the transcript stays capped")
}

// FuzzRecorder: whatever crosses the wire, in whatever pieces, the
// recorder does not panic and the password never reaches the transcript.
func FuzzRecorder(f *testing.F) {
	f.Add([]byte("220 hi\r\n"), []byte("AUTH PLAIN AHUAcGFzc3dvcmQtMTIz\r\n"), uint8(3))
	f.Add([]byte("250-x\r\n250 AUTH\r\n535 password-123\r\n"), []byte("cGFzc3dvcmQtMTIz\r\n"), uint8(1))
	f.Add([]byte("354 go\r\n"), []byte("DATA\r\n.\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, server, client []byte, cut uint8) {
		const pass = "password-123"
		rec := newRecorder(newRedactor(&Auth{Username: "u", Password: pass}))
		n := int(cut%16) + 1
		for len(server) > 0 || len(client) > 0 {
			c := min(n, len(client))
			rec.write(dirClient, client[:c])
			client = client[c:]
			s := min(n, len(server))
			rec.write(dirServer, server[:s])
			server = server[s:]
		}
		for _, l := range rec.lines() {
			if strings.Contains(l, pass) {
				t.Fatalf("password in %q", l)
			}
		}
	})
}
