package main

import "testing"

func TestIsHopByHop(t *testing.T) {
	cases := map[string]bool{
		"Connection": true, "keep-alive": true, "PROXY-CONNECTION": true, "Proxy-Authenticate": true,
		"proxy-authorization": true, "TE": true, "Trailer": true, "transfer-encoding": true, "Upgrade": true,
		"Trailers": false, "Te-": false, "Host": false, "Content-Length": false, "X-Connection": false,
		"Keep-Alives": false, "": false,
	}
	for name, want := range cases {
		if got := isHopByHop([]byte(name)); got != want {
			t.Errorf("isHopByHop(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestConnectionLists(t *testing.T) {
	cases := []struct {
		value      string
		name       string
		lists      bool
		namesOther bool
	}{
		{"close", "close", true, false},
		{"Keep-Alive", "keep-alive", true, false},
		{" close ,\tkeep-alive ", "X-A", false, false},
		{"close, X-A", "x-a", true, true},
		{"x-a,,x-b", "X-B", true, true},
		{",", "", true, false},
		{"X-AB", "X-A", false, true},
		{"", "X-A", false, false},
	}
	for _, tc := range cases {
		if got := listsName([]byte(tc.value), []byte(tc.name)); got != tc.lists {
			t.Errorf("listsName(%q, %q) = %v, want %v", tc.value, tc.name, got, tc.lists)
		}
		if got := namesFields([]byte(tc.value)); got != tc.namesOther {
			t.Errorf("namesFields(%q) = %v, want %v", tc.value, got, tc.namesOther)
		}
	}
}
