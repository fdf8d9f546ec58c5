// Package profile knows the email security gateways (Mimecast, Proofpoint,
// Barracuda, ...) and mail platforms (Microsoft 365, Google Workspace) that
// mfcheck checks a domain against: their SPF includes and terms, MX and smart
// host patterns, stored IP ranges, DKIM and verification records.
//
// The built-in profiles live in the embedded data file profiles.yaml. Its facts
// come from the project's gateway research notes of 2026-11-23
// (shared/reference/GATEWAYS.md), read from stored copies of vendor
// documentation, third-party scripts and observed DNS data, each with its
// sources. Facts no official vendor source confirmed are listed per profile in
// Uncertain: every consumer that shows or acts on such a fact must present it
// as unverified (see FieldUncertain, ValueUncertain and Describe), never as a
// vendor's documented value.
//
// Gateway IP lists change without notice, so callers should expand the
// IPRangesLive names' SPF records at run time; the stored IPRanges are a dated
// snapshot for use as a fallback or cross-check only.
//
// Users add their own profiles with LoadFile (same YAML schema) and
// Registry.With. Every profile, built-in or not, is validated the same way, and
// a bad file gives an error naming the file, line and field, never a panic.
package profile
