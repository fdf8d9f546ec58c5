package allowlist_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, fail only
// with a *ParseError, and every prefix it returns must be valid and masked.
// The list then goes through the Exchange review and the check, which must
// not panic either and must return a well-formed finding.
func FuzzParse(f *testing.F) {
	for _, tc := range append(append([]parseCase{}, parseOK...), parseBad...) {
		f.Add([]byte(tc.in))
	}
	for _, name := range []string{"testdata/exo-format-list.txt", "testdata/exo-truncated.txt"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(utf16LE(string(b)))
	}
	gw := gateway(f, mimecastEU...)
	gw.Ranges = append(gw.Ranges, prefixes(f, "41.74.192.0/22", "2a01:111:f400::/48")...)

	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := allowlist.Parse(bytes.NewReader(data), "fuzz.txt")
		if err != nil {
			var pe *allowlist.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *ParseError: %v", err, err)
			}
			if pe.Line < 0 || pe.Reason == "" {
				t.Fatalf("bad ParseError %#v", pe)
			}
			_ = pe.Error()
			return
		}
		prev := 0
		for _, e := range l.Entries {
			if e.Line < 1 || e.Line < prev || e.Text == "" || len(e.Prefixes) == 0 {
				t.Fatalf("bad entry %#v", e)
			}
			prev = e.Line
			for _, p := range e.Prefixes {
				if !p.IsValid() || p != p.Masked() {
					t.Fatalf("entry %q: prefix %v is not valid and masked", e.Text, p)
				}
			}
		}
		review := allowlist.ReviewForExchange(l)
		if review.Entries != len(l.Entries) || review.ExchangeEntries < 0 {
			t.Fatalf("bad review %+v", review)
		}
		fd := allowlist.Check(l, gw)
		r := report.New("fuzz.example", "health")
		r.Add(fd)
		if err := r.Validate(); err != nil || fd.Status == report.StatusError {
			t.Fatalf("finding %+v: %v", fd, err)
		}
	})
}
