package loadgen

import (
	"fmt"
	"strings"
)

// maxErrorKinds bounds the distinct texts in StepResult.Errors. A misbehaving
// proxy can make every error unique (a random reason phrase, say), and the
// results file must stay small whatever it answers.
const maxErrorKinds = 100

var otherErrors = fmt.Sprintf("(other errors beyond %d distinct texts)", maxErrorKinds)

// errorCounts counts errors by normalised text.
type errorCounts map[string]uint64

func (e errorCounts) add(text string, n uint64) {
	key := errorKey(text)
	if _, seen := e[key]; !seen && len(e) >= maxErrorKinds {
		key = otherErrors
	}
	e[key] += n
}

// errorKey drops the ephemeral local address from socket errors
// ("read tcp 127.0.0.1:53412->127.0.0.1:8081: ..."), which would otherwise
// split one cause into one entry per client port.
func errorKey(text string) string {
	for {
		arrow := strings.Index(text, "->")
		if arrow < 0 {
			return text
		}
		from := strings.LastIndexByte(text[:arrow], ' ') + 1
		text = text[:from] + text[arrow+len("->"):]
	}
}
