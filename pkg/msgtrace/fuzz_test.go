package msgtrace

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

var receivedSeeds = []string{
	"from mail.fabrikam.example (mail.fabrikam.example [203.0.113.25]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) by mx1.contoso.example (Postfix) with ESMTPS id 4Abc for <a@b>; Tue,  1 Dec 2026 09:00:00 +0000 (UTC)",
	"from eu-smtp-delivery-1.mimecast.com (185.58.86.151) by AM6EUR05FT012.mail.protection.outlook.com (10.233.240.104) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8093.13 via Frontend Transport; Tue, 1 Dec 2026 09:00:04 +0000",
	"from mail.fabrikam.example ([203.0.113.25] helo=smtp.fabrikam.example) by mx.contoso.example with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) id 1t8 for a@b; Tue, 01 Dec 2026 09:00:00 +0000",
	"from unknown (HELO x) (203.0.113.25) by y with SMTP; 1 Dec 2026 09:00:00 -0000",
	"by 2002:a05:6a20::1 with SMTP id ld15; Tue, 1 Dec 2026 01:00:01 -0800 (PST)",
	"from a (b [IPv6:2001:db8::1] (may be forged)) by c with ESMTP; Tue Dec  1 09:00:00 2026",
	"from a (((( by b; x", "((\\)) ; ;;", "<unclosed [also \"quoted ; string", "",
}

func FuzzParseReceived(f *testing.F) {
	for _, s := range receivedSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParseReceived(in)
		if (err == nil) != (h.ParseError == "") || err != nil && err.Error() != h.ParseError {
			t.Fatalf("error %v and ParseError %q disagree", err, h.ParseError)
		}
		if len(h.Raw) > 2048+len("…") {
			t.Fatalf("raw not bounded: %d", len(h.Raw))
		}
		if utf8.ValidString(in) && !utf8.ValidString(h.Raw) {
			t.Fatalf("raw abbreviation broke UTF-8: %q", h.Raw)
		}
		switch h.Transport {
		case TransportTLS, TransportPlain, TransportUnknown, TransportLocal:
		default:
			t.Fatalf("transport %q", h.Transport)
		}
		if h.TLS != (h.Transport == TransportTLS) && h.Transport != TransportLocal {
			t.Fatalf("TLS %v but transport %s", h.TLS, h.Transport)
		}
		if h.FromIP != "" && !parseIP(h.FromIP).IsValid() {
			t.Fatalf("FromIP %q is not an address", h.FromIP)
		}
		// Control characters are read as spaces (ParseReceived), so By comes
		// from the input as the parser saw it.
		seen := []byte(in)
		for i, c := range seen {
			if isControl(rune(c)) {
				seen[i] = ' '
			}
		}
		if len(in) <= MaxReceivedLen && h.By != "" && !strings.Contains(string(seen), h.By) {
			t.Fatalf("By %q is not in the input", h.By)
		}
	})
}

var authSeeds = []string{
	"spf=pass (sender IP is 203.0.113.25) smtp.mailfrom=fabrikam.example; dkim=pass (signature was verified) header.d=fabrikam.example;dmarc=pass action=none header.from=fabrikam.example;compauth=pass reason=100",
	"mx.google.com; dkim=pass header.i=@fabrikam.example header.s=s1 header.b=abc; spf=pass (google.com: domain of a@b designates 1.2.3.4 as permitted sender) smtp.mailfrom=a@b; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=b",
	"mx.example 1; none", "mx.example 2; spf=pass", "x; arc=pass header.oldest-pass=0", "x; =; a", ";;;", "(comment; with semicolon) x; dkim=fail",
	"x; dkim=pass reason=\"a (b; c) d\" header.d=e", "",
}

func FuzzAuthResults(f *testing.F) {
	for _, s := range authSeeds {
		f.Add(s, "")
		f.Add(s, "mx.google.com")
	}
	f.Fuzz(func(t *testing.T, value, trusted string) {
		results, fd := authResultsFinding([]string{value, value}, trusted, "message")
		if fd.ID != IDAuthResults || !fd.Status.Valid() || fd.Status == report.StatusError {
			t.Fatalf("finding %+v", fd)
		}
		if len(results) > maxAuthResults {
			t.Fatalf("%d results", len(results))
		}
		for _, r := range results {
			if r.Header != 1 && r.Header != 2 {
				t.Fatalf("header index %d", r.Header)
			}
			if r.Trusted && !strings.EqualFold(r.AuthServID, trustedOr(trusted, results)) {
				t.Fatalf("trusted result from %q", r.AuthServID)
			}
		}
		if fd.Status == report.StatusPass {
			if verdict(results, "dmarc") != "pass" {
				t.Fatalf("pass without a trusted dmarc=pass: %+v", results)
			}
		}
		if _, err := json.Marshal(fd); err != nil {
			t.Fatal(err)
		}
	})
}

// trustedOr is the id the finding trusts: the given one, or the topmost.
func trustedOr(trusted string, rs []AuthResult) string {
	if trusted != "" || len(rs) == 0 {
		return trusted
	}
	return rs[0].AuthServID
}

// fakeResolver answers TXT from a map and NXDOMAIN otherwise, with no
// network, so FuzzAnalyze can run the DKIM path.
type fakeResolver map[string][]string

func (f fakeResolver) Lookup(_ context.Context, name string, qtype uint16) (*resolver.Answer, error) {
	name = dns.CanonicalName(name)
	txt, ok := f[name]
	if !ok {
		return &resolver.Answer{Name: name, Type: qtype, Outcome: resolver.OutcomeNXDomain, Rcode: dns.RcodeNameError}, nil
	}
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: txt}
	return &resolver.Answer{Name: name, Type: qtype, Outcome: resolver.OutcomeOK, Records: []dns.RR{rr}}, nil
}

func FuzzAnalyze(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("DKIM-Signature: v=1; a=ed25519-sha256; d=fabrikam.example; s=ed1; h=from; bh=AAAA; b=AAAA\r\nFrom: a@fabrikam.example\r\n\r\nbody\r\n"))
	f.Add([]byte("From x\nReceived: (\n\n"))
	// Small whole messages, so mutations reach every part quickly.
	for _, r := range receivedSeeds[:6] {
		f.Add([]byte("Received: " + r + "\nAuthentication-Results: " + authSeeds[0] + "\nFrom: a@fabrikam.example\n\nb\n"))
	}
	f.Add([]byte("Received: by relay.mimecast.com; Tue, 1 Dec 2026 09:00:00 +0000\nReceived: from a (b [185.58.86.151]) by x.mail.protection.outlook.com with ESMTPSA; Tue, 1 Dec 2026 08:00:00 +0000\n\n"))
	gw, err := profile.Builtin().Get("mimecast-eu")
	if err != nil {
		f.Fatal(err)
	}
	mb, err := profile.Builtin().Get("microsoft365")
	if err != nil {
		f.Fatal(err)
	}
	res := fakeResolver{"ed1._domainkey.fabrikam.example.": {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr := Analyze(context.Background(), raw, Options{Profile: gw, Mailbox: mb, Resolver: res, Now: fixedNow})
		if tr == nil || len(tr.Findings) == 0 {
			t.Fatal("no findings")
		}
		r := report.New("x.example", "trace")
		r.Add(tr.Findings...)
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		if len(tr.Hops) > MaxHops {
			t.Fatalf("%d hops", len(tr.Hops))
		}
		for i, h := range tr.Hops {
			if h.Index != i+1 {
				t.Fatalf("hop %d has index %d", i, h.Index)
			}
		}
		if _, err := json.Marshal(tr); err != nil {
			t.Fatal(err)
		}
	})
}
