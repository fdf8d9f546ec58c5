package dnstest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Zone is the parsed content of one zone file.
type Zone struct {
	// Origin is the zone apex: absolute and lower-case, e.g. "example.com."
	// or "." for the root zone.
	Origin string
	// Records holds every record of the zone in file order, duplicates
	// removed. Exactly one of them is the SOA at the apex.
	Records []dns.RR
}

// ZoneError is the error returned for a zone file that cannot be loaded.
// Line is 1-based; it is the line where the offending record starts.
type ZoneError struct {
	File string
	Line int
	Err  error
}

func (e *ZoneError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ZoneError) Unwrap() error { return e.Err }

// ErrNoSOA and ErrTwoSOA classify the two apex errors; use errors.Is.
var (
	ErrNoSOA  = errors.New("dnstest: no SOA record at the zone apex")
	ErrTwoSOA = errors.New("dnstest: more than one SOA record")
)

// lineCounter hands bytes to the zone parser one at a time and counts the
// newlines it consumed. The miekg parser uses an io.ByteReader as is (it only
// wraps other readers in a bufio.Reader), and it consumes the newline that
// ends a record before returning that record, so the count tells on which
// line each record ends; ParseZone derives the starting line from it.
type lineCounter struct {
	r     *bytes.Reader
	lines int
	last  byte
}

func (c *lineCounter) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.last = b
		if b == '\n' {
			c.lines++
		}
	}
	return b, err
}

func (c *lineCounter) Read(p []byte) (int, error) {
	// Only used if the parser ever stops treating us as a ByteReader.
	n, err := c.r.Read(p)
	if n > 0 {
		c.lines += bytes.Count(p[:n], []byte{'\n'})
		c.last = p[n-1]
	}
	return n, err
}

// endLine is the line on which the last consumed record ended.
func (c *lineCounter) endLine() int {
	if c.last == '\n' {
		return c.lines
	}
	return c.lines + 1
}

var parseErrLine = regexp.MustCompile(`at line: (\d+):\d+$`)

// ParseZone reads one zone in RFC 1035 §5 master file format. origin is the
// zone apex used for relative names and "@"; when empty, the owner of the
// first SOA record becomes the origin (the file must then use absolute names
// until it sets $ORIGIN). filename is only used in error messages.
//
// Like NSD, it refuses a zone without exactly one SOA at its apex
// (RFC 1035 §5.2), records outside the zone, classes other than IN, and a
// CNAME next to other data (RFC 1034 §3.6.2, RFC 2181 §10.1). Errors are
// *ZoneError values naming the file and line. $INCLUDE is not supported.
// It never panics.
func ParseZone(r io.Reader, origin, filename string) (z *Zone, err error) {
	defer func() {
		if p := recover(); p != nil {
			z, err = nil, &ZoneError{File: filename, Line: 0, Err: fmt.Errorf("dnstest: zone parser panicked: %v", p)}
		}
	}()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, &ZoneError{File: filename, Line: 0, Err: err}
	}
	if origin != "" {
		origin = dns.CanonicalName(origin)
		if _, ok := dns.IsDomainName(origin); !ok {
			return nil, &ZoneError{File: filename, Line: 1, Err: fmt.Errorf("dnstest: invalid origin %q", origin)}
		}
	}
	text := strings.Split(string(data), "\n")

	lc := &lineCounter{r: bytes.NewReader(data)}
	zp := dns.NewZoneParser(lc, origin, filename)
	var (
		records  []dns.RR
		lines    []int // line of each record
		derived  = origin == ""
		soaLine  int
		firstRR  int
		prevEnd  int
		seen     = map[string]bool{} // duplicate detection
		cnameAt  = map[string]int{}  // owner -> line of its CNAME
		otherAt  = map[string]int{}  // owner -> line of its first non-CNAME record
		zoneErrf = func(line int, format string, a ...any) error {
			return &ZoneError{File: filename, Line: line, Err: fmt.Errorf(format, a...)}
		}
	)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		end := lc.endLine()
		line := startLine(text, prevEnd+1, end)
		prevEnd = end
		if firstRR == 0 {
			firstRR = line
		}
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		if h.Class != dns.ClassINET {
			return nil, zoneErrf(line, "dnstest: class %s is not supported, only IN", dns.Class(h.Class))
		}
		if h.Rrtype == dns.TypeSOA {
			if origin == "" {
				origin = owner
			}
			if owner != origin {
				return nil, zoneErrf(line, "dnstest: SOA for %s is not at the zone apex %s", h.Name, origin)
			}
			if soaLine != 0 {
				return nil, &ZoneError{File: filename, Line: line, Err: fmt.Errorf("%w at the apex %s (the first is at line %d; RFC 1035 §5.2)", ErrTwoSOA, origin, soaLine)}
			}
			soaLine = line
		}
		if origin != "" && !dns.IsSubDomain(origin, owner) {
			return nil, zoneErrf(line, "dnstest: out of zone data: %s is not in zone %s", h.Name, origin)
		}
		key := rrKey(rr)
		if seen[key] {
			continue // NSD and Knot silently merge identical records
		}
		seen[key] = true
		switch h.Rrtype {
		case dns.TypeCNAME:
			if l, dup := cnameAt[owner]; dup {
				return nil, zoneErrf(line, "dnstest: second CNAME at %s (the first is at line %d; RFC 2181 §10.1)", h.Name, l)
			}
			if l, other := otherAt[owner]; other {
				return nil, zoneErrf(line, "dnstest: CNAME and other data at %s (other data at line %d; RFC 1034 §3.6.2)", h.Name, l)
			}
			cnameAt[owner] = line
		case dns.TypeRRSIG, dns.TypeNSEC:
			// allowed next to a CNAME (RFC 4035 §2.5)
		default:
			if l, c := cnameAt[owner]; c {
				return nil, zoneErrf(line, "dnstest: CNAME and other data at %s (CNAME at line %d; RFC 1034 §3.6.2)", h.Name, l)
			}
			if _, o := otherAt[owner]; !o {
				otherAt[owner] = line
			}
		}
		records = append(records, rr)
		lines = append(lines, line)
	}
	if err := zp.Err(); err != nil {
		return nil, parseError(filename, err)
	}
	if soaLine == 0 {
		if firstRR == 0 {
			firstRR = 1
		}
		name := origin
		if name == "" {
			name = "(unknown origin)"
		}
		return nil, &ZoneError{File: filename, Line: firstRR, Err: fmt.Errorf("%w %s: a zone needs exactly one (RFC 1035 §5.2)", ErrNoSOA, name)}
	}
	if derived {
		// Records before the SOA could not be checked against the origin.
		for i, rr := range records {
			if !dns.IsSubDomain(origin, rr.Header().Name) {
				return nil, zoneErrf(lines[i], "dnstest: out of zone data: %s is not in zone %s", rr.Header().Name, origin)
			}
		}
	}
	return &Zone{Origin: origin, Records: records}, nil
}

// parseError turns a miekg *dns.ParseError, whose line is only inside its
// message, into a *ZoneError.
func parseError(filename string, err error) error {
	msg := err.Error()
	if filename != "" {
		msg = strings.TrimPrefix(msg, filename+": ")
	}
	line := 0
	if m := parseErrLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return &ZoneError{File: filename, Line: line, Err: errors.New(msg)}
}

// startLine finds the line where a record that ended on line end starts:
// the first line after the previous record that holds something other than
// blanks, a comment or an $ORIGIN/$TTL directive.
func startLine(text []string, from, end int) int {
	for i := from; i <= end && i <= len(text); i++ {
		t := strings.TrimSpace(text[i-1])
		if t == "" || t[0] == ';' {
			continue
		}
		if u := strings.ToUpper(t); strings.HasPrefix(u, "$ORIGIN") || strings.HasPrefix(u, "$TTL") {
			continue
		}
		return i
	}
	return end
}

// LoadZoneFile parses the zone file at path. An empty origin is derived from
// the file name the way our zone directories are laid out:
// "example.com.zone" serves "example.com." and "root.zone" serves ".".
func LoadZoneFile(path, origin string) (*Zone, error) {
	if origin == "" {
		var err error
		if origin, err = OriginFromFileName(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	defer f.Close()
	return ParseZone(f, origin, path)
}

// OriginFromFileName derives a zone origin from a "<origin>.zone" file name.
func OriginFromFileName(path string) (string, error) {
	base := filepath.Base(path)
	name, ok := strings.CutSuffix(base, ".zone")
	if !ok || name == "" {
		return "", fmt.Errorf("dnstest: cannot derive a zone origin from file name %q: want <origin>.zone", base)
	}
	if name == "root" {
		return ".", nil
	}
	origin := dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(origin); !ok {
		return "", fmt.Errorf("dnstest: file name %q is not a domain name", base)
	}
	return origin, nil
}

// LoadZoneDir loads every *.zone file directly in dir (not in
// subdirectories), sorted by file name, each with the origin derived from
// its name. A directory without zone files is an error: it is almost always
// a wrong path.
func LoadZoneDir(dir string) ([]*Zone, error) {
	entries, err := os.ReadDir(dir) // sorted by file name
	if err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	var zones []*Zone
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".zone") {
			continue
		}
		z, err := LoadZoneFile(filepath.Join(dir, e.Name()), "")
		if err != nil {
			return nil, err
		}
		zones = append(zones, z)
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("dnstest: no *.zone file in %s", dir)
	}
	return zones, nil
}
