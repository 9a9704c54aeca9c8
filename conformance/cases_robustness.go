package conformance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

var robustnessCases = []Case{
	{Group: "robustness", Name: "fuzz-heads", Run: fuzzHeadsCase},
	{Group: "robustness", Name: "slow-client", Run: slowClient},
}

const (
	// fuzzSeed is fixed so that a failure can be replayed: the heads are
	// generated up front, in order, from this seed alone.
	fuzzSeed  = 0x5eed2025
	fuzzCount = 2000
	// fuzzWorkers connections are open at a time: enough to keep the proxy
	// busy, few enough for a 2-core machine shared with the upstream.
	fuzzWorkers = 8
	// Every fuzzCanaryEvery heads a well-formed request goes out too; its
	// answer must be its own, which a proxy whose upstream pool a bad
	// request has left out of step would get wrong.
	fuzzCanaryEvery = 50
	// fuzzWait bounds one fuzz connection. The client half-closes after
	// writing, so a proxy normally ends the connection long before.
	fuzzWait = time.Second
	// fuzzCanaryWait is generous: a canary must be answered, and a slow
	// machine is not a broken proxy.
	fuzzCanaryWait = 10 * time.Second
)

type fuzzJob struct {
	head   int    // index of the fuzzed head, or -1 for a canary
	canary string // a canary's request target
	raw    []byte
}

func (j fuzzJob) String() string {
	if j.head < 0 {
		return "canary " + j.canary
	}
	return fmt.Sprintf("head #%d %q", j.head, clip(j.raw))
}

// fuzzHeadsCase throws random and mutated request heads at the shared
// proxy and expects it to survive them all: the contract's "never crashes
// on any input". Whatever comes back must at least be HTTP.
func fuzzHeadsCase(e *Env) error {
	jobs := fuzzJobs(fuzzSeed)
	proxy := e.Proxy()
	ctx, cancel := context.WithCancel(e.Ctx)
	defer cancel()

	var (
		mu       sync.Mutex
		problems []string
		started  []int // indices into jobs, most recent last
		dialErr  error
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 5 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range fuzzWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				mu.Lock()
				started = append(started, i)
				mu.Unlock()
				j := jobs[i]
				if j.head < 0 {
					if err := fuzzCanary(ctx, proxy, j.canary); err != nil {
						if ctx.Err() == nil {
							report("%s among the burst: %v", j, err)
						}
					}
					continue
				}
				answer, err := fuzzSend(ctx, proxy, j.raw)
				if err != nil {
					mu.Lock()
					if dialErr == nil && ctx.Err() == nil {
						dialErr = err
					}
					mu.Unlock()
					cancel()
					continue
				}
				if len(answer) > 0 && !httpStatusLine.Match(answer) {
					report("%s was answered with bytes that are not an HTTP response: %q", j, clip(answer))
				}
			}
		}()
	}
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()

	if dialErr != nil {
		var recent []string
		for _, i := range started[max(0, len(started)-2*fuzzWorkers):] {
			recent = append(recent, jobs[i].String())
		}
		return fmt.Errorf("seed %#x: the proxy stopped accepting connections during the burst (%v); the last requests sent were:\n  %s",
			fuzzSeed, dialErr, strings.Join(recent, "\n  "))
	}
	if e.Ctx.Err() != nil {
		return fmt.Errorf("seed %#x: the burst did not finish in time: %v", fuzzSeed, e.Ctx.Err())
	}
	if len(problems) > 0 {
		return fmt.Errorf("seed %#x:\n  %s", fuzzSeed, strings.Join(problems, "\n  "))
	}
	if err := fuzzAfter(e); err != nil {
		return fmt.Errorf("seed %#x: after %d fuzzed heads: %w", fuzzSeed, fuzzCount, err)
	}
	return nil
}

// httpStatusLine is how every response a proxy may send begins.
var httpStatusLine = regexp.MustCompile(`^HTTP/1\.[01] [1-5][0-9][0-9][ \r]`)

// fuzzSend writes raw on a fresh connection, half-closes it so that the
// proxy sees the end of the input at once instead of waiting for more, and
// returns the first bytes of what came back. Only a failed dial is an error:
// writes may fail because the proxy refused the head before reading all of
// it, and reads end however the proxy chooses to end the connection.
func fuzzSend(ctx context.Context, addr string, raw []byte) ([]byte, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		// One more try, so that only a proxy that stays unreachable counts
		// as gone.
		time.Sleep(100 * time.Millisecond)
		if c, err = d.DialContext(ctx, "tcp", addr); err != nil {
			return nil, err
		}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(fuzzWait))
	c.Write(raw)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	first := make([]byte, 0, 64)
	buf := make([]byte, 32<<10)
	for total := 0; total < 4<<20; {
		n, err := c.Read(buf)
		if len(first) < cap(first) {
			first = append(first, buf[:min(n, cap(first)-len(first))]...)
		}
		total += n
		if err != nil {
			break
		}
	}
	return first, nil
}

// fuzzCanary sends one well-formed request and checks that the answer is
// the one to this request. The connection is not half-closed: a proxy may
// abandon a request whose client has stopped sending.
func fuzzCanary(ctx context.Context, addr, target string) error {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(fuzzCanaryWait))
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: canary\r\n\r\n"); err != nil {
		return err
	}
	conn := &Conn{Conn: c, R: bufio.NewReader(c)}
	r, err := conn.Read("GET")
	if err != nil {
		return err
	}
	echo, err := ParseEcho(r)
	if err != nil {
		return err
	}
	if echo.Target != target {
		return fmt.Errorf("answered with the echo of another request: target %q", echo.Target)
	}
	return nil
}

// fuzzAfter checks that the proxy still serves well-formed requests, two on
// one connection, once the burst is over.
func fuzzAfter(e *Env) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	r, err := c.Do("GET", "GET /echo/after-fuzz?x=1 HTTP/1.1\r\nHost: after\r\n\r\n")
	if err != nil {
		return fmt.Errorf("GET /echo/after-fuzz: %w", err)
	}
	echo, err := ParseEcho(r)
	if err != nil {
		return err
	}
	if echo.Target != "/echo/after-fuzz?x=1" {
		return fmt.Errorf("GET /echo/after-fuzz?x=1 reached the upstream as %q", echo.Target)
	}
	r, err = c.Do("GET", "GET /?size=3000 HTTP/1.1\r\nHost: after\r\n\r\n")
	if err != nil {
		return fmt.Errorf("second request on the connection: %w", err)
	}
	if r.StatusCode != 200 || !bytes.Equal(r.Body, Pattern(3000)) {
		return fmt.Errorf("GET /?size=3000: %s with %d bytes, want 200 with the 3000-byte pattern", r.Status, len(r.Body))
	}
	return nil
}

// fuzzJobs makes the whole burst from seed: mostly mutated heads, some
// random bytes, some mutated heads behind a good request on the same
// connection, and a canary now and then.
func fuzzJobs(seed uint64) []fuzzJob {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	jobs := make([]fuzzJob, 0, fuzzCount+fuzzCount/fuzzCanaryEvery)
	for i := range fuzzCount {
		if i%fuzzCanaryEvery == 0 {
			jobs = append(jobs, fuzzJob{head: -1, canary: fmt.Sprintf("/echo/canary-%d", i)})
		}
		var raw []byte
		switch p := r.IntN(100); {
		case p < 8:
			raw = fuzzRandomBytes(r)
		case p < 18:
			// A parser that trips on a bad request only after a good one
			// has gone through on the connection is caught here.
			raw = append([]byte(fuzzBases[0]), fuzzMutate(r)...)
		default:
			raw = fuzzMutate(r)
		}
		jobs = append(jobs, fuzzJob{head: i, raw: raw})
	}
	return jobs
}

// fuzzBases are well-formed requests of the kinds the contract names; the
// mutations start from them so that most heads get deep into a parser
// before something is wrong.
var fuzzBases = []string{
	"GET /echo?q=1 HTTP/1.1\r\nHost: fuzz\r\nUser-Agent: conformance\r\nAccept: */*\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"HEAD /echo HTTP/1.1\r\nHost: fuzz\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n",
	"POST /echo HTTP/1.1\r\nHost: fuzz\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
	"PUT /echo/a%2Fb HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: fuzz\r\n\r\n",
	"DELETE /echo HTTP/1.1\r\nHost: fuzz\r\nX-Forwarded-For: 192.0.2.1\r\nVia: 1.0 other\r\nCookie: a=b\r\nCookie: c=d\r\n\r\n",
}

var fuzzRequestLines = []string{
	"GET / HTTP/1.1 extra", "GET\t/\tHTTP/1.1", "GET  /  HTTP/1.1", "GET http://127.0.0.1/echo HTTP/1.1",
	"GET * HTTP/1.1", "CONNECT 127.0.0.1:1 HTTP/1.1", "GET / HTTP/2.0", "GET / HTTP/1.10", "GET / HTTP/0.9",
	"GET / HTTP/1", "GET / HTTP/", "GET / http/1.1", "GET /\x00 HTTP/1.1", "G@T / HTTP/1.1", "get / HTTP/1.1",
	"GET", "GET /", "/ HTTP/1.1", " GET / HTTP/1.1", "GET echo HTTP/1.1", "GET /%zz HTTP/1.1", "GET /\xff HTTP/1.1",
	"PRI * HTTP/2.0", "GET /" + strings.Repeat("a", 20000) + " HTTP/1.1", strings.Repeat("M", 300) + " / HTTP/1.1",
}

var fuzzOddFields = []string{
	" folded continuation", "\tfolded", "NoColon", ": no name", "Bad Name: x", "Bad\x00Name: x", "X-Empty:",
	"X-Spaces:    ", "Content-Length: 3", "Content-Length: 0", "Content-Length: -5", "Content-Length: 5",
	"Transfer-Encoding: chunked", "Transfer-Encoding: gzip", "Host: second", "Host:", "Connection: close",
	"Connection: Upgrade", "Upgrade: websocket", "Expect: 100-continue", "Proxy-Connection: keep-alive",
	"TE: trailers", "Trailer: X-T", "Keep-Alive: timeout=1", "X-Forwarded-For: not-an-ip", "Via: ",
	"X-\xff: \xff", "Content-Length : 5", "Transfer-Encoding : chunked", "Connection: Host, Content-Length",
}

var fuzzOddValues = []string{
	"", " ", "\x00", "a\x00b", "\x7f", "\xff\xfe", "-1", "+5", "5, 5", "5, 6", "0x10", "1e3",
	"99999999999999999999999", "18446744073709551616", "chunked", "chunked, chunked", "gzip, chunked",
	"chunked, gzip", "identity", "close, Host", "keep-alive, Content-Length", "Transfer-Encoding",
	"\tvalue\t", "a\rb", "a\nb", "100-continue", "websocket", "%00", ",,,,,,", "1.1 a, 1.0 b", "unknown, 192.0.2.1",
}

var fuzzChunkSizes = []string{
	"ffffffffffffffffffff", "-1", "5 ;x", "0x5", "5\x00", "", "FFFFFFFF", "5;" + strings.Repeat("e", 5000), "7fffffffffffffff", " 5",
}

// fuzzMutate takes a base request and applies one to three mutations.
func fuzzMutate(r *rand.Rand) []byte {
	b := []byte(fuzzBases[r.IntN(len(fuzzBases))])
	for range 1 + r.IntN(3) {
		b = fuzzOps[r.IntN(len(fuzzOps))](r, b)
	}
	return b
}

var fuzzOps = []func(*rand.Rand, []byte) []byte{
	// byte-level
	func(r *rand.Rand, b []byte) []byte { // flip a bit
		if len(b) == 0 {
			return b
		}
		b[r.IntN(len(b))] ^= 1 << r.IntN(8)
		return b
	},
	func(r *rand.Rand, b []byte) []byte { // insert a byte, often a delimiter
		const special = "\x00\r\n \t:;,\"\\\x7f\x80\xff"
		c := byte(r.IntN(256))
		if r.IntN(2) == 0 {
			c = special[r.IntN(len(special))]
		}
		i := r.IntN(len(b) + 1)
		return append(b[:i:i], append([]byte{c}, b[i:]...)...)
	},
	func(r *rand.Rand, b []byte) []byte { // delete a span
		if len(b) == 0 {
			return b
		}
		i := r.IntN(len(b))
		j := min(len(b), i+1+r.IntN(8))
		return append(b[:i:i], b[j:]...)
	},
	func(r *rand.Rand, b []byte) []byte { // truncate
		return b[:r.IntN(len(b)+1)]
	},
	func(r *rand.Rand, b []byte) []byte { // repeat a span
		if len(b) == 0 {
			return b
		}
		i := r.IntN(len(b))
		j := min(len(b), i+1+r.IntN(32))
		span := bytes.Repeat(b[i:j], 1+r.IntN(20))
		return append(b[:j:j], append(span, b[j:]...)...)
	},
	func(r *rand.Rand, b []byte) []byte { // bare LF or CR line endings
		if r.IntN(2) == 0 {
			return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		}
		return bytes.Replace(b, []byte("\r\n"), []byte("\r"), 1)
	},
	// structure-aware
	func(r *rand.Rand, b []byte) []byte { // an odd request line
		return fuzzEditHead(b, func(lines [][]byte) [][]byte {
			lines[0] = []byte(fuzzRequestLines[r.IntN(len(fuzzRequestLines))])
			return lines
		})
	},
	func(r *rand.Rand, b []byte) []byte { // an odd field
		return fuzzEditHead(b, func(lines [][]byte) [][]byte {
			i := 1 + r.IntN(len(lines))
			f := []byte(fuzzOddFields[r.IntN(len(fuzzOddFields))])
			return append(lines[:i:i], append([][]byte{f}, lines[i:]...)...)
		})
	},
	func(r *rand.Rand, b []byte) []byte { // an odd value for an existing field
		return fuzzEditHead(b, func(lines [][]byte) [][]byte {
			if len(lines) < 2 {
				return lines
			}
			i := 1 + r.IntN(len(lines)-1)
			name, _, _ := bytes.Cut(lines[i], []byte(":"))
			lines[i] = fmt.Appendf(nil, "%s: %s", name, fuzzOddValues[r.IntN(len(fuzzOddValues))])
			return lines
		})
	},
	func(r *rand.Rand, b []byte) []byte { // a huge value, around the head limit
		sizes := []int{1 << 10, 8 << 10, 16<<10 - 100, 16 << 10, 17 << 10, 64 << 10}
		return fuzzEditHead(b, func(lines [][]byte) [][]byte {
			v := "X-Huge: " + strings.Repeat(string(rune('A'+r.IntN(26))), sizes[r.IntN(len(sizes))])
			return append(lines, []byte(v))
		})
	},
	func(r *rand.Rand, b []byte) []byte { // many fields
		return fuzzEditHead(b, func(lines [][]byte) [][]byte {
			for i := range 50 + r.IntN(1500) {
				lines = append(lines, fmt.Appendf(nil, "X-Many-%d: v", i))
			}
			return lines
		})
	},
	func(r *rand.Rand, b []byte) []byte { // a bad chunk size
		i := bytes.Index(b, []byte("\r\n\r\n5\r\n"))
		if i < 0 {
			return b
		}
		i += 4
		return append(b[:i:i], append([]byte(fuzzChunkSizes[r.IntN(len(fuzzChunkSizes))]), b[i+1:]...)...)
	},
}

// fuzzEditHead lets edit change the lines of the head (request line first)
// and puts the message back together; a message whose head end was already
// mutated away is returned unchanged.
func fuzzEditHead(b []byte, edit func([][]byte) [][]byte) []byte {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return b
	}
	lines := edit(bytes.Split(head, []byte("\r\n")))
	out := bytes.Join(lines, []byte("\r\n"))
	out = append(out, "\r\n\r\n"...)
	return append(out, body...)
}

func fuzzRandomBytes(r *rand.Rand) []byte {
	b := make([]byte, 1+r.IntN(512))
	if r.IntN(2) == 0 {
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	}
	// Bytes an HTTP parser cares about, so that some of them look like the
	// start of a request.
	const alphabet = "GETPOST /HTTP1.0\r\n:; \x00Host-Length"
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

const (
	// slowGap is the pause between two bytes of the trickling client.
	slowGap = 10 * time.Millisecond
	// slowRequests other requests must complete while it trickles, each
	// within slowBound, a bound generous enough for a loaded machine and
	// far below what waiting for the trickle to end would take.
	slowRequests = 20
	slowBound    = 3 * time.Second
)

// slowClient checks that a client sending its head one byte at a time does
// not hold up other clients. The trickle does not end before the other
// requests are done, so a proxy that serves it first never serves them.
func slowClient(e *Env) error {
	slow, err := e.Connect()
	if err != nil {
		return err
	}
	const prefix = "GET /echo/slow HTTP/1.1\r\nHost: slow\r\nX-Pad: "
	stop := make(chan struct{})
	underway := make(chan struct{})
	type trickled struct {
		pad int
		err error
	}
	done := make(chan trickled, 1)
	go func() {
		pad := 0
		send := func(b byte) error {
			if _, err := slow.Write([]byte{b}); err != nil {
				return fmt.Errorf("the proxy closed the trickling connection after %d bytes: %w", len(prefix)+pad, err)
			}
			time.Sleep(slowGap)
			return nil
		}
		for i := range len(prefix) {
			if err := send(prefix[i]); err != nil {
				done <- trickled{err: err}
				return
			}
			if i == 20 {
				close(underway)
			}
		}
	trickle:
		for {
			select {
			case <-stop:
				break trickle
			default:
			}
			if err := send('p'); err != nil {
				done <- trickled{err: err}
				return
			}
			pad++
		}
		for _, b := range []byte("\r\n\r\n") {
			if err := send(b); err != nil {
				done <- trickled{err: err}
				return
			}
		}
		done <- trickled{pad: pad}
	}()
	select {
	case <-underway:
	case t := <-done:
		return t.err
	}

	normalErr := slowOthers(e)
	close(stop)
	t := <-done
	if normalErr != nil {
		return normalErr
	}
	if t.err != nil {
		return t.err
	}
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := slow.Read("GET")
	if err != nil {
		return fmt.Errorf("the trickled request: %w", err)
	}
	echo, err := ParseEcho(r)
	if err != nil {
		return fmt.Errorf("the trickled request: %w", err)
	}
	if pad := echo.Values("X-Pad"); len(pad) != 1 || pad[0] != strings.Repeat("p", t.pad) {
		return fmt.Errorf("the trickled request reached the upstream with X-Pad %q, want %d bytes of p", pad, t.pad)
	}
	return nil
}

// slowOthers makes the normal requests, one connection each.
func slowOthers(e *Env) error {
	for i := range slowRequests {
		c, err := e.Connect()
		if err != nil {
			return fmt.Errorf("request %d of %d while another client trickled its head: %w", i+1, slowRequests, err)
		}
		start := time.Now()
		c.SetDeadline(start.Add(slowBound))
		r, err := c.Do("GET", "GET /?size=1000 HTTP/1.1\r\nHost: normal\r\n\r\n")
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return fmt.Errorf("request %d of %d got no answer within %s while another client trickled its head", i+1, slowRequests, slowBound)
		case err != nil:
			return fmt.Errorf("request %d of %d while another client trickled its head: %w", i+1, slowRequests, err)
		case r.StatusCode != http.StatusOK || !bytes.Equal(r.Body, Pattern(1000)):
			return fmt.Errorf("request %d of %d while another client trickled its head: %s with %d bytes, want 200 with the 1000-byte pattern", i+1, slowRequests, r.Status, len(r.Body))
		}
		c.Close()
	}
	return nil
}
