// Package lab is the simulated world behind `mfcheck demo` and the end-to-end
// tests: a customer domain in Exchange hybrid mode that has moved its MX
// behind a gateway, the gateway's zone and the cloud mailbox platform's zone,
// all served by in-process authoritative DNS servers on loopback, and the
// gateway's and the platform's SMTP hosts (go-smtp servers with STARTTLS and
// certificates from a lab CA minted at start). Some
// problems are built in on purpose, so the report has something to find.
//
// The zones use the gateway's and platform's real host names (mimecast.com,
// outlook.com); that is safe because every address in them is on loopback
// and only the lab's own servers answer for them.
package lab

import (
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
)

//go:embed zones
var zoneFS embed.FS

// The simulated scenario.
const (
	// ExternalDomain is a mailbox outside the customer, where the demo's
	// outbound test message goes (the lab's smart hosts accept it; nothing
	// leaves the process).
	ExternalDomain = "fabrikam.example"
	// OutboundSmartHost is the gateway smart host the demo's outbound test
	// message goes through (the Exchange Online connector's target).
	OutboundSmartHost = "eu-smtp-o365-outbound-1.mimecast.com"
	Domain            = "contoso.example"
	Profile           = "mimecast-eu"
	Mode              = "smoke"
)

// Addresses of the two authoritative servers of the customer zone. They match
// the NS glue in zones/contoso.example.zone.
const (
	ns1Addr = "127.0.54.1"
	ns2Addr = "127.0.54.2"
)

// World is a running simulation.
type World struct {
	// Resolver is the DNS server (host:port) the checks should ask; it is
	// authoritative for every zone of the simulation.
	Resolver string
	// NSPort is the port on which the customer zone's authoritative servers
	// listen (the lab cannot use port 53).
	NSPort int
	// DNS gives tests access to the servers' query logs and fault injection:
	// DNS[0] is ns1 (every zone), DNS[1] is ns2 (the stale customer zone).
	DNS []*dnstest.Server

	// SMTPPort is the port every lab SMTP host listens on (0 when the world
	// has none, as with StartDir); Roots verifies their certificates.
	SMTPPort int
	Roots    *x509.CertPool
	// HTTPSPort is the port of the MTA-STS policy host.
	HTTPSPort int
	mail      *mailWorld
}

// Start loads the embedded zones and starts the demo world on loopback.
func Start() (*World, error) {
	primary, err := loadZones(zoneFS, "zones")
	if err != nil {
		return nil, err
	}
	secondary, err := loadZones(zoneFS, "zones/ns2")
	if err != nil {
		return nil, err
	}
	w, err := Serve(primary, secondary, ns1Addr, ns2Addr)
	if err != nil {
		return nil, err
	}
	mail, port, err := startMail()
	if err != nil {
		w.Close()
		return nil, err
	}
	w.mail, w.SMTPPort, w.Roots, w.HTTPSPort = mail, port, mail.roots(), mail.httpsPort
	return w, nil
}

// StartDir serves the zone files of dir (primary server at addr1) and of
// dir/ns2 (second server at addr2), the layout of testdata/zones.
func StartDir(dir, addr1, addr2 string) (*World, error) {
	primary, err := loadZones(os.DirFS(dir), ".")
	if err != nil {
		return nil, err
	}
	secondary, err := loadZones(os.DirFS(dir), "ns2")
	if err != nil {
		return nil, err
	}
	return Serve(primary, secondary, addr1, addr2)
}

// Serve starts two authoritative servers on the same port: addr1 serves the
// primary zones (and is the resolver the checks ask), addr2 the secondary
// copies. Both must share a port because NS records carry none.
func Serve(primary, secondary []*dnstest.Zone, addr1, addr2 string) (*World, error) {
	var lastErr error
	// The port the OS picks for addr1 may be taken on addr2; try a few.
	for attempt := 0; attempt < 10; attempt++ {
		ns1, err := dnstest.NewServer(primary...)
		if err != nil {
			return nil, err
		}
		if err := ns1.Start(net.JoinHostPort(addr1, "0")); err != nil {
			return nil, fmt.Errorf("lab: starting a DNS server on %s: %w", addr1, err)
		}
		_, portStr, _ := net.SplitHostPort(ns1.Addr())
		ns2, err := dnstest.NewServer(secondary...)
		if err != nil {
			ns1.Close()
			return nil, err
		}
		if err := ns2.Start(net.JoinHostPort(addr2, portStr)); err != nil {
			ns1.Close()
			lastErr = err
			continue
		}
		port, _ := strconv.Atoi(portStr)
		return &World{Resolver: ns1.Addr(), NSPort: port, DNS: []*dnstest.Server{ns1, ns2}}, nil
	}
	return nil, fmt.Errorf("lab: could not start a DNS server on %s next to %s: %w", addr2, addr1, lastErr)
}

// Close stops every server of the world.
func (w *World) Close() {
	for _, s := range w.DNS {
		s.Close()
	}
	if w.mail != nil {
		w.mail.close()
	}
}

// Messages returns the messages the lab's SMTP hosts have accepted so far.
func (w *World) Messages() []Message {
	if w.mail == nil {
		return nil
	}
	w.mail.mu.Lock()
	defer w.mail.mu.Unlock()
	return append([]Message(nil), w.mail.messages...)
}

// Notes describe the simulation for the report header.
func Notes() []string {
	return []string{
		"Simulated world: contoso.example (Exchange hybrid + Microsoft 365) has just moved its MX to Mimecast EU.",
		"Every host is on loopback and answered by mfcheck's own in-process DNS and SMTP servers; no real domain is contacted.",
	}
}

func loadZones(fsys fs.FS, dir string) ([]*dnstest.Zone, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".zone") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var zones []*dnstest.Zone
	for _, n := range names {
		origin, err := dnstest.OriginFromFileName(n)
		if err != nil {
			return nil, err
		}
		f, err := fsys.Open(path.Join(dir, n))
		if err != nil {
			return nil, err
		}
		z, err := dnstest.ParseZone(f, origin, path.Join(dir, n))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		zones = append(zones, z)
	}
	return zones, nil
}
