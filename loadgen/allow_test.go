package loadgen

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// A target may name one address beyond loopback, the SUT host's; every
// other address stays refused, at validation and at every dial.
func TestAllowedAddressBeyondLoopback(t *testing.T) {
	sut := netip.MustParseAddr("10.254.254.2")
	cases := []struct {
		addr  string
		allow netip.Addr
		ok    bool
		want  string // in the error
	}{
		{"127.0.0.1:80", netip.Addr{}, true, ""},
		{"127.0.0.1:80", sut, true, ""},
		{"10.254.254.2:8081", sut, true, ""},
		{"[::ffff:10.254.254.2]:8081", sut, true, ""},
		{"10.254.254.2:8081", netip.Addr{}, false, "--sut-address"},
		{"10.254.254.1:8081", sut, false, "nor the system under test's address 10.254.254.2"},
		{"192.0.2.1:80", sut, false, "nor the system under test's address"},
		{"[::1]:80", sut, false, "nor the system under test's address"},
	}
	for _, tc := range cases {
		err := dialGuard(tc.allow)(context.Background(), "tcp", tc.addr, nil)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dial %s allowing %v: %v, want allowed %v (%q)", tc.addr, tc.allow, err, tc.ok, tc.want)
		}
		target := Target{URL: "http://" + tc.addr + "/", Allow: tc.allow}
		if err := target.validate(); (err == nil) != tc.ok {
			t.Errorf("target %s allowing %v: %v, want valid %v", target.URL, tc.allow, err, tc.ok)
		}
	}
}
