package report

import (
	"strings"
	"testing"

	"github.com/proxylab/proxylab/lab"
)

// A diff says how the two hosts compare before it compares a proxy, and
// only beyond the calibration's own spread.
func TestHostSpeed(t *testing.T) {
	cal := func(rate float64) *lab.Calibration {
		return &lab.Calibration{AchievedRate: rate, Connections: 64, Duration: 3}
	}
	tests := []struct {
		name string
		a, b *lab.Calibration
		want string
	}{
		{"slower", cal(30000), cal(15800), "B's host was 1.9x slower than A's"},
		{"faster", cal(15000), cal(30000), "B's host was 2.0x faster than A's"},
		{"alike", cal(30000), cal(28000), "the same calibration rate within 10%"},
		{"older file", nil, cal(30000), ""},
		{"failed", &lab.Calibration{Error: "failed: no upstream"}, cal(30000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hostSpeed(tt.a, tt.b)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("hostSpeed = %q, want %q", got, tt.want)
			}
		})
	}
}
