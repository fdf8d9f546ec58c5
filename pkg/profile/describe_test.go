package profile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// names returns the distinct consecutive field names, i.e. the sections a
// renderer would print.
func names(fs []Field) []string {
	var out []string
	for _, f := range fs {
		if len(out) == 0 || out[len(out)-1] != f.Name {
			out = append(out, f.Name)
		}
	}
	return out
}

func find(fs []Field, name string) []Field {
	var out []Field
	for _, f := range fs {
		if f.Name == name {
			out = append(out, f)
		}
	}
	return out
}

func describe(t *testing.T, id string) []Field {
	t.Helper()
	p, err := Builtin().Get(id)
	require.NoError(t, err)
	return Describe(p)
}

func TestDescribeOrderAndMarks(t *testing.T) {
	fs := describe(t, "mimecast-eu")
	assert.Equal(t, []string{
		"ID", "Name", "Kind", "Region", "Account code", "SPF includes", "MX hosts",
		"Smart hosts (M365 connector)", "Smart hosts (SMTP)", "Journal hosts",
		"IP ranges snapshot", "IP ranges", "Notes", "Sources",
	}, names(fs))
	assert.Equal(t, Field{Name: "ID", Value: "mimecast-eu"}, fs[0])
	assert.Equal(t, []Field{{Name: "SPF includes", Value: "eu._netblocks.mimecast.com"}}, find(fs, "SPF includes"))
	assert.Equal(t, []Field{
		{Name: "MX hosts", Value: "eu-smtp-inbound-1.mimecast.com", Uncertain: true},
		{Name: "MX hosts", Value: "eu-smtp-inbound-2.mimecast.com", Uncertain: true},
	}, find(fs, "MX hosts"))
	snap := find(fs, "IP ranges snapshot")
	require.Len(t, snap, 1)
	assert.Equal(t, "~2025, eu._netblocks SPF as resolved in the apiverve README (fallback; live from eu._netblocks.mimecast.com)", snap[0].Value)
	assert.False(t, snap[0].Uncertain)
	ranges := find(fs, "IP ranges")
	assert.Len(t, ranges, 11, "one Field per range")
	assert.Equal(t, Field{Name: "IP ranges", Value: "195.130.217.0/24"}, ranges[0])
}

func TestDescribeUnknownAndPartlyUncertain(t *testing.T) {
	// Nothing stored, and the research says nothing is known: show that.
	usb := describe(t, "mimecast-usb")
	assert.Equal(t, []Field{{Name: "IP ranges snapshot", Value: "none stored (live from usb._netblocks.mimecast.com)"}},
		find(usb, "IP ranges snapshot"))
	assert.Equal(t, []Field{{Name: "IP ranges", Uncertain: true}}, find(usb, "IP ranges"))
	assert.Equal(t, []Field{{Name: "Smart hosts (M365 connector)", Uncertain: true}}, find(usb, "Smart hosts (M365 connector)"))
	assert.Empty(t, find(usb, "Journal hosts"), "an empty field nobody doubts is left out")

	ca := describe(t, "mimecast-ca")
	assert.Equal(t, []Field{{Name: "MX hosts", Uncertain: true}}, find(ca, "MX hosts"))
	assert.Equal(t, []Field{{Name: "SPF includes", Value: "ca._netblocks.mimecast.com", Uncertain: true}}, find(ca, "SPF includes"))

	// Only some values uncertain.
	m365 := find(describe(t, "microsoft365"), "MX hosts")
	require.Len(t, m365, 4)
	for _, f := range m365 {
		assert.Equal(t, f.Value == "<domain-dashes>.*.mx.microsoft", f.Uncertain, f.Value)
	}
	za := find(describe(t, "mimecast-za"), "MX hosts")
	assert.Equal(t, []Field{
		{Name: "MX hosts", Value: "za-smtp-inbound-1.mimecast.co.za"},
		{Name: "MX hosts", Value: "za-smtp-inbound-2.mimecast.co.za", Uncertain: true},
	}, za)

	// An uncertain live source makes the snapshot line uncertain.
	off := find(describe(t, "mimecast-offshore"), "IP ranges snapshot")
	require.Len(t, off, 1)
	assert.True(t, off[0].Uncertain)
	assert.Contains(t, off[0].Value, "(fallback; live from eu._netblocks.mimecast.com)")

	ppe := describe(t, "proofpoint-essentials-us")
	assert.Equal(t, []Field{{Name: "SPF terms", Value: "a:dispatch-us.ppe-hosted.com"}}, find(ppe, "SPF terms"))
	assert.Equal(t, "undated, community Microsoft 365 lock-down scripts", find(ppe, "IP ranges snapshot")[0].Value,
		"no live name, so no fallback note")

	assert.Nil(t, Describe(nil))
}

func TestDescribeEveryBuiltin(t *testing.T) {
	for _, p := range Builtin().All() {
		fs := Describe(p)
		require.GreaterOrEqual(t, len(fs), 4, p.ID)
		assert.Equal(t, []string{"ID", "Name", "Kind"}, names(fs)[:3], p.ID)
		// Every uncertain entry shows up as at least one marked Field.
		marked := 0
		for _, f := range fs {
			if f.Uncertain {
				marked++
			}
		}
		if len(p.Uncertain) > 0 {
			assert.Positive(t, marked, p.ID)
		}
	}
}
