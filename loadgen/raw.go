package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// rawBacklog is how many results may wait for the encoder before workers
// block on it: enough to absorb a slow write, small enough that a writer
// that cannot keep up shows as saturation within a fraction of a second.
const rawBacklog = 16 << 10

// rawWriter encodes results as vegeta.Result, gob-encoded as `vegeta attack`
// writes them, on a goroutine of its own so that workers only hand over a
// small value.
type rawWriter struct {
	hits chan rawHit
	done chan struct{}
	err  error // set by the encoding goroutine, read after done
}

type rawHit struct {
	hit
	bodyBytes int
}

func newRawWriter(w io.Writer, req *request, start time.Time) *rawWriter {
	rw := &rawWriter{hits: make(chan rawHit, rawBacklog), done: make(chan struct{})}
	go func() {
		defer close(rw.done)
		bw := bufio.NewWriterSize(w, 64<<10)
		enc := vegeta.NewEncoder(bw)
		for h := range rw.hits {
			if rw.err != nil {
				continue // drain, so that no worker blocks on a dead writer
			}
			rw.err = enc.Encode(&vegeta.Result{
				Seq:       h.seq,
				Code:      h.code,
				Timestamp: start.Add(h.sent),
				Latency:   h.latency,
				BytesOut:  uint64(req.body),
				BytesIn:   uint64(h.bodyBytes),
				Error:     h.err,
				Method:    req.method,
				URL:       req.url,
			})
		}
		if rw.err == nil {
			rw.err = bw.Flush()
		}
	}()
	return rw
}

func (rw *rawWriter) add(h *hit, bodyBytes int) { rw.hits <- rawHit{*h, bodyBytes} }

// close waits for every result to be written and returns the first error.
func (rw *rawWriter) close() error {
	close(rw.hits)
	<-rw.done
	if rw.err != nil {
		return fmt.Errorf("loadgen: writing raw results: %w", rw.err)
	}
	return nil
}
