package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    config
		errName string // the variable the error must name; "" means no error
	}{
		{"defaults", nil, config{listenAddr: "127.0.0.1:9000", responseBytes: 1024}, ""},
		{"set", map[string]string{"LISTEN_ADDR": "127.0.0.1:9100", "RESPONSE_BYTES": "0"},
			config{listenAddr: "127.0.0.1:9100", responseBytes: 0}, ""},
		{"largest size", map[string]string{"RESPONSE_BYTES": "1073741824"},
			config{listenAddr: "127.0.0.1:9000", responseBytes: 1 << 30}, ""},
		{"listen without port", map[string]string{"LISTEN_ADDR": "127.0.0.1"}, config{}, "LISTEN_ADDR"},
		{"listen bad port", map[string]string{"LISTEN_ADDR": "127.0.0.1:http"}, config{}, "LISTEN_ADDR"},
		{"listen port too big", map[string]string{"LISTEN_ADDR": "127.0.0.1:65536"}, config{}, "LISTEN_ADDR"},
		{"size not a number", map[string]string{"RESPONSE_BYTES": "1k"}, config{}, "RESPONSE_BYTES"},
		{"size negative", map[string]string{"RESPONSE_BYTES": "-1"}, config{}, "RESPONSE_BYTES"},
		{"size too big", map[string]string{"RESPONSE_BYTES": "1073741825"}, config{}, "RESPONSE_BYTES"},
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
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRunRejectsBadInvocation(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		message string
	}{
		{"arguments", []string{"--port=1"}, nil, "no arguments"},
		{"bad size", nil, map[string]string{"RESPONSE_BYTES": "many"}, "RESPONSE_BYTES"},
		{"bad address", nil, map[string]string{"LISTEN_ADDR": "nowhere"}, "LISTEN_ADDR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tc.args, func(k string) string { return tc.env[k] }, &stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.message) {
				t.Fatalf("stderr %q does not mention %q", stderr.String(), tc.message)
			}
		})
	}
}
