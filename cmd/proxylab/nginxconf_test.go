package main

import (
	"strings"
	"testing"

	"github.com/proxylab/proxylab/lab"
)

func TestNginxHostConfig(t *testing.T) {
	cases := []struct {
		name                      string
		listen, upstream, tempDir string
		settings                  lab.NginxSettings
		want                      []string
		wantErr                   string
	}{
		{
			name: "host addresses and temp dir", listen: "127.0.0.1:18084", upstream: "127.0.0.1:40123", tempDir: "/run/bench.x1/nginx/",
			settings: lab.NginxSettings{Workers: 1, Connections: 400},
			want: []string{
				"listen 127.0.0.1:18084;", "server 127.0.0.1:40123;", "worker_processes 1;", "worker_connections 864;",
				"keepalive 400;", "pid /run/bench.x1/nginx/nginx.pid;", "proxy_temp_path /run/bench.x1/nginx/proxy;",
				"client_body_temp_path /run/bench.x1/nginx/client_body;",
			},
		},
		{
			name: "lab defaults", listen: lab.Nginx.Addr(), upstream: lab.Upstream.Addr(), tempDir: "/tmp",
			settings: lab.NginxSettings{Workers: 1, Connections: 64},
			want:     []string{"listen 127.0.0.1:8084;", "server 127.0.0.1:9000;", "pid /tmp/nginx.pid;"},
		},
		{name: "listen not loopback", listen: "0.0.0.0:80", upstream: "127.0.0.1:9000", tempDir: "/tmp",
			settings: lab.NginxSettings{Workers: 1, Connections: 1}, wantErr: "--listen"},
		{name: "upstream without port", listen: "127.0.0.1:1", upstream: "127.0.0.1", tempDir: "/tmp",
			settings: lab.NginxSettings{Workers: 1, Connections: 1}, wantErr: "--upstream"},
		{name: "port 0", listen: "127.0.0.1:0", upstream: "127.0.0.1:9000", tempDir: "/tmp",
			settings: lab.NginxSettings{Workers: 1, Connections: 1}, wantErr: "port other than 0"},
		{name: "no workers", listen: "127.0.0.1:1", upstream: "127.0.0.1:2", tempDir: "/tmp",
			settings: lab.NginxSettings{Workers: 0, Connections: 1}, wantErr: "at least 1"},
		{name: "relative temp dir", listen: "127.0.0.1:1", upstream: "127.0.0.1:2", tempDir: "tmp",
			settings: lab.NginxSettings{Workers: 1, Connections: 1}, wantErr: "--temp-dir"},
		{name: "temp dir with a semicolon", listen: "127.0.0.1:1", upstream: "127.0.0.1:2", tempDir: "/tmp/a;b",
			settings: lab.NginxSettings{Workers: 1, Connections: 1}, wantErr: "--temp-dir"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf, err := nginxHostConfig(c.settings, c.listen, c.upstream, c.tempDir)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(conf, w) {
					t.Errorf("configuration lacks %q:\n%s", w, conf)
				}
			}
			// Every file nginx writes must have moved to the temp dir.
			if c.tempDir != "/tmp" && strings.Contains(conf, " /tmp/") {
				t.Errorf("configuration still writes to /tmp:\n%s", conf)
			}
		})
	}
}
