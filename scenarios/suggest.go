package scenarios

import "strings"

// closest returns the candidate a mistyped key was most likely meant to be,
// or "" when none is near enough to be a useful hint.
func closest(key string, candidates []string) string {
	key = strings.ToLower(key)
	best, bestDist := "", 3
	for _, c := range candidates {
		d := editDistance(key, c)
		if len(key) >= 4 && len(c) >= 4 && (strings.HasPrefix(key, c) || strings.HasPrefix(c, key)) {
			// "delay_ms" for "delay": a unit suffix is a common slip but far
			// in edit distance.
			d = min(d, 2)
		}
		limit := 2
		if len(key) <= 4 {
			limit = 1
		}
		if d <= limit && d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance over bytes (keys
// are ASCII): Levenshtein plus swapping two neighbours as one edit, the
// commonest typing slip ("mdoe" for "mode").
func editDistance(a, b string) int {
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev2, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = prev, cur, prev2
	}
	return rows[1][len(b)]
}
