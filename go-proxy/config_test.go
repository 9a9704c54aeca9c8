package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    func(*config)
		errName string // the variable the error must name; "" means no error
	}{
		{"defaults", nil, func(*config) {}, ""},
		{"all set", map[string]string{
			"LISTEN_ADDR": "0.0.0.0:8081", "UPSTREAM_ADDR": "[::1]:9001", "WORKERS": "3",
			"UPSTREAM_TIMEOUT_MS": "250", "MAX_HEADER_BYTES": "8192", "MAX_BODY_BYTES": "1",
		}, func(c *config) {
			*c = config{listenAddr: "0.0.0.0:8081", upstreamAddr: "[::1]:9001", workers: 3,
				upstreamTimeout: 250 * time.Millisecond, maxHeaderBytes: 8192, maxBodyBytes: 1,
				clientWriteProgress: 30 * time.Second}
		}, ""},
		{"listen without port", map[string]string{"LISTEN_ADDR": "localhost"}, nil, "LISTEN_ADDR"},
		{"listen port not a number", map[string]string{"LISTEN_ADDR": ":http"}, nil, "LISTEN_ADDR"},
		{"upstream by name", map[string]string{"UPSTREAM_ADDR": "localhost:9000"}, nil, "UPSTREAM_ADDR"},
		{"upstream without port", map[string]string{"UPSTREAM_ADDR": "127.0.0.1"}, nil, "UPSTREAM_ADDR"},
		{"upstream port zero", map[string]string{"UPSTREAM_ADDR": "127.0.0.1:0"}, nil, "UPSTREAM_ADDR"},
		{"workers zero", map[string]string{"WORKERS": "0"}, nil, "WORKERS"},
		{"workers not a number", map[string]string{"WORKERS": "auto"}, nil, "WORKERS"},
		{"timeout zero", map[string]string{"UPSTREAM_TIMEOUT_MS": "0"}, nil, "UPSTREAM_TIMEOUT_MS"},
		{"timeout with unit", map[string]string{"UPSTREAM_TIMEOUT_MS": "5s"}, nil, "UPSTREAM_TIMEOUT_MS"},
		{"header limit negative", map[string]string{"MAX_HEADER_BYTES": "-1"}, nil, "MAX_HEADER_BYTES"},
		{"body limit too big", map[string]string{"MAX_BODY_BYTES": "2147483648"}, nil, "MAX_BODY_BYTES"},
		{"measurement switch on", map[string]string{"PROXYLAB_MEASURE_SKIP_RESPLIT": "1"},
			func(c *config) { c.measureSkipResplit = true }, ""},
		{"measurement switch off", map[string]string{"PROXYLAB_MEASURE_SKIP_RESPLIT": "0"}, func(*config) {}, ""},
		{"measurement switch misspelt", map[string]string{"PROXYLAB_MEASURE_SKIP_RESPLIT": "yes"}, nil,
			"PROXYLAB_MEASURE_SKIP_RESPLIT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadConfig(func(k string) string { return tc.env[k] })
			if tc.errName != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errName) {
					t.Fatalf("error %v, want one naming %s", err, tc.errName)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaultConfig()
			tc.want(&want)
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		message string
	}{
		{"arguments", []string{"-listen", ":1"}, nil, "no arguments"},
		{"bad workers", nil, map[string]string{"WORKERS": "many"}, "WORKERS"},
		{"bad upstream", nil, map[string]string{"UPSTREAM_ADDR": "upstream:9000"}, "UPSTREAM_ADDR"},
		{"bad body limit", nil, map[string]string{"MAX_BODY_BYTES": "16M"}, "MAX_BODY_BYTES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tc.args, func(k string) string { return tc.env[k] }, &stderr); code != 2 {
				t.Fatalf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.message) {
				t.Fatalf("stderr %q does not mention %s", stderr.String(), tc.message)
			}
		})
	}
}
