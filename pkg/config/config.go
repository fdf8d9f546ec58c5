// Package config reads mfcheck.yaml, the file that lists the domains a
// nightly health job (or a readiness and smoke run) checks, with what each
// domain needs: the gateway profile, the mode, senders that must pass SPF,
// the allow list, smart hosts, DKIM selectors, test messages, thresholds, and
// the findings accepted for now (suppressions, each with a reason and an
// expiry).
//
// The file is read with yaml.v3's Node API rather than into structs, for the
// same reasons as pkg/profile: every value keeps its line, so every error
// reads "FILE:LINE: KEY: what is wrong", an unknown key is an error with a
// "did you mean" (a misspelt key silently ignored would leave a check
// unconfigured), and a key given twice is caught (yaml.v3 only checks that
// when decoding into Go values).
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mfcheck/mfcheck/pkg/profile"
)

// Version is the only format version this mfcheck reads.
const Version = 1

// maxFileSize bounds Load and Parse: a config for thousands of domains is a
// few hundred kilobytes, and a mistaken path (a log, a disk image) should
// fail fast instead of being read.
const maxFileSize = 1 << 20

// maxNodes bounds the YAML values of one file. Aliases are refused outright
// (see Parse), so the tree is no larger than the text; this only keeps a
// file of a million one-character list items from costing more than an
// honest one.
const maxNodes = 200_000

// maxErrors bounds the errors reported for one file, so the first, most
// useful ones are not buried.
const maxErrors = 25

// Modes a domain can be checked in (the same words as pkg/mx and --mode).
const (
	ModeReadiness = "readiness"
	ModeSmoke     = "smoke"
	ModeHealth    = "health"
)

// File is a parsed, validated mfcheck.yaml.
type File struct {
	// Path is the file as given to Load or Parse; errors and suppression
	// sources ("mfcheck.yaml:42") use it.
	Path    string
	Domains []Domain
}

// Domain is one entry of domains:, with the defaults merged in (the
// domain's own value wins; thresholds field by field).
type Domain struct {
	// Name is the canonical domain name, lower case, no trailing dot.
	Name string
	// Profile is the id of a profile of the registry given to Load, or ""
	// (none set, here or in defaults).
	Profile string
	// Mode is readiness, smoke or health, or "" when neither the domain nor
	// defaults set it (the command line's --mode applies).
	Mode string
	// Line is where the domain's entry starts.
	Line int

	// SendingIPs must pass SPF (check.SPFConfig.IPs), as Sender with HELO
	// Helo; SendingRanges must pass as a whole (check.SPFConfig.Ranges).
	SendingIPs    []netip.Addr
	SendingRanges []netip.Prefix
	Sender, Helo  string
	// Allowlist is the connection-filter allow list file, resolved against
	// the config file's directory (so it is absolute, or relative to the
	// working directory like Path); it existed when the file was parsed.
	Allowlist string
	// SmartHosts are host or host:port, host names canonical (lower case,
	// no trailing dot).
	SmartHosts    []string
	DKIMSelectors []string
	// Send is the test-message block; nil when absent (nothing is sent).
	Send       *Send
	Thresholds Thresholds
	Suppress   []Suppression
}

// Send says which test messages to send for a domain. Addresses are bare
// (local@domain); servers are host or host:port.
type Send struct {
	To             []string
	From           string
	OutboundServer string
	OutboundTo     []string
	BypassHost     string
	// Maildir is where the inbound test message lands, for the trace (smoke
	// mode); resolved against the config file's directory like Allowlist,
	// but it need not exist yet.
	Maildir string
}

// Thresholds tune when findings warn and when the run fails. A zero field is
// not set: the program's default (or the command line) applies.
type Thresholds struct {
	CertExpiryWarnDays int
	MXTTLMaxSeconds    int
	// FailOn is info, warn or fail, or "".
	FailOn string
}

// Suppression accepts findings for now: every finding with ID (and, when
// Subject is set, a matching subject) until the end of Expires (UTC).
type Suppression struct {
	ID string
	// Subject is "" (any subject), an exact subject, or a prefix followed
	// by "*" ("eu-smtp-inbound-*"); both compared without regard to case.
	Subject string
	Reason  string
	// Expires is midnight UTC at the start of the last day it applies.
	Expires time.Time
	// Line is where the entry starts; the source of a suppressed finding
	// is "path:line".
	Line int
}

// Error is one problem in a config file. Parse and Load return these (several
// joined with errors.Join, one per line), so a user sees every mistake of a
// file at once; errors.As finds the first.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem is about the whole file
	// Key is the path of the value, "domains[0].sending_ranges[1]", or "".
	Key string
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	// One error, one line: messages quote user values with %q, but a YAML
	// parser message could still carry a newline.
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(b.String())
}

// errTooMany ends an error list that would bury the first errors.
var errTooMany = errors.New("too many errors; fix these first")

// Load reads and validates the config file at path. profiles is the registry
// profile ids are looked up in (the built-in one plus --profiles-file); nil
// means profile.Builtin(). A missing file gives the *fs.PathError as is
// ("open mfcheck.yaml: no such file or directory").
func Load(path string, profiles *profile.Registry) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(data, path, profiles)
}

// Parse validates config data; path names it in errors and is the directory
// relative allowlist and maildir paths are resolved against. See Load for
// profiles.
func Parse(data []byte, path string, profiles *profile.Registry) (*File, error) {
	if len(data) > maxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is larger than %d bytes (1 MiB); is this an mfcheck config file?", maxFileSize)}
	}
	if profiles == nil {
		profiles = profile.Builtin()
	}
	p := &parser{path: path, profiles: profiles}
	f := p.file(data)
	if len(p.errs) > 0 {
		// In file order, the order a reader fixes them in (the walk
		// checks keys in schema order, not as written).
		errs := slices.Clone(p.errs)
		slices.SortStableFunc(errs, func(a, b error) int {
			return cmp.Compare(a.(*Error).Line, b.(*Error).Line)
		})
		if len(errs) > maxErrors {
			errs = append(errs[:maxErrors:maxErrors], &Error{File: path, Msg: errTooMany.Error()})
		}
		return nil, errors.Join(errs...)
	}
	return f, nil
}
