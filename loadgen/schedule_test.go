package loadgen

import (
	"slices"
	"testing"
	"time"
)

// TestScheduleDueTimes pins when hits are due: vegeta's constant pacer
// spaces them 1/rate apart from the first interval on, the last one due at
// the step's end; unpaced, every hit is due at once until the end.
func TestScheduleDueTimes(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name  string
		rate  int
		d     time.Duration
		at    []time.Duration // when each claim is made
		want  []time.Duration // due times of the claims that got a hit
		after int             // claims that must fail once the hits run out
		slots []time.Duration // when the pacer meant them to go out; nil: as due
	}{
		{"on time", 10, time.Second, make([]time.Duration, 12),
			[]time.Duration{100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms, 600 * ms, 700 * ms, 800 * ms, 900 * ms, 1000 * ms}, 2, nil},
		{"behind: due at once", 10, time.Second, []time.Duration{450 * ms, 450 * ms, 450 * ms, 450 * ms, 450 * ms, 450 * ms},
			[]time.Duration{450 * ms, 450 * ms, 450 * ms, 450 * ms, 500 * ms, 600 * ms}, 0,
			[]time.Duration{100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms, 600 * ms}},
		{"unpaced", 0, time.Second, []time.Duration{0, 10 * ms, 999 * ms, 1000 * ms, 1001 * ms},
			[]time.Duration{0, 10 * ms, 999 * ms, 1000 * ms}, 1, make([]time.Duration, 4)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSchedule(tc.rate, tc.d, time.Now())
			var got, slots []time.Duration
			failed := 0
			for _, now := range tc.at {
				due, slot, ok := s.claim(now)
				if !ok {
					failed++
					continue
				}
				got, slots = append(got, due), append(slots, slot)
			}
			if !slices.Equal(got, tc.want) || failed != tc.after {
				t.Errorf("due %v with %d refusals, want %v with %d", got, failed, tc.want, tc.after)
			}
			want := tc.slots
			if want == nil {
				want = tc.want
			}
			if !slices.Equal(slots, want) {
				t.Errorf("slots %v, want %v", slots, want)
			}
		})
	}
}

func TestScheduleHaltAndSendOrder(t *testing.T) {
	s := newSchedule(1, time.Hour, time.Now())
	s.halt()
	if _, _, ok := s.claim(0); ok {
		t.Error("a hit was handed out after halt")
	}
	var last time.Duration
	for want := range uint64(100) {
		seq, sent := s.send()
		if seq != want || sent < last {
			t.Fatalf("send %d: seq %d at %v after %v", want, seq, sent, last)
		}
		last = sent
	}
}
