package msgtrace

import (
	"context"
	"os"
	"testing"

	"github.com/mfcheck/mfcheck/pkg/profile"
)

func BenchmarkAnalyze(b *testing.B) {
	raw, err := os.ReadFile("testdata/through-gateway.eml")
	if err != nil {
		b.Fatal(err)
	}
	gw, _ := builtinB("mimecast-eu")
	mb, _ := builtinB("microsoft365")
	o := Options{Profile: gw, Mailbox: mb, Now: fixedNow}
	b.ReportAllocs()
	for b.Loop() {
		Analyze(context.Background(), raw, o)
	}
}

func builtinB(id string) (*profile.Profile, error) { return profile.Builtin().Get(id) }
