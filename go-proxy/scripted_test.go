package main

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// scriptedUpstream is a raw TCP upstream whose every connection runs a
// script; heads keeps every request head it read, in arrival order.
type scriptedUpstream struct {
	addr     string
	accepted atomic.Int32
	mu       sync.Mutex
	heads    []string
	// rawBodies: see answerReadingBodies.
	rawBodies []string
}

// upstreamConnScript serves one upstream connection; n counts connections
// from 0. It reads requests with s.readHead.
type upstreamConnScript func(s *scriptedUpstream, n int, c net.Conn, br *bufio.Reader)

func scripted(t *testing.T, script upstreamConnScript) *scriptedUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedUpstream{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.accepted.Add(1)) - 1
			go func() {
				defer c.Close()
				script(s, n, c, bufio.NewReader(c))
			}()
		}
	}()
	return s
}

// readHead reads one request head and records it; ok is false when the
// connection ended first.
func (s *scriptedUpstream) readHead(br *bufio.Reader) (head string, ok bool) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", false
		}
		b.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	s.mu.Lock()
	s.heads = append(s.heads, b.String())
	s.mu.Unlock()
	return b.String(), true
}

func (s *scriptedUpstream) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.heads...)
}

// answerEach answers every request on every connection with answer.
func answerEach(answer string) upstreamConnScript {
	return func(s *scriptedUpstream, _ int, c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := s.readHead(br); !ok {
				return
			}
			if _, err := c.Write([]byte(answer)); err != nil {
				return
			}
		}
	}
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// bodies returns the raw chunked request bodies answerReadingBodies has
// read, in arrival order.
func (s *scriptedUpstream) bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rawBodies...)
}

// answerReadingBodies answers every request with what answer says for its
// head, reading a chunked body first and recording it raw. It reads only framing the proxy may
// send (bare hex sizes, CRLF, no trailer fields) and stops at anything
// else, so an extension or trailer that got through shows as a missing
// answer and a body that is not recorded.
func answerReadingBodies(answer func(head string) string) upstreamConnScript {
	return func(s *scriptedUpstream, _ int, c net.Conn, br *bufio.Reader) {
		for {
			head, ok := s.readHead(br)
			if !ok {
				return
			}
			if strings.Contains(strings.ToLower(head), "\r\ntransfer-encoding: chunked\r\n") {
				body, ok := readReframed(br)
				if !ok {
					return
				}
				s.mu.Lock()
				s.rawBodies = append(s.rawBodies, body)
				s.mu.Unlock()
			}
			if _, err := io.WriteString(c, answer(head)); err != nil {
				return
			}
		}
	}
}

// readReframed reads a chunked body as the proxy frames it.
func readReframed(br *bufio.Reader) (string, bool) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return "", false
		}
		size, err := strconv.ParseUint(strings.TrimSuffix(line, "\r\n"), 16, 32)
		if err != nil {
			return "", false
		}
		b.WriteString(line)
		data := make([]byte, size+2)
		if _, err := io.ReadFull(br, data); err != nil || string(data[size:]) != "\r\n" {
			return "", false
		}
		b.Write(data)
		if size == 0 {
			return b.String(), true
		}
	}
}
