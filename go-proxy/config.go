package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

type config struct {
	listenAddr      string
	upstreamAddr    string
	workers         int // 0: leave GOMAXPROCS as the runtime chose it
	upstreamTimeout time.Duration
	maxHeaderBytes  int
	maxBodyBytes    int
	// clientWriteProgress is the contract's fixed 30 s, never read from
	// the environment; a field only so that tests can shorten it.
	clientWriteProgress time.Duration
	// measureSkipResplit (PROXYLAB_MEASURE_SKIP_RESPLIT=1) exists only to
	// measure what the proxy's own head handling costs: it forwards the
	// request head as fasthttp kept it and relays the response head as
	// fasthttp parsed it, so hop-by-hop fields pass, absolute-form targets
	// are not rewritten and framing is not checked. The proxy does not meet
	// the contract with it set.
	measureSkipResplit bool
}

// Upper bounds keep a typo from turning into an absurd allocation or a
// timeout that never fires in practice.
const (
	maxWorkers        = 1 << 12
	maxTimeoutMillis  = 24 * 60 * 60 * 1000
	maxHeaderBytesCap = 1 << 24
	maxBodyBytesCap   = 1<<31 - 1
)

func defaultConfig() config {
	return config{
		listenAddr:          "127.0.0.1:8080",
		upstreamAddr:        "127.0.0.1:9000",
		upstreamTimeout:     5 * time.Second,
		maxHeaderBytes:      16384,
		maxBodyBytes:        16777216,
		clientWriteProgress: clientWriteProgress,
	}
}

func loadConfig(getenv func(string) string) (config, error) {
	cfg := defaultConfig()
	if v := getenv("LISTEN_ADDR"); v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil || !validPort(port) {
			return config{}, fmt.Errorf("invalid LISTEN_ADDR=%q: want host:port", v)
		}
		cfg.listenAddr = v
	}
	if v := getenv("UPSTREAM_ADDR"); v != "" {
		ap, err := netip.ParseAddrPort(v)
		if err != nil || ap.Port() == 0 {
			return config{}, fmt.Errorf("invalid UPSTREAM_ADDR=%q: want an IP:port such as 127.0.0.1:9000", v)
		}
		cfg.upstreamAddr = v
	}
	ints := []struct {
		name     string
		min, max int
		dst      *int
	}{
		{"WORKERS", 1, maxWorkers, &cfg.workers},
		{"MAX_HEADER_BYTES", 1, maxHeaderBytesCap, &cfg.maxHeaderBytes},
		{"MAX_BODY_BYTES", 1, maxBodyBytesCap, &cfg.maxBodyBytes},
	}
	for _, it := range ints {
		if err := intVar(getenv, it.name, it.min, it.max, it.dst); err != nil {
			return config{}, err
		}
	}
	switch v := getenv("PROXYLAB_MEASURE_SKIP_RESPLIT"); v {
	case "", "0":
	case "1":
		cfg.measureSkipResplit = true
	default:
		return config{}, fmt.Errorf("invalid PROXYLAB_MEASURE_SKIP_RESPLIT=%q: want 0 or 1", v)
	}
	ms := 0
	if err := intVar(getenv, "UPSTREAM_TIMEOUT_MS", 1, maxTimeoutMillis, &ms); err != nil {
		return config{}, err
	}
	if ms > 0 {
		cfg.upstreamTimeout = time.Duration(ms) * time.Millisecond
	}
	return cfg, nil
}

// intVar parses the variable into dst when it is set and leaves dst alone
// when it is empty.
func intVar(getenv func(string) string, name string, min, max int, dst *int) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return fmt.Errorf("invalid %s=%q: want an integer from %d to %d", name, v, min, max)
	}
	*dst = n
	return nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}
