package scenarios

import "testing"

func TestClosest(t *testing.T) {
	load := []string{"method", "path", "body_bytes", "connections", "keepalive", "steps", "search"}
	step := []string{"rate", "duration"}
	tests := []struct {
		key        string
		candidates []string
		want       string
	}{
		{"conections", load, "connections"},
		{"Connections", load, "connections"},
		{"keep_alive", load, "keepalive"},
		{"step", load, "steps"},
		{"serach", load, "search"},
		{"mdoe", []string{"enabled", "mode", "perf_buffer_pages"}, "mode"},
		{"rtae", step, "rate"},
		{"body-bytes", load, "body_bytes"},
		{"rat", step, "rate"},
		{"rates", step, "rate"},
		{"durations_s", step, "duration"},
		{"base", []string{"name", "load"}, ""},
		{"url", load, ""},
		{"concurrency", load, ""},
		{"x", step, ""},
	}
	for _, tt := range tests {
		if got := closest(tt.key, tt.candidates); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
