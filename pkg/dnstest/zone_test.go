package dnstest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadZoneDir(t *testing.T) {
	zones, err := LoadZoneDir("testdata")
	require.NoError(t, err)
	require.Len(t, zones, 2, "only *.zone files directly in the directory")
	assert.Equal(t, "example.test.", zones[0].Origin)
	assert.Equal(t, "other.test.", zones[1].Origin)

	_, err = LoadZoneDir(t.TempDir())
	assert.ErrorContains(t, err, "no *.zone file")
	_, err = LoadZoneDir(filepath.Join(t.TempDir(), "missing"))
	assert.Error(t, err)
}

func TestLongTXTLoads(t *testing.T) {
	z, err := LoadZoneFile("testdata/example.test.zone", "")
	require.NoError(t, err)
	var big *dns.TXT
	for _, rr := range z.Records {
		if txt, ok := rr.(*dns.TXT); ok && txt.Hdr.Name == "big.example.test." {
			big = txt
		}
	}
	require.NotNil(t, big)
	require.Len(t, big.Txt, 6)
	for _, s := range big.Txt {
		assert.Len(t, s, 250)
	}
}

func TestOriginFromFileName(t *testing.T) {
	tests := []struct {
		path, origin string
		err          bool
	}{
		{path: "example.com.zone", origin: "example.com."},
		{path: "testdata/zones/Example.COM.zone", origin: "example.com."},
		{path: "root.zone", origin: "."},
		{path: "test.zone", origin: "test."},
		{path: "example.com", err: true},
		{path: ".zone", err: true},
		{path: "a..b.zone", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := OriginFromFileName(tc.path)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.origin, got)
		})
	}
}

func TestBadZoneFiles(t *testing.T) {
	tests := []struct {
		file   string
		line   int
		is     error
		reason string
	}{
		{file: "testdata/bad/nosoa.zone", line: 3, is: ErrNoSOA, reason: "no SOA"},
		// The second SOA starts on line 5 and continues on line 6.
		{file: "testdata/bad/twosoa.zone", line: 5, is: ErrTwoSOA, reason: "the first is at line 2"},
		{file: "testdata/bad/garbage.zone", line: 3, reason: "bad A"},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			_, err := LoadZoneFile(tc.file, "example.test.")
			require.Error(t, err)
			var ze *ZoneError
			require.ErrorAs(t, err, &ze)
			assert.Equal(t, tc.file, ze.File)
			assert.Equal(t, tc.line, ze.Line)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.Contains(t, err.Error(), tc.reason)
			assert.True(t, strings.HasPrefix(err.Error(), tc.file+":"), err.Error())
		})
	}
}

func TestParseZone(t *testing.T) {
	const soa = "@ SOA ns hostmaster 1 7200 3600 1209600 300\n"
	tests := []struct {
		name    string
		origin  string
		text    string
		records int    // when no error
		origOut string // expected Origin
		line    int    // of the error; 0 = no error
		reason  string
	}{
		{name: "minimal", origin: "example.test", text: "$TTL 60\n" + soa, records: 1, origOut: "example.test."},
		{name: "origin upper-case", origin: "EXAMPLE.Test.", text: "$TTL 60\n" + soa, records: 1, origOut: "example.test."},
		{name: "origin from the SOA", text: "example.test. 60 SOA ns.example.test. hm.example.test. 1 2 3 4 5\nwww.example.test. 60 A 127.0.1.10\n", records: 2, origOut: "example.test."},
		{name: "duplicates merged", origin: "example.test.", text: "$TTL 60\n" + soa + "www A 127.0.1.10\nWWW A 127.0.1.10\n", records: 2, origOut: "example.test."},
		{name: "empty", origin: "example.test.", text: "", line: 1, reason: "no SOA"},
		{name: "only comments", origin: "example.test.", text: "; nothing\n\n", line: 1, reason: "no SOA"},
		{name: "SOA below the apex", origin: "example.test.", text: "$TTL 60\nwww SOA ns hm 1 2 3 4 5\n", line: 2, reason: "not at the zone apex"},
		{name: "out of zone", origin: "example.test.", text: "$TTL 60\n" + soa + "\nwww.example.org. A 127.0.1.10\n", line: 4, reason: "out of zone"},
		{name: "out of zone before the SOA, origin derived", text: "www.example.org. 60 A 127.0.1.10\nexample.test. 60 SOA ns.example.test. hm.example.test. 1 2 3 4 5\n", line: 1, reason: "out of zone"},
		{name: "class CH", origin: "example.test.", text: "$TTL 60\n" + soa + "www CH TXT \"x\"\n", line: 3, reason: "only IN"},
		{name: "CNAME and other data", origin: "example.test.", text: "$TTL 60\n" + soa + "www A 127.0.1.10\n; comment\nwww CNAME other\n", line: 5, reason: "CNAME and other data"},
		{name: "other data after CNAME", origin: "example.test.", text: "$TTL 60\n" + soa + "www CNAME other\nwww TXT \"x\"\n", line: 4, reason: "CNAME and other data"},
		{name: "two CNAMEs", origin: "example.test.", text: "$TTL 60\n" + soa + "www CNAME a\nwww CNAME b\n", line: 4, reason: "second CNAME"},
		{name: "CNAME at apex", origin: "example.test.", text: "$TTL 60\n" + soa + "@ CNAME other\n", line: 3, reason: "CNAME and other data"},
		{name: "garbage", origin: "example.test.", text: "$TTL 60\n" + soa + "www A\n\n$$$ %%% ((\n", line: 3, reason: "dns:"},
		{name: "unknown type", origin: "example.test.", text: "$TTL 60\n" + soa + "www BOGUS 1\n", line: 3, reason: "dns:"},
		{name: "unbalanced parenthesis", origin: "example.test.", text: "$TTL 60\n@ SOA ns hm ( 1 2 3 4 5\n", reason: "dns:"},
		{name: "include refused", origin: "example.test.", text: "$INCLUDE /etc/passwd\n", line: 1, reason: "dns:"},
		{name: "bad origin", origin: "a..b", text: soa, line: 1, reason: "invalid origin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ParseZone(strings.NewReader(tc.text), tc.origin, "t.zone")
			if tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.origOut, z.Origin)
				assert.Len(t, z.Records, tc.records)
				return
			}
			require.Error(t, err)
			assert.Nil(t, z)
			assert.Contains(t, err.Error(), tc.reason)
			var ze *ZoneError
			require.True(t, errors.As(err, &ze))
			assert.Equal(t, "t.zone", ze.File)
			if tc.line != 0 {
				assert.Equal(t, tc.line, ze.Line, err.Error())
			}
		})
	}
}

func TestLoadZoneFileMissing(t *testing.T) {
	_, err := LoadZoneFile(filepath.Join(t.TempDir(), "none.test.zone"), "")
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = LoadZoneFile("testdata/root/root.zone", "other.")
	assert.Error(t, err, "explicit origin that does not match the SOA")
}
