package report

import "time"

// traceContoso is a `mfcheck trace` of a test message that came in through
// the gateway, with a plain-text hop and a header that could not be read.
func traceContoso() *Report {
	r := New("contoso.com", "health")
	r.Tool = Tool{Name: "mfcheck", Version: "v0.5.0"}
	r.Profile = "mimecast-eu"
	r.StartedAt = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	r.DurationMS = 12.5
	delay := func(s float64) *float64 { return &s }
	r.Add(
		Finding{ID: "trace.gateway-hop", Status: StatusPass, Subject: "<mfc-abc@probe.example>",
			Message: "hop 2 went through the gateway: by eu-smtp-inbound-1.mimecast.com at 09:00:03"},
		Finding{ID: "trace.tls-hops", Status: StatusWarn, Subject: "<mfc-abc@probe.example>",
			Message: "hop 1 (by mail.probe.example) used plain SMTP"},
	)
	r.Finalize()
	r.Trace = &Trace{Source: "testdata/inbound.eml", MessageID: "<mfc-abc@probe.example>", Token: "mfc-abc",
		From: "probe@probe.example", To: "postmaster@contoso.com", Subject: "mfcheck test mfc-abc", Date: "2026-12-01T09:00:00Z",
		Hops: []TraceHop{
			{Index: 1, From: "laptop", FromIP: "192.0.2.7", By: "mail.probe.example", With: "SMTP", Time: "2026-12-01T09:00:01Z", DelayS: delay(1)},
			{Index: 2, From: "mail.probe.example", FromIP: "198.51.100.4", By: "eu-smtp-inbound-1.mimecast.com", With: "ESMTPS", TLS: true, TLSVersion: "TLSv1.3",
				Cipher: "TLS_AES_256_GCM_SHA384", Time: "2026-12-01T09:00:03Z", DelayS: delay(2), Gateway: true},
			{Index: 3, By: "AM0PR01MB1234.eurprd01.prod.exchangelabs.com", ParseError: "no date after ';'"},
			{Index: 4, From: "AM0PR01MB1234.eurprd01.prod.exchangelabs.com", By: "AM0PR01MB5678.eurprd01.prod.exchangelabs.com \x1b[31m|x",
				With: "Microsoft SMTP Server", TLS: true, TLSVersion: "TLS1_2", Time: "2026-12-01T08:59:58Z", DelayS: delay(-5)},
		}}
	return r
}
