package scenarios

import "time"

// defaulter is a type whose absent keys have non-zero defaults. Defaults are
// set before decoding so that a key that is present, even with a zero value
// such as "warmup: 0s" or "keepalive: false", always wins.
type defaulter interface{ setDefaults() }

func (s *Scenario) setDefaults() {
	s.Repeat = 1
	s.Warmup = Duration(5 * time.Second)
	s.Upstream.ResponseBytes = 1024
	s.Load.Model = ModelOpen
	s.Load.Method = "GET"
	s.Load.Path = "/"
	s.Load.Connections = 64
	s.Load.Keepalive = true
	s.Probes.Mode = "auto"
	s.Probes.PerfBufferPages = 64
}

func (s *Search) setDefaults() {
	s.MinSuccess = 0.999
	s.StepDuration = Duration(10 * time.Second)
}
