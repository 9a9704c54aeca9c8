package main

import (
	"io"

	"github.com/valyala/fasthttp"
)

// patternPeriod is the length of the repeating body pattern: the byte at
// offset i of every body is 'a'+i%26, so any client can recompute what it
// should have received and compare SHA-256 sums.
const patternPeriod = 26

// patternBlock holds a whole number of periods (about 1 MiB), so every body
// up to its length is a slice of it and needs no copy.
var patternBlock = makePattern(patternPeriod * 40330)

func makePattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%patternPeriod)
	}
	return b
}

// setPayload makes the response body n bytes of the pattern. A chunked body
// is given to fasthttp as a stream of unknown length, which is what makes it
// send Transfer-Encoding: chunked.
func setPayload(resp *fasthttp.Response, n int, chunked bool) {
	switch {
	case chunked:
		resp.SetBodyStream(&patternReader{n: n}, -1)
	case n <= len(patternBlock):
		resp.SetBodyRaw(patternBlock[:n])
	default:
		resp.SetBodyStream(&patternReader{n: n}, n)
	}
}

// patternReader produces n bytes of the pattern.
type patternReader struct {
	off, n int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	// Starting at off%period inside the block keeps the pattern continuous
	// across reads, because the block is a whole number of periods long.
	src := patternBlock[r.off%patternPeriod:]
	if rest := r.n - r.off; len(src) > rest {
		src = src[:rest]
	}
	n := copy(p, src)
	r.off += n
	return n, nil
}
