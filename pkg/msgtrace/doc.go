// Package msgtrace reads a received message and says what it shows about the
// path the message took: the Received chain (RFC 5321 §4.4, RFC 5322
// §3.6.7) numbered from the sender's side with per-hop delays and TLS, the
// hop through the email security gateway (and whether it came before the
// mail platform), the Authentication-Results the receivers recorded
// (RFC 8601), and a fresh verification of the DKIM signatures (RFC 6376,
// RFC 8463) with keys looked up through mfcheck's own resolver.
//
// Analyze never fails: a message it cannot read, a header it cannot parse or
// a key it cannot look up become findings. As everywhere in mfcheck, "the
// mail flow is wrong" (warn, fail) and "we could not check" (error: a DNS
// failure while fetching a DKIM key) stay apart.
//
// Everything the package reads comes from the message, so everything is
// bounded: the header section (MaxHeaderBytes, MaxHeaderFields), one
// Received value (MaxReceivedLen), the number of hops (MaxHops), DKIM
// signatures verified (MaxDKIMSignatures), the message size
// (MaxMessageBytes) and the raw headers copied into evidence.
//
// Received headers are written by whoever handled the message; only the ones
// added after the message reached systems the reader trusts (the mailbox
// platform, the gateway) can be believed. Hops below the gateway may have
// been written by the sender, so the gateway finding keeps the evidence
// (which name or address matched, and who wrote it) next to its verdict.
package msgtrace
