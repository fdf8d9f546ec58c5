package dnstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startNSD runs the real NSD on loopback, serving zones from dir, and
// returns its address. It skips the test when NSD is not installed (a
// developer laptop) or cannot start here.
func startNSD(t *testing.T, zones map[string]string) string {
	t.Helper()
	bin, err := exec.LookPath("nsd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nsd", "/usr/local/sbin/nsd"} {
			if _, statErr := os.Stat(p); statErr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("nsd not installed: the parity test with NSD needs it (apt-get install nsd)")
	}

	// A port free for both UDP and TCP, released for NSD to take.
	pc, ln, err := listenPair("127.0.0.1", "0")
	require.NoError(t, err)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	ln.Close()

	work := t.TempDir()
	conf := fmt.Sprintf(`server:
  ip-address: 127.0.0.1
  port: %d
  username: ""
  chroot: ""
  pidfile: %q
  database: ""
  zonelistfile: %q
  xfrdfile: %q
  xfrdir: %q
  logfile: %q
  server-count: 1
  verbosity: 1
  hide-version: yes
  refuse-any: no
remote-control:
  control-enable: no
`, port, filepath.Join(work, "nsd.pid"), filepath.Join(work, "zone.list"),
		filepath.Join(work, "xfrd.state"), work, filepath.Join(work, "nsd.log"))
	var first string
	for origin, file := range zones {
		abs, err := filepath.Abs(file)
		require.NoError(t, err)
		conf += fmt.Sprintf("zone:\n  name: %q\n  zonefile: %q\n", origin, abs)
		first = origin
	}
	confPath := filepath.Join(work, "nsd.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))

	cmd := exec.Command(bin, "-d", "-c", confPath)
	out, err := os.Create(filepath.Join(work, "nsd.out"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		// NSD in the foreground stops its children on SIGTERM.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		out.Close()
	})

	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if r, _, err := c.Exchange(query(first, dns.TypeSOA, 0, false), addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(work, "nsd.out"))
	log2, _ := os.ReadFile(filepath.Join(work, "nsd.log"))
	t.Skipf("nsd did not start:\n%s\n%s", log, log2)
	return ""
}

// view is what the parity test compares: the parts of a reply a client
// acts on. Record order inside a section is not significant.
type view struct {
	Rcode      string
	AA, TC     bool
	Answer, Ns []string
	Extra      []string
	OPT        bool
}

func viewOf(r *dns.Msg) view {
	v := view{Rcode: dns.RcodeToString[r.Rcode], AA: r.Authoritative, TC: r.Truncated, OPT: r.IsEdns0() != nil}
	withTTL := func(rrs []dns.RR) []string {
		out := []string{}
		for _, rr := range rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			// NSD compresses against the question, so zone names take
			// the client's case: compare case-insensitively.
			out = append(out, strconv.Itoa(int(rr.Header().Ttl))+" "+strings.ToLower(short(rr)))
		}
		slices.Sort(out)
		return out
	}
	v.Answer, v.Ns, v.Extra = withTTL(r.Answer), withTTL(r.Ns), withTTL(r.Extra)
	return v
}

// parityQuery is one question of the parity test.
type parityQuery struct {
	name  string
	qtype uint16
	edns  uint16
	do    bool
	proto string
}

// compareWithNSD asks NSD and our server the same questions and compares
// the replies.
func compareWithNSD(t *testing.T, nsd string, srv *Server, qs []parityQuery) {
	t.Helper()
	for _, tc := range qs {
		t.Run(fmt.Sprintf("%s/%s/%d/%v/%s", tc.name, dns.TypeToString[tc.qtype], tc.edns, tc.do, tc.proto), func(t *testing.T) {
			c := &dns.Client{Net: tc.proto, Timeout: 3 * time.Second}
			m := query(tc.name, tc.qtype, tc.edns, tc.do)
			want, _, err := c.Exchange(m, nsd)
			require.NoError(t, err)
			got, _, err := c.Exchange(m, srv.Addr())
			require.NoError(t, err)
			assert.Equal(t, viewOf(want), viewOf(got))
			if want.IsEdns0() != nil && got.IsEdns0() != nil {
				assert.Equal(t, want.IsEdns0().Do(), got.IsEdns0().Do(), "DO echo")
				assert.Equal(t, want.IsEdns0().UDPSize(), got.IsEdns0().UDPSize(), "advertised size")
			}
		})
	}
}

// TestNSDParity asks NSD and our server the same questions about the same
// zone files and compares the replies: it is what keeps "answers like NSD"
// true. It runs wherever NSD is installed and skips elsewhere.
func TestNSDParity(t *testing.T) {
	t.Run("example.test and other.test", func(t *testing.T) {
		nsd := startNSD(t, map[string]string{
			"example.test.": "testdata/example.test.zone",
			"other.test.":   "testdata/other.test.zone",
		})
		srv := startTestdata(t)
		var qs []parityQuery
		names := []string{"example.test.", "www.example.test.", "WWW.Example.Test.", "nope.example.test.", "x.www.example.test.",
			"ent.example.test.", "host.ent.example.test.", "alias.example.test.", "alias2.example.test.", "cross.example.test.",
			"crossnx.example.test.", "dangle.example.test.", "outside.example.test.", "loop1.example.test.", "sub.example.test.",
			"www.sub.example.test.", "ns.sub.example.test.", "foo.wild.example.test.", "a.b.wild.example.test.",
			"exact.wild.example.test.", "wild.example.test.", "*.wild.example.test.", "_dmarc.example.test.",
			"other.test.", "back.other.test.", "mail2.other.test.", "www.example.org.", "test.", ".",
			"towild.example.test.", "todeleg.example.test.", "x.wc.example.test.", "_submission._tcp.example.test.",
			"_tcp.example.test.", "x.sub.example.test.", "Sub.Example.Test."}
		for _, n := range names {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeCNAME, dns.TypeDS, dns.TypeANY} {
				qs = append(qs, parityQuery{name: n, qtype: qt, proto: "udp"})
			}
			qs = append(qs, parityQuery{name: n, qtype: dns.TypeA, edns: 1232, do: true, proto: "tcp"})
		}
		qs = append(qs, parityQuery{name: "_submission._tcp.example.test.", qtype: dns.TypeSRV, proto: "udp"})
		for _, n := range []string{"big.example.test.", "medium.example.test.", "fit1.example.test.", "fit2.example.test.", "example.test.", "www.example.test."} {
			for _, edns := range []uint16{0, 100, 512, 1232, 4096} {
				for _, proto := range []string{"udp", "tcp"} {
					for _, qt := range []uint16{dns.TypeTXT, dns.TypeANY} {
						qs = append(qs, parityQuery{name: n, qtype: qt, edns: edns, do: edns == 4096, proto: proto})
					}
				}
			}
		}
		compareWithNSD(t, nsd, srv, qs)
	})

	t.Run("parent and child", func(t *testing.T) {
		nsd := startNSD(t, map[string]string{
			"example.test.":     "testdata/example.test.zone",
			"sub.example.test.": "testdata/child/sub.example.test.zone",
		})
		child, err := LoadZoneFile("testdata/child/sub.example.test.zone", "")
		require.NoError(t, err)
		srv := startTestdata(t, child)
		var qs []parityQuery
		for _, n := range []string{"sub.example.test.", "www.sub.example.test.", "ns.sub.example.test.", "nope.sub.example.test.", "todeleg.example.test."} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeNS, dns.TypeSOA, dns.TypeDS, dns.TypeANY} {
				qs = append(qs, parityQuery{name: n, qtype: qt, proto: "udp"})
			}
		}
		compareWithNSD(t, nsd, srv, qs)
	})

	t.Run("with a root zone", func(t *testing.T) {
		nsd := startNSD(t, map[string]string{
			".":             "testdata/root/root.zone",
			"example.test.": "testdata/example.test.zone",
		})
		root, err := LoadZoneFile("testdata/root/root.zone", "")
		require.NoError(t, err)
		example, err := LoadZoneFile("testdata/example.test.zone", "")
		require.NoError(t, err)
		srv := MustStart(t, root, example)
		var qs []parityQuery
		for _, n := range []string{".", "test.", "a.root.test.", "www.elsewhere.invalid.", "outside.example.test.", "cross.example.test.", "www.example.test."} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeNS, dns.TypeSOA, dns.TypeDS} {
				qs = append(qs, parityQuery{name: n, qtype: qt, proto: "udp"})
			}
		}
		compareWithNSD(t, nsd, srv, qs)
	})
}

// TestNSDParityOdd compares the rcode of odd queries.
func TestNSDParityOdd(t *testing.T) {
	nsd := startNSD(t, map[string]string{"example.test.": "testdata/example.test.zone"})
	srv := startTestdata(t)
	tests := []struct {
		name  string
		build func() *dns.Msg
	}{
		{"UPDATE", func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Opcode = dns.OpcodeUpdate
			return m
		}},
		{"NOTIFY", func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Opcode = dns.OpcodeNotify
			return m
		}},
		{"STATUS", func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Opcode = dns.OpcodeStatus
			return m
		}},
		{"two questions", func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Question = append(m.Question, m.Question[0])
			return m
		}},
		{"no question", func() *dns.Msg { m := query("example.test.", dns.TypeSOA, 0, false); m.Question = nil; return m }},
		{"BADVERS", func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 1232, false)
			m.IsEdns0().SetVersion(1)
			return m
		}},
		{"two OPT", func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 1232, false)
			m.Extra = append(m.Extra, dns.Copy(m.Extra[0]))
			return m
		}},
		{"CHAOS", func() *dns.Msg {
			m := query("version.bind.", dns.TypeTXT, 0, false)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}},
		{"class ANY", func() *dns.Msg {
			m := query("www.example.test.", dns.TypeA, 0, false)
			m.Question[0].Qclass = dns.ClassANY
			return m
		}},
		{"AXFR", func() *dns.Msg { return query("example.test.", dns.TypeAXFR, 0, false) }},
		{"IXFR", func() *dns.Msg { return query("example.test.", dns.TypeIXFR, 0, false) }},
		{"RD", func() *dns.Msg {
			m := query("www.example.test.", dns.TypeA, 0, false)
			m.RecursionDesired = true
			return m
		}},
		{"CD", func() *dns.Msg {
			m := query("www.example.test.", dns.TypeA, 0, false)
			m.CheckingDisabled = true
			return m
		}},
	}
	for _, tc := range tests {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
				want, _, werr := c.Exchange(tc.build(), nsd)
				got, _, gerr := c.Exchange(tc.build(), srv.Addr())
				if tc.name == "no question" && proto == "tcp" {
					// NSD resets the connection; we answer FORMERR.
					require.NoError(t, gerr)
					assert.Equal(t, dns.RcodeFormatError, got.Rcode)
					return
				}
				if werr != nil || gerr != nil {
					assert.Equal(t, werr != nil, gerr != nil, "nsd: %v, ours: %v", werr, gerr)
					return
				}
				assert.Equal(t, dns.RcodeToString[want.Rcode], dns.RcodeToString[got.Rcode])
				assert.Equal(t, want.Opcode, got.Opcode, "opcode")
				assert.Equal(t, len(want.Question), len(got.Question), "question")
				assert.Equal(t, want.Authoritative, got.Authoritative, "AA")
				assert.Equal(t, want.RecursionDesired, got.RecursionDesired, "RD")
				assert.Equal(t, want.CheckingDisabled, got.CheckingDisabled, "CD")
				assert.Equal(t, want.IsEdns0() != nil, got.IsEdns0() != nil, "OPT")
				assert.Equal(t, viewOf(want), viewOf(got))
			})
		}
	}
}
