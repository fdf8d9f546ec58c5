package allowlist_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
)

// parseCase is one input with either the entries it gives, written as
// "line text prefix,prefix", or the error it gives.
type parseCase struct {
	name string
	in   string
	want []string
	// For errors: a part of the reason, the line and the text.
	err     string
	errLine int
	errText string
}

var parseOK = []parseCase{
	{name: "empty input", in: "", want: nil},
	{name: "only comments and blanks", in: "# nothing yet\n\n   \n", want: nil},
	{name: "plain lines, comments, blanks",
		in: "# Mimecast EU\n185.58.85.0/24\n\n185.58.86.0/24 # second block\n  192.0.2.1\n2001:db8::/32\n",
		want: []string{"2 185.58.85.0/24 185.58.85.0/24", "4 185.58.86.0/24 185.58.86.0/24",
			"5 192.0.2.1 192.0.2.1/32", "6 2001:db8::/32 2001:db8::/32"}},
	{name: "Select-Object -ExpandProperty output with CRLF",
		in:   "195.130.217.0/24\r\n91.220.42.0/24\r\n198.51.100.7\r\n",
		want: []string{"1 195.130.217.0/24 195.130.217.0/24", "2 91.220.42.0/24 91.220.42.0/24", "3 198.51.100.7 198.51.100.7/32"}},
	{name: "UTF-8 byte-order mark", in: "\xEF\xBB\xBF192.0.2.1\n", want: []string{"1 192.0.2.1 192.0.2.1/32"}},
	{name: "IPv6 address", in: "2001:db8::25", want: []string{"1 2001:db8::25 2001:db8::25/128"}},
	{name: "comma separated", in: "192.0.2.1,192.0.2.2, 192.0.2.3 ,192.0.2.4",
		want: []string{"1 192.0.2.1 192.0.2.1/32", "1 192.0.2.2 192.0.2.2/32", "1 192.0.2.3 192.0.2.3/32", "1 192.0.2.4 192.0.2.4/32"}},
	{name: "space and tab separated", in: "192.0.2.1 192.0.2.2\t2001:db8::1",
		want: []string{"1 192.0.2.1 192.0.2.1/32", "1 192.0.2.2 192.0.2.2/32", "1 2001:db8::1 2001:db8::1/128"}},
	{name: "quoted, as in a PowerShell command", in: `"185.58.84.0/24","185.58.85.0/24",'192.0.2.9'`,
		want: []string{"1 185.58.84.0/24 185.58.84.0/24", "1 185.58.85.0/24 185.58.85.0/24", "1 192.0.2.9 192.0.2.9/32"}},
	{name: "range becomes its minimal CIDR cover", in: "192.0.2.1-192.0.2.20",
		want: []string{"1 192.0.2.1-192.0.2.20 192.0.2.1/32,192.0.2.2/31,192.0.2.4/30,192.0.2.8/29,192.0.2.16/30,192.0.2.20/32"}},
	{name: "range with blanks around the dash", in: "192.0.2.0 - 192.0.2.255, 198.51.100.5 -198.51.100.5",
		want: []string{"1 192.0.2.0-192.0.2.255 192.0.2.0/24", "1 198.51.100.5-198.51.100.5 198.51.100.5/32"}},
	{name: "IPv6 range", in: "2001:db8::-2001:db8::ff", want: []string{"1 2001:db8::-2001:db8::ff 2001:db8::/120"}},
	{name: "host bits under the mask keep the masked network", in: "192.0.2.77/24\n2001:db8::1/64",
		want: []string{"1 192.0.2.77/24 192.0.2.0/24", "2 2001:db8::1/64 2001:db8::/64"}},
	{name: "wide CIDRs parse (Exchange rules are checked apart)", in: "0.0.0.0/0\n41.74.192.0/22",
		want: []string{"1 0.0.0.0/0 0.0.0.0/0", "2 41.74.192.0/22 41.74.192.0/22"}},
	{name: "Format-List one line", in: "IPAllowList : {192.0.2.0/24, 198.51.100.1}",
		want: []string{"1 192.0.2.0/24 192.0.2.0/24", "1 198.51.100.1 198.51.100.1/32"}},
	{name: "Format-List key is case-insensitive and padded", in: "ipallowlist                 :   {192.0.2.1}",
		want: []string{"1 192.0.2.1 192.0.2.1/32"}},
	{name: "Format-List empty list", in: "IPAllowList : {}\nIPBlockList : {}", want: nil},
	{name: "Format-List wrapped after a comma",
		in: "IPAllowList : {192.0.2.0/24, 198.51.100.1,\n              203.0.113.0/25, 192.0.2.250-192.0.2.251}",
		want: []string{"1 192.0.2.0/24 192.0.2.0/24", "1 198.51.100.1 198.51.100.1/32",
			"2 203.0.113.0/25 203.0.113.0/25", "2 192.0.2.250-192.0.2.251 192.0.2.250/31"}},
	{name: "Format-List wrapped inside an entry",
		in:   "IPAllowList : {192.0.2.0/24, 198.51.1\n              00.1, 203.0.113.0/2\n              5}",
		want: []string{"1 192.0.2.0/24 192.0.2.0/24", "1 198.51.100.1 198.51.100.1/32", "2 203.0.113.0/25 203.0.113.0/25"}},
	{name: "Format-List wrapped before a comma",
		in:   "IPAllowList : {192.0.2.1\n              , 192.0.2.2}",
		want: []string{"1 192.0.2.1 192.0.2.1/32", "2 192.0.2.2 192.0.2.2/32"}},
	{name: "Format-List skips IPBlockList and other properties",
		in: "Name        : Default\nIPBlockList : {203.0.113.0/24, 192.0.2.66}\nIPAllowList : {192.0.2.1}\n" +
			"ObjectClass : {top,\n              msExchHostedContentFilterConfig}\n" +
			"DistinguishedName : CN=Default,CN=Hosted Connection Filter - EU,CN=x\n                    y.com,DC=z: 10.0.0.0/8\n",
		want: []string{"3 192.0.2.1 192.0.2.1/32"}},
	{name: "Format-List truncation in a skipped property is not our concern",
		in:   "IPBlockList : {203.0.113.1, 203.0.113.2, 203.0.113.3, 203.0.113.4...}\nIPAllowList : {192.0.2.1}",
		want: []string{"2 192.0.2.1 192.0.2.1/32"}},
	{name: "Format-List of two policies",
		in:   "Name        : Default\nIPAllowList : {192.0.2.1}\n\nName        : Other\nIPAllowList : {192.0.2.2}\n",
		want: []string{"2 192.0.2.1 192.0.2.1/32", "5 192.0.2.2 192.0.2.2/32"}},
	{name: "Format-List pasted with a margin", in: "    IPAllowList : {192.0.2.1}",
		want: []string{"1 192.0.2.1 192.0.2.1/32"}},
	{name: "Select-Object IPAllowList table",
		in:   "\nIPAllowList\n-----------\n{192.0.2.0/24, 198.51.100.1}\n\n",
		want: []string{"4 192.0.2.0/24 192.0.2.0/24", "4 198.51.100.1 198.51.100.1/32"}},
	{name: "every form mixed",
		in: "# exported 2026-11-23\nIPAllowList : {185.58.85.0/24, 185.58.86.0/24}\n\n185.58.84.93 # US A single\n" +
			"41.74.192.0/22, 41.74.196.0/22 41.74.200.0-41.74.201.255\n\"2001:db8::/48\"\n",
		want: []string{"2 185.58.85.0/24 185.58.85.0/24", "2 185.58.86.0/24 185.58.86.0/24", "4 185.58.84.93 185.58.84.93/32",
			"5 41.74.192.0/22 41.74.192.0/22", "5 41.74.196.0/22 41.74.196.0/22", "5 41.74.200.0-41.74.201.255 41.74.200.0/23",
			"6 2001:db8::/48 2001:db8::/48"}},
}

var parseBad = []parseCase{
	{name: "prefix too long for IPv4", in: "10.0.0.0/33", err: "prefix length /33 is out of range for IPv4 (/0 to /32)", errLine: 1, errText: "10.0.0.0/33"},
	{name: "prefix too long for IPv6", in: "2001:db8::/129", err: "out of range for IPv6 (/0 to /128)", errLine: 1, errText: "2001:db8::/129"},
	{name: "prefix length not a number", in: "192.0.2.0/abc", err: `the prefix length "abc" is not a number`, errLine: 1},
	{name: "prefix length missing", in: "192.0.2.0/", err: `the prefix length "" is not a number`, errLine: 1},
	{name: "range ends before it starts", in: "192.0.2.20-192.0.2.1", err: "the range ends (192.0.2.1) before it starts (192.0.2.20)", errLine: 1, errText: "192.0.2.20-192.0.2.1"},
	{name: "range mixes families", in: "192.0.2.1-2001:db8::1", err: "the range mixes IPv4 and IPv6 addresses", errLine: 1},
	{name: "range without an end", in: "192.0.2.1-", err: "incomplete range", errLine: 1},
	{name: "range of CIDRs", in: "192.0.2.0/24-192.0.3.0/24", err: "a range joins two addresses, not CIDRs", errLine: 1},
	{name: "range with two dashes", in: "192.0.2.1-192.0.2.5-192.0.2.9", err: "a range has one - between two addresses", errLine: 1},
	{name: "range with a bad end", in: "192.0.2.1-192.0.2.300", err: "range end: not a valid IP address", errLine: 1},
	{name: "garbage word", in: "192.0.2.1\n\nhello\n", err: "not an IP address, CIDR or range", errLine: 3, errText: "hello"},
	{name: "octet over 255", in: "256.1.1.1", err: "not a valid IP address", errLine: 1, errText: "256.1.1.1"},
	{name: "leading zero (octal or decimal?)", in: "010.0.0.1", err: "leading zero", errLine: 1},
	{name: "IPv6 zone", in: "fe80::1%eth0", err: "IPv6 zone %eth0", errLine: 1},
	{name: "broken IPv6 is not a property", in: "fe80:", err: "not a valid IP address", errLine: 1, errText: "fe80:"},
	{name: "stray brace", in: "192.0.2.1}", err: "unexpected brace", errLine: 1},
	{name: "nested braces", in: "IPAllowList : {192.0.2.1, {192.0.2.2}}", err: "lists do not nest", errLine: 1},
	{name: "text after the closing brace", in: "IPAllowList : {192.0.2.1} extra", err: "unexpected text after the closing }", errLine: 1, errText: " extra"},
	{name: "never closed before a blank line", in: "IPAllowList : {192.0.2.1,\n\n192.0.2.2", err: "never closed", errLine: 1, errText: "{192.0.2.1,"},
	{name: "never closed before the next property", in: "IPAllowList : {192.0.2.1,\nName : Default", err: "never closed", errLine: 1},
	{name: "never closed at the end", in: "IPAllowList : {192.0.2.1,", err: "never closed", errLine: 1},
	{name: "garbage on a wrapped line", in: "IPAllowList : {192.0.2.1,\n              bogus}", err: "not an IP address", errLine: 2, errText: "bogus"},
	{name: "Format-List without IPAllowList", in: "Name     : Default\nIdentity : Default\n", err: "Format-List output without an IPAllowList property", errLine: 0},
	{name: "NUL bytes", in: "1\x009\x002\x00", err: "NUL bytes", errLine: 0},
	{name: "odd UTF-16", in: "\xFF\xFE1\x00\x00", err: "odd number of bytes", errLine: 0},
	{name: "truncated with ...", in: "IPAllowList : {192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4...}", err: "truncated", errLine: 1, errText: "192.0.2.4..."},
	{name: "truncated with …", in: "IPAllowList : {192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4…}", err: "truncated", errLine: 1},
	{name: "truncated to nothing", in: "IPAllowList : {...}", err: "truncated", errLine: 1, errText: "..."},
	{name: "truncated on a wrapped line", in: "IPAllowList : {192.0.2.1, 192.0.2.2,\n              192.0.2.3, 192.0.2.4...}", err: "truncated", errLine: 2},
	{name: "truncated, Windows-1252 ellipsis", in: "IPAllowList : {192.0.2.1, 192.0.2.4\x85}", err: "truncated", errLine: 1},
	{name: "truncated and never closed", in: "IPAllowList : {192.0.2.1, 192.0.2.4...", err: "truncated", errLine: 1},
	{name: "truncated plain entry", in: "192.0.2.1...", err: "truncated", errLine: 1},
}

func entryStrings(l *allowlist.List) []string {
	var out []string
	for _, e := range l.Entries {
		ps := make([]string, len(e.Prefixes))
		for i, p := range e.Prefixes {
			ps[i] = p.String()
		}
		out = append(out, fmt.Sprintf("%d %s %s", e.Line, e.Text, strings.Join(ps, ",")))
	}
	return out
}

func TestParse(t *testing.T) {
	for _, tc := range parseOK {
		t.Run(tc.name, func(t *testing.T) {
			l, err := allowlist.Parse(strings.NewReader(tc.in), "allow.txt")
			require.NoError(t, err)
			assert.Equal(t, "allow.txt", l.Source)
			assert.Equal(t, tc.want, entryStrings(l))
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range parseBad {
		t.Run(tc.name, func(t *testing.T) {
			l, err := allowlist.Parse(strings.NewReader(tc.in), "allow.txt")
			require.Error(t, err)
			assert.Nil(t, l)
			var pe *allowlist.ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "allow.txt", pe.File)
			assert.Contains(t, pe.Reason, tc.err)
			assert.Equal(t, tc.errLine, pe.Line)
			if tc.errText != "" {
				assert.Equal(t, tc.errText, pe.Text)
			}
			assert.Equal(t, strings.Contains(tc.err, "truncated"), errors.Is(err, allowlist.ErrTruncated))
		})
	}
}

func TestParseErrorTruncatedSaysHowToExport(t *testing.T) {
	_, err := allowlist.Parse(strings.NewReader("IPAllowList : {192.0.2.1, 192.0.2.2...}"), "exo.txt")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Select-Object -ExpandProperty IPAllowList")
	assert.Contains(t, err.Error(), "$FormatEnumerationLimit = -1")
}

func TestParseErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  allowlist.ParseError
		want string
	}{
		{allowlist.ParseError{File: "allow.txt", Line: 3, Text: "10.0.0.0/33", Reason: "bad"}, `allow.txt:3: "10.0.0.0/33": bad`},
		{allowlist.ParseError{File: "allow.txt", Line: 3, Reason: "bad"}, `allow.txt:3: bad`},
		{allowlist.ParseError{File: "allow.txt", Reason: "bad"}, `allow.txt: bad`},
		{allowlist.ParseError{File: "a", Line: 1, Text: "\x1b[31m", Reason: "bad"}, `a:1: "\x1b[31m": bad`},
		{allowlist.ParseError{File: "a", Line: 1, Text: strings.Repeat("x", 200), Reason: "bad"},
			`a:1: "` + strings.Repeat("x", 79) + `…": bad`},
	} {
		assert.Equal(t, tc.want, tc.err.Error())
	}
}

// utf16LE is text as Windows PowerShell's Out-File writes it.
func utf16LE(s string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xFF, 0xFE})
	for _, u := range utf16.Encode([]rune(s)) {
		b.WriteByte(byte(u))
		b.WriteByte(byte(u >> 8))
	}
	return b.Bytes()
}

func utf16BE(s string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xFE, 0xFF})
	for _, u := range utf16.Encode([]rune(s)) {
		b.WriteByte(byte(u >> 8))
		b.WriteByte(byte(u))
	}
	return b.Bytes()
}

var exoExportWant = []string{
	"7 195.130.217.0/24 195.130.217.0/24", "7 91.220.42.0/24 91.220.42.0/24", "7 146.101.78.0/24 146.101.78.0/24",
	"7 207.82.80.0/24 207.82.80.0/24", "7 213.167.81.0/25 213.167.81.0/25",
	"8 193.7.207.0/25 193.7.207.0/25", "8 213.167.75.0/25 213.167.75.0/25", "8 185.58.85.0/24 185.58.85.0/24",
	"8 185.58.86.0/24 185.58.86.0/24", "8 193.7.206.0/25 193.7.206.0/25",
	"9 147.28.36.0/24 147.28.36.0/24", "9 198.51.100.10-198.51.100.20 198.51.100.10/31,198.51.100.12/30,198.51.100.16/30,198.51.100.20/32",
}

func TestParseFileExchangeExport(t *testing.T) {
	l, err := allowlist.ParseFile("testdata/exo-format-list.txt")
	require.NoError(t, err)
	assert.Equal(t, "testdata/exo-format-list.txt", l.Source)
	assert.Equal(t, exoExportWant, entryStrings(l))
	for _, p := range l.Prefixes() {
		assert.False(t, netip.MustParsePrefix("203.0.113.0/24").Overlaps(p), "IPBlockList entry %s read as allowed", p)
	}
}

func TestParseExchangeExportAsWindowsWritesIt(t *testing.T) {
	raw, err := os.ReadFile("testdata/exo-format-list.txt")
	require.NoError(t, err)
	crlf := strings.ReplaceAll(string(raw), "\n", "\r\n")
	for name, data := range map[string][]byte{"UTF-16LE": utf16LE(crlf), "UTF-16BE": utf16BE(crlf), "CRLF": []byte(crlf)} {
		t.Run(name, func(t *testing.T) {
			l, err := allowlist.Parse(bytes.NewReader(data), "exo.txt")
			require.NoError(t, err)
			assert.Equal(t, exoExportWant, entryStrings(l))
		})
	}
}

func TestParseFileTruncatedExport(t *testing.T) {
	_, err := allowlist.ParseFile("testdata/exo-truncated.txt")
	require.Error(t, err)
	assert.ErrorIs(t, err, allowlist.ErrTruncated)
	assert.True(t, strings.HasPrefix(err.Error(), `testdata/exo-truncated.txt:1: "207.82.80.0/24...": the list is truncated`), err.Error())
}

func TestParseFileMissing(t *testing.T) {
	_, err := allowlist.ParseFile("testdata/no-such-file.txt")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := allowlist.Parse(failingReader{}, "allow.txt")
	require.Error(t, err)
	var pe *allowlist.ParseError
	assert.False(t, errors.As(err, &pe), "a read error is not a content error")
	assert.EqualError(t, err, "allow.txt: disk on fire")
}

func TestParseTooLarge(t *testing.T) {
	_, err := allowlist.Parse(bytes.NewReader(make([]byte, allowlist.MaxInputSize+1)), "big.txt")
	var pe *allowlist.ParseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Reason, "larger than 16 MiB")
}

func TestEntryIsRange(t *testing.T) {
	l, err := allowlist.Parse(strings.NewReader("192.0.2.1-192.0.2.9 192.0.2.0/24 192.0.2.1 2001:db8::-2001:db8::1"), "a")
	require.NoError(t, err)
	var got []bool
	for _, e := range l.Entries {
		got = append(got, e.IsRange())
	}
	assert.Equal(t, []bool{true, false, false, true}, got)
}
