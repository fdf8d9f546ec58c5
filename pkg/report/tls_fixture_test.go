package report

import "time"

// tlsContoso is a smoke run with an SMTP/TLS section covering every verdict
// the renderers colour differently, an IPv6 endpoint on a non-default port
// and a hostile banner.
func tlsContoso() *Report {
	r := New("contoso.com", "smoke")
	r.Tool = Tool{Name: "mfcheck", Version: "v0.4.0"}
	r.Profile = "mimecast-eu"
	r.StartedAt = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	r.DurationMS = 812.5
	days := func(n int) *int { return &n }
	r.Add(
		Finding{ID: "tls.cert-expiry", Status: StatusFail, Subject: "eu-smtp-o365-outbound-2.mimecast.com [185.58.86.11]",
			Message:     "the certificate expired 3 days ago (2026-11-28)",
			Remediation: "Renew the certificate of eu-smtp-o365-outbound-2.mimecast.com and install it with its intermediate."},
		Finding{ID: "tls.starttls-offered", Status: StatusWarn, Subject: "legacy.contoso.com [198.51.100.25]",
			Message: "STARTTLS is not offered: mail to this MX travels in clear text"},
		Finding{ID: "tls.connect", Status: StatusError, Subject: "eu-smtp-inbound-2.mimecast.com [2a0a:4f80::25]:2525",
			Message: "could not connect within 10s: i/o timeout"},
		Finding{ID: "tls.cert-chain", Status: StatusPass, Subject: "eu-smtp-inbound-1.mimecast.com [185.58.85.10]",
			Message: "the chain verifies to a trusted root"},
	)
	r.Finalize()
	r.TLS = []TLSEndpoint{
		{Host: "eu-smtp-inbound-1.mimecast.com", Address: "185.58.85.10", Port: 25, Role: "mx", Verdict: "verified",
			Banner: "220 eu-smtp-inbound-1.mimecast.com ESMTP", StartTLS: true, TLSVersion: "TLS 1.3", Cipher: "TLS_AES_256_GCM_SHA384",
			Certificate: "CN=*.mimecast.com", Issuer: "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1", NotAfter: "2027-05-01T23:59:59Z", DaysLeft: days(151),
			DANE:     "none",
			PhasesMS: map[string]float64{"connect": 11.2, "banner": 40.1, "ehlo": 12, "starttls": 11.8, "handshake": 35.5, "ehlo-tls": 12.2, "quit": 10.9}, TotalMS: 133.7},
		{Host: "eu-smtp-inbound-2.mimecast.com", Address: "2a0a:4f80::25", Port: 2525, Role: "mx", Verdict: "unreachable",
			Reason: "connect: i/o timeout", PhasesMS: map[string]float64{"connect": 10000}, TotalMS: 10000},
		{Host: "legacy.contoso.com", Address: "198.51.100.25", Port: 25, Role: "mx", Verdict: "no-starttls",
			Banner: "220 legacy \x1b[31mESMTP", TotalMS: 48.2},
		{Host: "eu-smtp-o365-outbound-2.mimecast.com", Address: "185.58.86.11", Port: 25, Role: "smart-host", Verdict: "untrusted",
			Reason: "certificate expired", StartTLS: true, TLSVersion: "TLS 1.2", Cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
			Certificate: "CN=eu-smtp-o365-outbound-2.mimecast.com", Issuer: "CN=Example Issuing CA | Tier 2", NotAfter: "2026-11-28T12:00:00Z", DaysLeft: days(-3),
			DANE: "mismatch", TotalMS: 120},
	}
	return r
}
