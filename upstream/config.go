package main

import (
	"fmt"
	"net"
	"strconv"
)

const (
	defaultListenAddr    = "127.0.0.1:9000"
	defaultResponseBytes = 1024

	// maxBodyBytes bounds every body size the server can be asked for, so a
	// typo in a scenario cannot make it stream for hours.
	maxBodyBytes = 1 << 30
)

type config struct {
	listenAddr    string
	responseBytes int
}

func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{listenAddr: defaultListenAddr, responseBytes: defaultResponseBytes}
	if v := getenv("LISTEN_ADDR"); v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil || !validPort(port) {
			return config{}, fmt.Errorf("invalid LISTEN_ADDR=%q: want host:port", v)
		}
		cfg.listenAddr = v
	}
	if v := getenv("RESPONSE_BYTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxBodyBytes {
			return config{}, fmt.Errorf("invalid RESPONSE_BYTES=%q: want an integer from 0 to %d", v, maxBodyBytes)
		}
		cfg.responseBytes = n
	}
	return cfg, nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}
