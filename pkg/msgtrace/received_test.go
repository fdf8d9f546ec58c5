package msgtrace

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The headers below are realistic synthetic examples, shaped after what each
// MTA writes; host names, addresses and IDs are invented. The Mimecast ones
// in particular are plausible reconstructions, not verbatim copies.

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseReceived(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Hop // Raw, Transport and ParseError are checked separately
		tr   Transport
		err  string // substring of the error; "" = none
	}{
		{
			name: "postfix with TLS comment",
			in: "from mail.fabrikam.example (mail.fabrikam.example [203.0.113.25]) " +
				"(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) " +
				"key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256) " +
				"(No client certificate requested) " +
				"by mx1.contoso.example (Postfix) with ESMTPS id 4Abc1X2yZ3z9 " +
				"for <alice@contoso.example>; Tue,  1 Dec 2026 09:00:00 +0000 (UTC)",
			want: Hop{From: "mail.fabrikam.example", FromRDNS: "mail.fabrikam.example", FromIP: "203.0.113.25",
				By: "mx1.contoso.example", With: "ESMTPS", ID: "4Abc1X2yZ3z9", For: "alice@contoso.example",
				TLS: true, TLSVersion: "TLSv1.3", TLSCipher: "TLS_AES_256_GCM_SHA384", Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportTLS,
		},
		{
			name: "postfix without reverse DNS, plain",
			in:   "from helo.fabrikam.example (unknown [198.51.100.9]) by mx1.contoso.example (Postfix) with ESMTP id 4Abc2; Tue, 1 Dec 2026 09:00:00 +0000 (UTC)",
			want: Hop{From: "helo.fabrikam.example", FromIP: "198.51.100.9", By: "mx1.contoso.example", With: "ESMTP", ID: "4Abc2",
				Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportPlain,
		},
		{
			name: "postfix local pickup",
			in:   "by mail.contoso.example (Postfix, from userid 1000) id 7F3A21234; Tue,  1 Dec 2026 08:59:58 +0000 (UTC)",
			want: Hop{By: "mail.contoso.example", ID: "7F3A21234", Time: utc("2026-12-01T08:59:58Z")},
			tr:   TransportLocal,
		},
		{
			name: "exchange online frontend from the gateway",
			in: "from eu-smtp-delivery-1.mimecast.com (185.58.86.151) by AM6EUR05FT012.mail.protection.outlook.com (10.233.240.104) " +
				"with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) " +
				"id 15.20.8093.13 via Frontend Transport; Tue, 1 Dec 2026 09:00:04 +0000",
			want: Hop{From: "eu-smtp-delivery-1.mimecast.com", FromIP: "185.58.86.151", By: "AM6EUR05FT012.mail.protection.outlook.com",
				With: "Microsoft SMTP Server", ID: "15.20.8093.13", Via: "Frontend Transport",
				TLS: true, TLSVersion: "TLS1_2", TLSCipher: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Time: utc("2026-12-01T09:00:04Z")},
			tr: TransportTLS,
		},
		{
			name: "exchange online internal hop with an IPv6 TCP-info",
			in: "from AM6EUR05FT012.eop-eur05.prod.protection.outlook.com (2603:10a6:20b:4a0::18) by AM0PR02MB1234.eurprd02.prod.outlook.com " +
				"(2603:10a6:208:15c::21) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8093.13; " +
				"Tue, 1 Dec 2026 09:00:05 +0000",
			want: Hop{From: "AM6EUR05FT012.eop-eur05.prod.protection.outlook.com", FromIP: "2603:10a6:20b:4a0::18",
				By: "AM0PR02MB1234.eurprd02.prod.outlook.com", With: "Microsoft SMTP Server", ID: "15.20.8093.13",
				TLS: true, TLSVersion: "TLS1_2", TLSCipher: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Time: utc("2026-12-01T09:00:05Z")},
			tr: TransportTLS,
		},
		{
			name: "exchange online frontend outlook.office365.com, no TLS stated",
			in:   "from mail.fabrikam.example (203.0.113.25) by AM5PR0202CA0001.outlook.office365.com (2603:10a6:203:1::11) with Microsoft SMTP Server id 15.20.8093.13 via Frontend Transport; Tue, 1 Dec 2026 09:00:03 +0000",
			want: Hop{From: "mail.fabrikam.example", FromIP: "203.0.113.25", By: "AM5PR0202CA0001.outlook.office365.com",
				With: "Microsoft SMTP Server", ID: "15.20.8093.13", Via: "Frontend Transport", Time: utc("2026-12-01T09:00:03Z")},
			tr: TransportPlain,
		},
		{
			name: "exchange online mapi submission",
			in:   "from AM0PR02MB1234.eurprd02.prod.outlook.com ([fe80::1234:5678:9abc:def0]) by AM0PR02MB1234.eurprd02.prod.outlook.com ([fe80::1234:5678:9abc:def0%5]) with mapi id 15.20.8093.013; Tue, 1 Dec 2026 09:00:06 +0000",
			want: Hop{From: "AM0PR02MB1234.eurprd02.prod.outlook.com", FromIP: "fe80::1234:5678:9abc:def0",
				By: "AM0PR02MB1234.eurprd02.prod.outlook.com", With: "mapi", ID: "15.20.8093.013", Time: utc("2026-12-01T09:00:06Z")},
			tr: TransportUnknown,
		},
		{
			name: "mimecast-style inbound with STARTTLS clause",
			in:   "from mail.fabrikam.example (mail.fabrikam.example [203.0.113.25]) by relay.mimecast.com with ESMTP with STARTTLS (version=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384) id uk-mta-12-AbCdEfGhIjKlMnOpQr-1; Tue, 01 Dec 2026 09:00:02 +0000",
			want: Hop{From: "mail.fabrikam.example", FromRDNS: "mail.fabrikam.example", FromIP: "203.0.113.25", By: "relay.mimecast.com",
				With: "ESMTP STARTTLS", ID: "uk-mta-12-AbCdEfGhIjKlMnOpQr-1", TLS: true, TLSVersion: "TLSv1.3", TLSCipher: "TLS_AES_256_GCM_SHA384",
				Time: utc("2026-12-01T09:00:02Z")},
			tr: TransportTLS,
		},
		{
			name: "mimecast-style (TLS) comment",
			in:   "from mail.fabrikam.example ([203.0.113.25]) by eu-smtp-inbound-1.mimecast.com with ESMTP (TLS) id 3f9a2b7c-1; Tue, 01 Dec 2026 09:00:02 +0000",
			want: Hop{From: "mail.fabrikam.example", FromIP: "203.0.113.25", By: "eu-smtp-inbound-1.mimecast.com", With: "ESMTP", ID: "3f9a2b7c-1",
				TLS: true, Time: utc("2026-12-01T09:00:02Z")},
			tr: TransportTLS,
		},
		{
			name: "gmail inbound",
			in:   "from mail.fabrikam.example (mail.fabrikam.example. [203.0.113.25]) by mx.google.com with ESMTPS id 5b1f17b1804b1-4311a1b2c3dsi123456f8f.2026.12.01.01.00.00 for <bob@gmail.com> (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256); Tue, 01 Dec 2026 01:00:00 -0800 (PST)",
			want: Hop{From: "mail.fabrikam.example", FromRDNS: "mail.fabrikam.example", FromIP: "203.0.113.25", By: "mx.google.com", With: "ESMTPS",
				ID: "5b1f17b1804b1-4311a1b2c3dsi123456f8f.2026.12.01.01.00.00", For: "bob@gmail.com",
				TLS: true, TLSVersion: "TLS1_3", TLSCipher: "TLS_AES_256_GCM_SHA384", Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportTLS,
		},
		{
			name: "gmail SMTPS with Google Transport Security",
			in:   "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com with SMTPS id a640c23a62f3a-a9a0sor1234567866b.0.2026.12.01.01.00.00 for <bob@gmail.com> (Google Transport Security); Tue, 01 Dec 2026 01:00:00 -0800 (PST)",
			want: Hop{From: "mail-sor-f41.google.com", FromRDNS: "mail-sor-f41.google.com", FromIP: "209.85.220.41", By: "mx.google.com", With: "SMTPS",
				ID: "a640c23a62f3a-a9a0sor1234567866b.0.2026.12.01.01.00.00", For: "bob@gmail.com", TLS: true, Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportTLS,
		},
		{
			name: "gmail internal hop",
			in:   "by 2002:a05:6a20:3c8f:b0:1d9:1234:5678 with SMTP id ld15csp123456pzb; Tue, 1 Dec 2026 01:00:01 -0800 (PST)",
			want: Hop{By: "2002:a05:6a20:3c8f:b0:1d9:1234:5678", With: "SMTP", ID: "ld15csp123456pzb", Time: utc("2026-12-01T09:00:01Z")},
			tr:   TransportLocal,
		},
		{
			name: "sendmail with TLS after the id and a nested comment",
			in:   "from host.fabrikam.example (host.fabrikam.example [203.0.113.30] (may be forged)) by mail.contoso.example (8.15.2/8.15.2) with ESMTPS id 0B19xYzq012345 (version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT) for <alice@contoso.example>; Tue, 1 Dec 2026 09:00:00 GMT",
			want: Hop{From: "host.fabrikam.example", FromRDNS: "host.fabrikam.example", FromIP: "203.0.113.30", By: "mail.contoso.example", With: "ESMTPS",
				ID: "0B19xYzq012345", For: "alice@contoso.example", TLS: true, TLSVersion: "TLSv1.3", TLSCipher: "TLS_AES_256_GCM_SHA384",
				Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportTLS,
		},
		{
			name: "sendmail plain",
			in:   "from relay.example (relay.example [192.0.2.7]) by mail.contoso.example (8.15.2/8.15.2) with ESMTP id 0B19xYzq012346 for <alice@contoso.example>; Tue, 1 Dec 2026 04:00:00 -0500",
			want: Hop{From: "relay.example", FromRDNS: "relay.example", FromIP: "192.0.2.7", By: "mail.contoso.example", With: "ESMTP",
				ID: "0B19xYzq012346", For: "alice@contoso.example", Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportPlain,
		},
		{
			name: "exim with rDNS, helo= and tls clause",
			in:   "from mail.fabrikam.example ([203.0.113.25] helo=smtp.fabrikam.example) by mx.contoso.example with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) (envelope-from <bob@fabrikam.example>) id 1t8XyZ-000AbC-2Q for alice@contoso.example; Tue, 01 Dec 2026 09:00:00 +0000",
			want: Hop{From: "smtp.fabrikam.example", FromRDNS: "mail.fabrikam.example", FromIP: "203.0.113.25", By: "mx.contoso.example", With: "esmtps",
				ID: "1t8XyZ-000AbC-2Q", For: "alice@contoso.example", TLS: true, TLSVersion: "TLS1.3", TLSCipher: "TLS_AES_256_GCM_SHA384",
				Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportTLS,
		},
		{
			name: "exim without rDNS, authenticated plain",
			in:   "from [203.0.113.25] (helo=laptop.fabrikam.example) by mx.contoso.example with esmtpa (Exim 4.96) (envelope-from <bob@fabrikam.example>) id 1t8XyZ-000AbC-2R; Tue, 01 Dec 2026 09:00:00 +0000",
			want: Hop{From: "laptop.fabrikam.example", FromIP: "203.0.113.25", By: "mx.contoso.example", With: "esmtpa", ID: "1t8XyZ-000AbC-2R",
				Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportPlain,
		},
		{
			name: "qmail",
			in:   "from unknown (HELO mail.fabrikam.example) (203.0.113.25) by mx.contoso.example with SMTP; 1 Dec 2026 09:00:00 -0000",
			want: Hop{From: "mail.fabrikam.example", FromIP: "203.0.113.25", By: "mx.contoso.example", With: "SMTP", Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportPlain,
		},
		{
			name: "IPv6 address literal",
			in:   "from [IPv6:2001:db8::25] (unknown [IPv6:2001:db8::25]) by mx1.contoso.example (Postfix) with ESMTPSA id 4Abc3; Tue, 1 Dec 2026 09:00:00 +0000",
			want: Hop{From: "[IPv6:2001:db8::25]", FromIP: "2001:db8::25", By: "mx1.contoso.example", With: "ESMTPSA", ID: "4Abc3", TLS: true,
				Time: utc("2026-12-01T09:00:00Z")},
			tr: TransportTLS,
		},
		{
			name: "ctime date",
			in:   "from a.example (a.example [192.0.2.1]) by b.example with ESMTP id 1; Tue Dec  1 09:00:00 2026",
			want: Hop{From: "a.example", FromRDNS: "a.example", FromIP: "192.0.2.1", By: "b.example", With: "ESMTP", ID: "1", Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportPlain,
		},

		// Malformed.
		{
			name: "no date",
			in:   "from a.example (a.example [192.0.2.1]) by b.example with ESMTP id X",
			want: Hop{From: "a.example", FromRDNS: "a.example", FromIP: "192.0.2.1", By: "b.example", With: "ESMTP", ID: "X"},
			tr:   TransportPlain,
			err:  "no date-time",
		},
		{
			name: "garbage date",
			in:   "from a.example by b.example with ESMTP; yesterday afternoon",
			want: Hop{From: "a.example", By: "b.example", With: "ESMTP"},
			tr:   TransportPlain,
			err:  "could not be read",
		},
		{
			name: "no by",
			in:   "from a.example (a.example [192.0.2.1]) with ESMTP id X; Tue, 1 Dec 2026 09:00:00 +0000",
			want: Hop{From: "a.example", FromRDNS: "a.example", FromIP: "192.0.2.1", With: "ESMTP", ID: "X", Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportPlain,
			err:  "no 'by' clause",
		},
		{
			name: "qmail invoked line",
			in:   "(qmail 12345 invoked by uid 89); 1 Dec 2026 09:00:00 -0000",
			want: Hop{Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportLocal,
			err:  "no 'by' clause",
		},
		{
			name: "unclosed parenthesis",
			in:   "from a.example (a.example [192.0.2.1] by b.example with ESMTP; Tue, 1 Dec 2026 09:00:00 +0000",
			want: Hop{From: "a.example", FromRDNS: "a.example", FromIP: "192.0.2.1", Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportUnknown,
			err:  "unbalanced parentheses",
		},
		{
			name: "stray closing parenthesis",
			in:   "from a.example (a.example [192.0.2.1])) by b.example with ESMTPS id 1; Tue, 1 Dec 2026 09:00:00 +0000",
			want: Hop{From: "a.example", FromRDNS: "a.example", FromIP: "192.0.2.1", By: "b.example", With: "ESMTPS", ID: "1", TLS: true, Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportTLS,
			err:  "unbalanced parentheses",
		},
		{
			name: "control characters",
			in:   "from a.example\x00\x1b by b.example with ESMTP id 1; Tue, 1 Dec 2026 09:00:00 +0000",
			want: Hop{From: "a.example", By: "b.example", With: "ESMTP", ID: "1", Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportPlain,
			err:  "control character 0x00 at offset 14",
		},
		{
			name: "semicolon inside a comment is not the date separator",
			in:   "from a.example (a.example [192.0.2.1]; odd) by b.example with ESMTP id 1; Tue, 1 Dec 2026 09:00:00 +0000",
			want: Hop{From: "a.example", FromRDNS: "a.example", FromIP: "192.0.2.1", By: "b.example", With: "ESMTP", ID: "1", Time: utc("2026-12-01T09:00:00Z")},
			tr:   TransportPlain,
		},
		{
			name: "empty",
			in:   "",
			want: Hop{},
			tr:   TransportLocal,
			err:  "no 'by' clause",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseReceived(tc.in)
			if tc.err == "" {
				require.NoError(t, err)
				assert.Empty(t, h.ParseError)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Equal(t, err.Error(), h.ParseError)
			}
			assert.Equal(t, tc.tr, h.Transport, "transport")
			got := h
			got.Raw, got.ParseError, got.Transport = "", "", ""
			want := tc.want
			// Compare instants, not locations.
			assert.True(t, want.Time.Equal(got.Time), "time: want %v, got %v", want.Time, got.Time)
			got.Time, want.Time = time.Time{}, time.Time{}
			assert.Equal(t, want, got)
		})
	}
}

func TestParseReceivedTooLong(t *testing.T) {
	in := "from a.example by b.example with ESMTP id " + strings.Repeat("x", 64<<10) + "; Tue, 1 Dec 2026 09:00:00 +0000"
	h, err := ParseReceived(in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "parsed only up to")
	assert.Empty(t, h.By, "nothing is parsed")
	assert.LessOrEqual(t, len(h.Raw), 2048+len("…"), "raw is bounded")
}

func TestParseReceivedDeepComments(t *testing.T) {
	// Deep nesting costs linear time and does not overflow anything.
	in := "from a.example " + strings.Repeat("(", 4000) + strings.Repeat(")", 4000) + " by b.example with ESMTPS; Tue, 1 Dec 2026 09:00:00 +0000"
	h, err := ParseReceived(in)
	require.NoError(t, err)
	assert.Equal(t, "b.example", h.By)
}

func TestOldTLS(t *testing.T) {
	for _, v := range []string{"TLSv1", "TLSv1.1", "TLS1_0", "TLS1_1", "SSLv3", "TLS1.0"} {
		assert.True(t, oldTLS(v), v)
	}
	for _, v := range []string{"TLSv1.2", "TLSv1.3", "TLS1_2", "TLS1_3", "TLS1.3", ""} {
		assert.False(t, oldTLS(v), v)
	}
}
