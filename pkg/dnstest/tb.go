package dnstest

import (
	"strings"
)

// TB is the part of testing.TB the helpers below need. It keeps this
// package free of an import of "testing", which would otherwise register
// test flags in the demo binary.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// MustStart starts a server for zones on 127.0.0.1 with a free port and
// closes it when the test ends. It fails the test on any error.
func MustStart(tb TB, zones ...*Zone) *Server {
	tb.Helper()
	s, err := NewServer(zones...)
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
		return nil
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		tb.Fatalf("dnstest: %v", err)
		return nil
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// MustLoadZoneDir is LoadZoneDir failing the test on error.
func MustLoadZoneDir(tb TB, dir string) []*Zone {
	tb.Helper()
	zones, err := LoadZoneDir(dir)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return zones
}

// MustParseZone parses zone text given inline in a test, failing the test
// on error. origin may be empty, see ParseZone.
func MustParseZone(tb TB, origin, text string) *Zone {
	tb.Helper()
	z, err := ParseZone(strings.NewReader(text), origin, "inline:"+origin)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return z
}
