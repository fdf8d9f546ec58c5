// Package resolver is mfcheck's one DNS client, built on github.com/miekg/dns.
//
// Contract of Lookup, which every consumer-side interface relies on:
//   - OK, NXDOMAIN and NODATA are answers: Lookup returns the *Answer and a nil
//     error, with Answer.Outcome telling them apart (RFC 2308).
//   - SERVFAIL, REFUSED, timeouts and network failures mean "could not check":
//     Lookup returns an *Answer (Outcome set, possibly no records) and an error
//     wrapping ErrServFail, ErrRefused, ErrTimeout or ErrNetwork.
//   - An invalid name returns an error wrapping ErrBadName and sends nothing.
package resolver
