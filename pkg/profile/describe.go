package profile

import "strings"

// Field is one line of a profile's description. Consecutive Fields with the
// same Name are the values of one list; a renderer may print the name once.
// Uncertain means the value is unverified and must be marked as such (the
// CLI prints "(unverified)"). An empty Value with Uncertain set means "not
// known": the research found no value for the field.
type Field struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Uncertain bool   `json:"uncertain,omitempty"`
}

// Describe lists p's fields in a fixed order for people: identity, SPF, host
// names, IP ranges (the live names are named on the snapshot line), DKIM and verification records, notes and sources. Empty
// optional fields are left out unless they are marked uncertain, because
// "nobody knows the MX hosts" is worth showing. It returns data only; the
// caller renders it.
func Describe(p *Profile) []Field {
	if p == nil {
		return nil
	}
	var out []Field
	scalar := func(name, key, v string) {
		if v != "" || p.FieldUncertain(key) {
			out = append(out, Field{Name: name, Value: v, Uncertain: p.ValueUncertain(key, v)})
		}
	}
	list := func(name, key string, vs []string) {
		if len(vs) == 0 {
			if p.FieldUncertain(key) {
				out = append(out, Field{Name: name, Uncertain: true})
			}
			return
		}
		for _, v := range vs {
			out = append(out, Field{Name: name, Value: v, Uncertain: p.ValueUncertain(key, v)})
		}
	}

	out = append(out,
		Field{Name: "ID", Value: p.ID},
		Field{Name: "Name", Value: p.Name},
		Field{Name: "Kind", Value: string(p.Kind)})
	scalar("Region", KeyRegion, p.Region)
	scalar("Account code", KeyAccountCode, p.AccountCode)
	list("SPF includes", KeySPFIncludes, p.SPFIncludes)
	list("SPF terms", KeySPFTerms, p.SPFTerms)
	list("MX hosts", KeyMXHosts, p.MXHosts)
	list("Smart hosts (M365 connector)", KeyOutboundSmartHosts, p.OutboundSmartHosts)
	list("Smart hosts (SMTP)", KeySMTPOutboundHosts, p.SMTPOutboundHosts)
	list("Journal hosts", KeyJournalHosts, p.JournalHosts)
	out = append(out, ipRanges(p)...)
	list("DKIM", KeyDKIM, p.DKIM)
	list("Verification", KeyVerification, p.Verification)
	scalar("Notes", KeyNotes, p.Notes)
	list("Sources", KeySources, p.Sources)
	return out
}

// ipRanges describes the stored ranges with their age, and says they are a
// fallback when live names exist, so nobody mistakes the snapshot for the
// vendor's current list.
func ipRanges(p *Profile) []Field {
	if len(p.IPRanges) == 0 && p.IPRangesSnapshot == "" && len(p.IPRangesLive) == 0 && !p.FieldUncertain(KeyIPRanges) {
		return nil
	}
	live := strings.Join(p.IPRangesLive, ", ")
	var snap string
	switch {
	case len(p.IPRanges) == 0 && live != "":
		snap = "none stored (live from " + live + ")"
	case len(p.IPRanges) == 0:
		snap = "none stored"
	default:
		snap = p.IPRangesSnapshot
		if snap == "" {
			snap = "undated"
		}
		if live != "" {
			snap += " (fallback; live from " + live + ")"
		}
	}
	// The live names appear only on this line, so their uncertainty travels
	// with it.
	unsure := p.FieldUncertain(KeyIPRangesSnapshot)
	for _, l := range p.IPRangesLive {
		unsure = unsure || p.ValueUncertain(KeyIPRangesLive, l)
	}
	out := []Field{{Name: "IP ranges snapshot", Value: snap, Uncertain: unsure}}
	if len(p.IPRanges) == 0 {
		if p.FieldUncertain(KeyIPRanges) {
			out = append(out, Field{Name: "IP ranges", Uncertain: true})
		}
		return out
	}
	for _, pr := range p.IPRanges {
		s := pr.String()
		out = append(out, Field{Name: "IP ranges", Value: s, Uncertain: p.ValueUncertain(KeyIPRanges, s)})
	}
	return out
}
