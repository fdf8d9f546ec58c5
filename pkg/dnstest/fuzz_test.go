package dnstest

import (
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzZone parses arbitrary zone text and, when it parses, serves queries
// for the names in it through ServeDNS, over a fake UDP and TCP writer. No
// input may panic, and every query must get a reply that packs.
func FuzzZone(f *testing.F) {
	for _, name := range []string{"testdata/example.test.zone", "testdata/other.test.zone", "testdata/bad/twosoa.zone"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 127.0.1.1\n")
	f.Add("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n*.w CNAME x.w\nx.w CNAME *.w\n")
	f.Add("$TTL 60\n@ SOA ns hm 1 2 3 4 5\nd NS ns.d\nns.d A 127.0.1.1\n*.d TXT \"x\"\n")
	f.Add("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n$GENERATE 1-20 h$ CNAME h${1,0,d}\n")
	f.Add("$ORIGIN .\n$TTL 60\n. SOA a. b. 1 2 3 4 5\n* A 127.0.1.1\n")

	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeNS, dns.TypeCNAME, dns.TypeDS, dns.TypeSOA, dns.TypeANY}
	f.Fuzz(func(t *testing.T, text string) {
		z, err := ParseZone(strings.NewReader(text), "example.test.", "fuzz.zone")
		if err != nil {
			if z != nil {
				t.Fatalf("zone and error both returned")
			}
			return
		}
		s, err := NewServer(z)
		if err != nil {
			t.Fatalf("ParseZone accepted a zone NewServer refuses: %v", err)
		}
		// A few names: the first owners, a child of each, and one absent.
		names := []string{"absent." + z.Origin}
		for _, rr := range z.Records {
			if len(names) > 8 {
				break
			}
			names = append(names, rr.Header().Name, "x."+rr.Header().Name)
		}
		for i, name := range names {
			for j, qt := range qtypes {
				proto := []string{"udp", "tcp"}[(i+j)%2]
				q := new(dns.Msg)
				q.SetQuestion(name, qt)
				if j%3 == 0 {
					q.SetEdns0(1232, j%2 == 0)
				}
				w := &fakeWriter{proto: proto}
				s.ServeDNS(w, q)
				if len(w.msgs) != 1 {
					if _, ok := dns.IsDomainName(name); ok && len(name) < 250 {
						t.Fatalf("%s %s: %d replies", name, dns.TypeToString[qt], len(w.msgs))
					}
					continue // the name itself cannot be packed
				}
				r := w.msgs[0]
				if r.Id != q.Id || len(r.Question) != 1 {
					t.Fatalf("%s %s: bad reply header %v", name, dns.TypeToString[qt], r)
				}
				if proto == "udp" && len(w.wire[0]) > 1232 {
					t.Fatalf("%s %s: %d octets over UDP", name, dns.TypeToString[qt], len(w.wire[0]))
				}
			}
		}
	})
}

// FuzzServeDNS feeds arbitrary wire messages to the handler, the way the
// server hands it whatever miekg could unpack.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []*dns.Msg{
		query("www.example.test.", dns.TypeA, 0, false),
		query("alias2.example.test.", dns.TypeA, 1232, true),
		query("www.sub.example.test.", dns.TypeAAAA, 4096, false),
		query("big.example.test.", dns.TypeTXT, 512, false),
	} {
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	zones, err := LoadZoneDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	s, err := NewServer(zones...)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		q := new(dns.Msg)
		if q.Unpack(wire) != nil {
			return
		}
		proto := "udp"
		if tcp {
			proto = "tcp"
		}
		w := &fakeWriter{proto: proto}
		s.ServeDNS(w, q)
		if len(w.msgs) > 1 {
			t.Fatalf("%d replies", len(w.msgs))
		}
	})
}
