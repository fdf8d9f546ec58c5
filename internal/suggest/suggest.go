// Package suggest finds what a user probably meant: the "did you mean"
// behind unknown profile IDs and misspelt config keys.
package suggest

// EditDistance is the optimal-string-alignment distance: Levenshtein plus
// adjacent transpositions, the commonest typo ("porfile", "mimecast-ue").
// Strings over 128 bytes get a huge distance: names and keys are short, so
// a long string is not a typo of one (and the table stays small).
func EditDistance(a, b string) int {
	if len(a) > 128 || len(b) > 128 {
		return 1 << 20
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
