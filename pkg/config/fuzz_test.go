package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mfcheck/mfcheck/pkg/config"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// FuzzParse: no input panics, every error line names the file (and is one
// line: errors.Join separates errors with newlines, so a line that does not
// start with the file name would be a message that broke in two), and what
// parses holds only valid values.
func FuzzParse(f *testing.F) {
	p, err := profile.Builtin().Get("mimecast-eu")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(full))
	f.Add(config.Starter("contoso.com", p))
	f.Add([]byte(doc("suppress:", "  - {id: spf.ptr, subject: \"contoso*\", reason: r, expires: 2027-01-31}")))
	f.Add([]byte(doc("send: {to: [postmaster@contoso.com], outbound_server: \"[::1]:25\", outbound_to: [a@b.example]}")))
	f.Add([]byte("version: 1\ndefaults: &d {mode: smoke}\ndomains: [*d]\n"))
	f.Add([]byte("version: 1\ndomains:\n  - domain: contoso.com\n    \"domain\": x\n---\n"))
	f.Add([]byte("{version: 1, domains: [{domain: \"a\\nb.example\"}]}"))
	f.Add([]byte("version: 1\ndomains:\n\t- domain: x\n"))
	const path = "fuzz/mfcheck.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := config.Parse(data, path, nil)
		if err != nil {
			if file != nil {
				t.Fatal("a file and an error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) > 26 {
				t.Fatalf("%d error lines", len(lines))
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, path+":") {
					t.Fatalf("error line without the file name: %q", l)
				}
			}
			return
		}
		if len(file.Domains) == 0 {
			t.Fatal("no domains and no error")
		}
		seen := map[string]bool{}
		for _, d := range file.Domains {
			if _, err := resolver.ValidateHostname(d.Name); err != nil || seen[d.Name] {
				t.Fatalf("domain %q: %v (seen %v)", d.Name, err, seen[d.Name])
			}
			seen[d.Name] = true
			for _, r := range d.SendingRanges {
				if r.Masked() != r {
					t.Fatalf("range %v has host bits", r)
				}
			}
			for _, s := range d.Suppress {
				if s.Reason == "" || s.Expires.IsZero() || s.ID == "" {
					t.Fatalf("incomplete suppression %+v", s)
				}
			}
			rep := report.New(d.Name, "health")
			rep.Add(report.Finding{ID: "spf.ptr", Status: report.StatusWarn, Subject: d.Name})
			d.ApplySuppressions(rep, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), path)
			if err := rep.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
