package msgtrace

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeMsg(t *testing.T, path, headers string, mod time.Time) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(headers+"\n\nbody\n"), 0o644))
	require.NoError(t, os.Chtimes(path, mod, mod))
}

func TestFindInMaildir(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, sub := range []string{"new", "cur", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, sub), 0o755))
	}
	writeMsg(t, filepath.Join(dir, "cur", "1764579600.M1P1.host:2,S"), "From: a@x\nSubject: old run\nX-Mfcheck-Token: mfc-abc", base)
	writeMsg(t, filepath.Join(dir, "new", "1764579700.M2P1.host"), "From: a@x\nSubject: unrelated", base.Add(time.Minute))
	writeMsg(t, filepath.Join(dir, "new", "1764579800.M3P1.host"), "From: a@x\nSubject: new run\nX-Mfcheck-Token: mfc-abc", base.Add(2*time.Minute))
	writeMsg(t, filepath.Join(dir, "new", "1764579900.M4P1.host"), "From: a@x\nSubject: token in subject mfc-subj", base.Add(3*time.Minute))
	writeMsg(t, filepath.Join(dir, "cur", "1764580000.M5P1.host:2,"), "From: a@x\nMessage-ID: <mfc-mid.1@x>", base.Add(4*time.Minute))
	// A delivery in progress, which must not be read.
	writeMsg(t, filepath.Join(dir, "tmp", "1764590000.M9P1.host"), "From: a@x\nX-Mfcheck-Token: mfc-tmp", base.Add(time.Hour))
	// Garbage and an oversized file, both newer than everything.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "new", "1764590001.garbage"), []byte("\x00\x01\x02 not mail\n"), 0o644))
	big := bytes.Repeat([]byte("x"), MaxMessageBytes+1)
	copy(big, "X-Mfcheck-Token: mfc-abc\n\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "new", "1764590002.big"), big, 0o644))
	// An unreadable file (permissions do not stop root, so only where they bite).
	unreadable := filepath.Join(dir, "cur", "1764590003.unreadable")
	writeMsg(t, unreadable, "X-Mfcheck-Token: mfc-abc", base.Add(2*time.Hour))
	require.NoError(t, os.Chmod(unreadable, 0))
	if f, err := os.Open(unreadable); err == nil {
		f.Close()
		require.NoError(t, os.Remove(unreadable)) // running as root: drop it
	}

	p, err := FindInMaildir(dir, "mfc-abc")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "new", "1764579800.M3P1.host"), p, "newest match, the old run's message is older")

	p, err = FindInMaildir(dir, "mfc-subj")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(p, "M4P1.host"))

	p, err = FindInMaildir(dir, "mfc-mid.1")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(p, "M5P1.host:2,"))

	_, err = FindInMaildir(dir, "mfc-tmp")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNotFound))
	assert.Contains(t, err.Error(), "1 larger than 10 MiB")
	assert.Contains(t, err.Error(), "1 not a message")

	_, err = FindInMaildir(dir, " ")
	assert.ErrorContains(t, err, "empty token")
	_, err = FindInMaildir(filepath.Join(dir, "missing"), "x")
	assert.Error(t, err)
	assert.False(t, errors.Is(err, ErrNotFound), "a missing directory is not 'not found'")
}

func TestFindInMaildirFlatDir(t *testing.T) {
	dir := t.TempDir()
	writeMsg(t, filepath.Join(dir, "a.eml"), "X-Mfcheck-Token: mfc-flat", time.Now())
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(dir, "a.eml"), filepath.Join(dir, "link.eml")))
	p, err := FindInMaildir(dir, "mfc-flat")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "a.eml"), p, "symlinks are not followed")
}

func TestParseBounds(t *testing.T) {
	_, err := Parse(strings.NewReader(strings.Repeat("X-A: b\n", MaxHeaderFields+1) + "\nbody"))
	assert.ErrorIs(t, err, ErrTooLarge)

	_, err = Parse(strings.NewReader("X-A: " + strings.Repeat("b", MaxHeaderBytes) + "\n\nbody"))
	assert.ErrorIs(t, err, ErrTooLarge)

	_, err = Parse(strings.NewReader(" leading continuation\n\n"))
	assert.ErrorIs(t, err, ErrNotMessage)
	_, err = Parse(strings.NewReader(""))
	assert.ErrorIs(t, err, ErrNotMessage)

	// mbox separator, folding, a field without a body, the body left unread.
	m, err := Parse(strings.NewReader("From bob@x Tue Dec  1 09:00:00 2026\nSubject: a\n  b\nX-Empty:\nReceived: one\nReceived: two\n\nthe body\n"))
	require.NoError(t, err)
	assert.Equal(t, len("From bob@x Tue Dec  1 09:00:00 2026\n"), m.Offset)
	assert.Equal(t, "a  b", m.Get("Subject"))
	assert.Equal(t, []string{"one", "two"}, m.Values("received"))
	assert.Equal(t, []Field{{"Subject", "a  b"}, {"X-Empty", ""}, {"Received", "one"}, {"Received", "two"}}, m.Fields)
	var body bytes.Buffer
	_, err = body.ReadFrom(m.Body)
	require.NoError(t, err)
	assert.Equal(t, "the body\n", body.String())

	// A large body after a small header is not limited by Parse.
	m, err = Parse(strings.NewReader("A: b\n\n" + strings.Repeat("y", MaxHeaderBytes*2)))
	require.NoError(t, err)
	body.Reset()
	_, err = body.ReadFrom(m.Body)
	require.NoError(t, err)
	assert.Equal(t, MaxHeaderBytes*2, body.Len())
}
