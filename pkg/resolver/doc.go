// Package resolver is mfcheck's one DNS client, built on github.com/miekg/dns.
//
// Contract of Lookup, which every consumer-side interface relies on:
//   - OK, NXDOMAIN and NODATA are answers: Lookup returns the *Answer and a nil
//     error, with Answer.Outcome telling them apart (RFC 2308).
//   - SERVFAIL, REFUSED, timeouts and network failures mean "could not check":
//     Lookup returns an *Answer (Outcome set, possibly no records) and an error
//     wrapping ErrServFail, ErrRefused, ErrTimeout or ErrNetwork.
//   - An invalid name returns an error wrapping ErrBadName and sends nothing.
//
// One Client serves one run. For a run over many domains (mfcheck bulk), one
// Client is shared and each domain gets a View: the cache and the in-flight
// dedupe are shared, the query log and the counters are the domain's own.
// Config.CacheSize bounds the cache (least recently used answers go first),
// Config.NoLog stops the Client's own log from growing with the run, and
// Config.Rate caps the queries per second of the Client and its Views.
package resolver
