// Package policy checks the mail-authentication and transport-security
// policies a domain publishes in DNS:
//
//   - DMARC (RFC 7489): the record at _dmarc.<domain>, or the organizational
//     domain's when the domain has none (§6.6.3), its policy, and whether
//     every external report destination has authorized the reports (§7.1);
//   - MTA-STS (RFC 8461): the _mta-sts TXT record (§3.1), the policy file
//     fetched over HTTPS from mta-sts.<domain> (§3.2, §3.3), and whether the
//     policy's mx patterns and the domain's MX hosts cover each other (§4.1);
//   - SMTP TLS Reporting (RFC 8460 §3): the _smtp._tls TXT record;
//   - DKIM (RFC 6376 §3.6.1, RFC 8301, RFC 8463): the key records of the
//     selectors named by the gateway and mailbox profiles and by the user.
//
// Analyze runs the four parts concurrently through one Resolver (every name
// is asked once per run) and returns data plus findings; it never prints.
// As everywhere in mfcheck, a misconfigured domain (warn, fail) and a check
// that could not run (error: SERVFAIL, timeout, our own deadline) are kept
// apart: a lookup failure is never reported as "absent".
//
// The parsers (ParseDMARC, ParseMTASTSRecord, ParseMTASTSPolicy,
// ParseTLSRPT, ParseDKIMKey) are exported, fuzzed, and never panic.
package policy
