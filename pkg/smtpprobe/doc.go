// Package smtpprobe connects to SMTP servers (the MX hosts of a domain and
// the smart hosts of a gateway) and judges their transport security:
// banner, EHLO, STARTTLS (RFC 3207), the TLS handshake, the server's
// certificate chain, name and expiry, and DANE TLSA records (RFC 7672).
// Send and Bypass (send.go) send a test message, or stop before DATA, with go-smtp's client (send.*, bypass.direct-delivery findings).
//
// # Why a protocol client of our own
//
// go-smtp's client hides the STARTTLS step inside its dial helpers and
// refuses to continue past a certificate it cannot verify, so a self-signed
// or expired certificate becomes a dial error instead of evidence. A probe
// needs the opposite: finish the handshake whatever the certificate, then
// verify it separately and say exactly what is wrong; time every phase;
// keep the server's exact replies. So the probe is a small client on
// net/textproto (the standard library's multi-line reply parser,
// textproto.Reader.ReadResponse, does the RFC 5321 §4.2 reply syntax), with
// limits on line and reply size and a deadline per phase. go-smtp is still
// used for sending test messages and for the in-process test servers.
//
// # What a probe does
//
// Probe connects to Target.Addr (port 25 unless given), reads the greeting,
// sends EHLO (HELO when EHLO is refused, RFC 5321 §4.1.4), and, when
// STARTTLS is offered, upgrades and completes the handshake with
// InsecureSkipVerify and TLS 1.0 as the minimum so old servers are still
// seen (Go's client default minimum is TLS 1.2). It then verifies the chain
// with crypto/x509 against Options.Roots, the host name (RFC 6125 through
// x509.Certificate.VerifyHostname) and the validity dates, says EHLO again
// over TLS and QUITs. Targets with ImplicitTLS (port 465, RFC 8314 §3.3)
// start with the handshake. Nothing is sent beyond EHLO: no MAIL, no RCPT.
//
// Each phase (connect, banner, ehlo, starttls, handshake, ehlo-tls, quit)
// has its own deadline, the earlier of the context's and the phase timeout,
// set on the connection, so a silent or dripping server costs one phase
// timeout and never more. Garbage, an overlong line, a reset: all end the
// probe with Result.Err and the phase that failed, never a panic or a hang.
//
// # Findings
//
// Result.Findings turns a probe into tls.* findings and DANEFinding adds
// tls.dane; docs/checks.md lists every ID with its statuses. "Could not check"
// (unreachable, timeout, garbage) is StatusError and is kept apart from
// "no STARTTLS" (a misconfiguration) and from "STARTTLS offered but the
// handshake or the certificate failed".
package smtpprobe
