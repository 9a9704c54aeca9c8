package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The fixtures are ldd's real output for Debian's nginx, and for the cases a
// host can present instead.
func TestParseLdd(t *testing.T) {
	cases := []struct {
		file    string
		want    []string
		wantErr string
	}{
		{"debian-nginx.txt", []string{
			"/lib/x86_64-linux-gnu/libcrypt.so.1", "/lib/x86_64-linux-gnu/libpcre2-8.so.0", "/lib/x86_64-linux-gnu/libssl.so.3",
			"/lib/x86_64-linux-gnu/libcrypto.so.3", "/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libc.so.6",
			"/lib64/ld-linux-x86-64.so.2",
		}, ""},
		{"static.txt", nil, ""},
		{"missing.txt", nil, "a library of nginx is missing: \tlibpcre2-8.so.0 => not found"},
		{"not-dynamic.txt", nil, "no libraries and no interpreter"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "ldd", c.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseLdd(b)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("parseLdd = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// The configuration follows the run: workers from the proxy's cpuset, and
// connection slots and the upstream pool from the scenario's connections.
func TestNginxConfig(t *testing.T) {
	conf := nginxConfig(NginxSettings{Workers: 3, Connections: 100})
	for _, want := range []string{
		"worker_processes 3;", "worker_connections 264;", "keepalive 100;",
		"listen 127.0.0.1:8084;", "server 127.0.0.1:9000;",
		"proxy_http_version 1.1;", `proxy_set_header Connection "";`, "access_log off;",
		"pid /tmp/nginx.pid;", "error_log stderr warn;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("configuration lacks %q:\n%s", want, conf)
		}
	}
}
