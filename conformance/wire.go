package conformance

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Conn is a raw client connection: requests go out byte for byte as the
// case wrote them, responses are parsed strictly.
type Conn struct {
	net.Conn
	R *bufio.Reader
}

// Connect opens a raw connection to the shared proxy.
func (e *Env) Connect() (*Conn, error) { return e.ConnectTo(e.Proxy()) }

// ConnectTo opens a raw connection to addr.
func (e *Env) ConnectTo(addr string) (*Conn, error) {
	c, err := e.Dial(addr)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c, R: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Send writes raw bytes.
func (c *Conn) Send(raw string) error {
	_, err := io.WriteString(c.Conn, raw)
	return err
}

// Response is one parsed response with its whole body.
type Response struct {
	*http.Response
	Body []byte
}

// Read reads one response to a request with the given method (HEAD
// responses have no body whatever their headers say).
func (c *Conn) Read(method string) (*Response, error) {
	resp, err := http.ReadResponse(c.R, &http.Request{Method: method})
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	return &Response{Response: resp, Body: body}, nil
}

// Do sends raw and reads the response to it.
func (c *Conn) Do(method, raw string) (*Response, error) {
	if err := c.Send(raw); err != nil {
		return nil, err
	}
	return c.Read(method)
}

// Closed reports whether the peer closed the connection within wait: the
// proxy's way of ending a stream it no longer trusts.
func (c *Conn) Closed(wait time.Duration) error {
	c.SetReadDeadline(time.Now().Add(wait))
	b, err := c.R.ReadByte()
	switch {
	case err == nil:
		return fmt.Errorf("connection still open: read %q", b)
	case errors.Is(err, io.EOF), isReset(err):
		return nil
	default:
		return fmt.Errorf("connection not closed within %s: %v", wait, err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// Echo is what the upstream's /echo reports it received.
type Echo struct {
	Method     string      `json:"method"`
	Target     string      `json:"target"`
	Headers    [][2]string `json:"headers"`
	BodyBytes  int64       `json:"body_bytes"`
	BodySHA256 string      `json:"body_sha256"`
}

// ParseEcho decodes an /echo answer.
func ParseEcho(r *Response) (*Echo, error) {
	if r.StatusCode != 200 {
		return nil, fmt.Errorf("/echo answered %s: %q", r.Status, clip(r.Body))
	}
	var e Echo
	if err := json.Unmarshal(r.Body, &e); err != nil {
		return nil, fmt.Errorf("/echo answer is not its JSON: %v: %q", err, clip(r.Body))
	}
	return &e, nil
}

// Values returns the values of every field named name (any case), in order.
func (e *Echo) Values(name string) []string {
	var v []string
	for _, h := range e.Headers {
		if strings.EqualFold(h[0], name) {
			v = append(v, h[1])
		}
	}
	return v
}

// Pattern is the upstream's body pattern: byte i is 'a'+i%26.
func Pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// SHA256 is the hex digest the upstream reports for a body.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// clip shortens what a failure message quotes.
func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
