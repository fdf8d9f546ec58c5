package msgtrace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNotFound: no message in the Maildir carries the token.
var ErrNotFound = errors.New("msgtrace: no message with the token")

// maxMaildirFiles bounds the files FindInMaildir looks at, newest first.
const maxMaildirFiles = 10000

// FindInMaildir returns the path of the newest message in a Maildir whose
// X-Mfcheck-Token field is token, or whose Subject or Message-ID contains
// it. It looks in dir/new and dir/cur (the Maildir layout: new for
// unread, cur for seen; tmp holds deliveries in progress and is skipped),
// or in dir itself when it has neither. Only regular files are read, and
// only their header sections; files over MaxMessageBytes, files that are
// not messages and files that cannot be read are skipped. The error wraps
// ErrNotFound when nothing matched, and says how many files were skipped.
func FindInMaildir(dir, token string) (string, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return "", errors.New("msgtrace: empty token")
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("msgtrace: maildir: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("msgtrace: maildir %s is not a directory", dir)
	}
	var dirs []string
	for _, sub := range []string{"new", "cur"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
			dirs = append(dirs, filepath.Join(dir, sub))
		}
	}
	if len(dirs) == 0 {
		dirs = []string{dir}
	}

	type candidate struct {
		path string
		mod  time.Time
	}
	var files []candidate
	skipped := map[string]int{}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return "", fmt.Errorf("msgtrace: maildir: %w", err)
		}
		for _, e := range entries {
			// Symlinks and directories are not deliveries; dot files are
			// editors' and tools' leftovers.
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				skipped["unreadable"]++
				continue
			}
			if info.Size() > MaxMessageBytes {
				skipped["larger than 10 MiB"]++
				continue
			}
			files = append(files, candidate{filepath.Join(d, e.Name()), info.ModTime()})
		}
	}
	// Newest first: a re-run of a test finds its own message, not the one
	// an earlier run left. Maildir names start with the delivery time, so
	// they break ties in the same order.
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.After(files[j].mod)
		}
		return filepath.Base(files[i].path) > filepath.Base(files[j].path)
	})
	if len(files) > maxMaildirFiles {
		skipped[fmt.Sprintf("beyond the newest %d", maxMaildirFiles)] += len(files) - maxMaildirFiles
		files = files[:maxMaildirFiles]
	}
	for _, c := range files {
		ok, why := fileHasToken(c.path, token)
		if ok {
			return c.path, nil
		}
		if why != "" {
			skipped[why]++
		}
	}
	msg := fmt.Sprintf("%q in %d files of %s", token, len(files), strings.Join(dirs, ", "))
	if len(skipped) > 0 {
		var parts []string
		for why, n := range skipped {
			parts = append(parts, fmt.Sprintf("%d %s", n, why))
		}
		sort.Strings(parts)
		msg += " (skipped: " + strings.Join(parts, ", ") + ")"
	}
	return "", fmt.Errorf("%w: %s", ErrNotFound, msg)
}

// fileHasToken reads one file's header section and reports whether it
// carries token; why is set when the file could not be read as a message.
func fileHasToken(path, token string) (ok bool, why string) {
	f, err := os.Open(path)
	if err != nil {
		return false, "unreadable"
	}
	defer f.Close()
	m, err := Parse(io.LimitReader(f, MaxMessageBytes))
	if err != nil {
		return false, "not a message"
	}
	if strings.TrimSpace(m.Get(TokenHeader)) == token {
		return true, ""
	}
	return strings.Contains(m.Get("Subject"), token) || strings.Contains(m.Get("Message-Id"), token), ""
}
