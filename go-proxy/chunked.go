package main

import (
	"bytes"
	"errors"
)

// chunkParser decodes chunked framing (RFC 9112 7.1) from an upstream
// response in place: it never copies, it only says which bytes of a window
// it was given are framing and which are data. Line ends must be CRLF; a
// bare LF or CR anywhere in the framing is an error, as is a run of chunk
// extensions and trailer fields longer than the budget the response head
// left over.
type chunkParser struct {
	left   int64 // data bytes still to come in the current chunk
	state  chunkState
	budget int // bytes of extensions and trailer section still allowed
}

type chunkState uint8

const (
	chunkSizeLine chunkState = iota
	chunkData
	chunkDataEnd
	chunkTrailer
	chunkDone
)

var (
	errChunkFraming = errors.New("malformed chunked framing")
	errChunkLimit   = errors.New("chunk extensions and trailer section over the head limit")
	errNeedMore     = errors.New("incomplete chunk framing element")
)

// maxChunkSize keeps the size sum far from overflow; no real chunk is near.
const maxChunkSize = 1 << 60

// step consumes the next framing element from b: it returns how many bytes
// of b it used and, for chunk data, the data itself (a prefix of b).
// errNeedMore means b holds no complete element yet.
func (p *chunkParser) step(b []byte) (n int, data []byte, err error) {
	switch p.state {
	case chunkData:
		if len(b) == 0 {
			return 0, nil, errNeedMore
		}
		k := len(b)
		if int64(k) > p.left {
			k = int(p.left)
		}
		p.left -= int64(k)
		if p.left == 0 {
			p.state = chunkDataEnd
		}
		return k, b[:k], nil
	case chunkDataEnd:
		if len(b) < 2 {
			if len(b) == 1 && b[0] != '\r' {
				return 0, nil, errChunkFraming
			}
			return 0, nil, errNeedMore
		}
		if b[0] != '\r' || b[1] != '\n' {
			return 0, nil, errChunkFraming
		}
		p.state = chunkSizeLine
		return 2, nil, nil
	case chunkSizeLine:
		return p.sizeLine(b)
	case chunkTrailer:
		return p.trailerLine(b)
	}
	return 0, nil, nil
}

// line returns the line at the start of b without its CRLF, and its length
// with it. Lines longer than limit fail with errChunkLimit before they end.
func crlfLine(b []byte, limit int) (line []byte, n int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > limit+1 {
			return nil, 0, errChunkLimit
		}
		if bytes.IndexByte(b, '\r') >= 0 && b[len(b)-1] != '\r' {
			return nil, 0, errChunkFraming
		}
		return nil, 0, errNeedMore
	}
	if i == 0 || b[i-1] != '\r' || bytes.IndexByte(b[:i-1], '\r') >= 0 {
		return nil, 0, errChunkFraming
	}
	return b[:i-1], i + 1, nil
}

func (p *chunkParser) sizeLine(b []byte) (int, []byte, error) {
	// Sixteen hex digits are more than any size needs; what follows them
	// is extensions and has to fit the budget.
	line, n, err := crlfLine(b, 16+p.budget)
	if err != nil {
		return 0, nil, err
	}
	var size int64
	digits := 0
	for ; digits < len(line); digits++ {
		v := unhex(line[digits])
		if v < 0 {
			break
		}
		// Checked before the shift, which could otherwise wrap around.
		if size > maxChunkSize>>4 {
			return 0, nil, errChunkFraming
		}
		size = size<<4 | int64(v)
	}
	ext := line[digits:]
	if digits == 0 || (len(ext) > 0 && ext[0] != ';' && ext[0] != ' ' && ext[0] != '\t') {
		return 0, nil, errChunkFraming
	}
	if p.budget -= len(ext); p.budget < 0 {
		return 0, nil, errChunkLimit
	}
	if size == 0 {
		p.state = chunkTrailer
	} else {
		p.left, p.state = size, chunkData
	}
	return n, nil, nil
}

// trailerLine consumes one trailer field line, or the empty line that ends
// the body. Trailer fields are counted and dropped, never relayed.
func (p *chunkParser) trailerLine(b []byte) (int, []byte, error) {
	line, n, err := crlfLine(b, p.budget)
	if err != nil {
		return 0, nil, err
	}
	if len(line) == 0 {
		p.state = chunkDone
		return n, nil, nil
	}
	if p.budget -= n; p.budget < 0 {
		return 0, nil, errChunkLimit
	}
	return n, nil, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// completeLength reports the decoded length of a chunked body that lies
// whole in b, without consuming anything; ok is false when b ends first.
// A framing error found on the way is returned: no byte of the response
// has gone to the client yet, so it can still be answered 502.
func (p chunkParser) completeLength(b []byte) (length int64, ok bool, err error) {
	for p.state != chunkDone {
		n, data, err := p.step(b)
		if err == errNeedMore {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		length += int64(len(data))
		b = b[n:]
	}
	return length, true, nil
}
