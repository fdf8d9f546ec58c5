package suggest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"profile", "profile", 0},
		{"profil", "profile", 1},
		{"porfile", "profile", 1}, // a transposition is one edit
		{"mimecast-ue", "mimecast-eu", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	} {
		assert.Equal(t, c.want, EditDistance(c.a, c.b), "%s/%s", c.a, c.b)
		assert.Equal(t, c.want, EditDistance(c.b, c.a), "symmetric")
	}
	assert.Greater(t, EditDistance(strings.Repeat("a", 200), "a"), 1000, "long strings are not typos")
}
