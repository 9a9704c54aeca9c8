package main

import (
	"net"
	"sync/atomic"
)

// countingListener counts accepted connections. The count is what lets the
// lab and the tests see whether a proxy reuses its upstream connections.
type countingListener struct {
	net.Listener
	accepted atomic.Uint64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}
