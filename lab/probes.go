package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/loadgen"
)

// StepProbes is what the probes counted for the proxy's processes in one
// step, and beside it an independent count of the same connections.
type StepProbes struct {
	bpf.Counts
	Check *ConnectionCheck `json:"check,omitempty"`
}

// UnmarshalJSON reads both parts: bpf.Counts has a decoder of its own,
// which embedding would otherwise let swallow the whole object.
func (s *StepProbes) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &s.Counts); err != nil {
		return err
	}
	var rest struct {
		Check *ConnectionCheck `json:"check"`
	}
	if err := json.Unmarshal(b, &rest); err != nil {
		return err
	}
	s.Check = rest.Check
	return nil
}

// ConnectionCheck counts the step's connections at their other ends: every
// connection the proxy accepts was opened by the load generator, and every
// one it opens to the upstream is accepted there. A probe count that
// differs from its check by more than Tolerance lost or invented events.
type ConnectionCheck struct {
	// LoadgenConnections the load generator opened: the proxy's accepts.
	LoadgenConnections uint64 `json:"loadgen_connections"`
	// UpstreamConnections the upstream accepted (its /stats, less the
	// query's own connection): the proxy's connects. Absent when /stats
	// could not be read; UpstreamError says why.
	UpstreamConnections *uint64 `json:"upstream_connections,omitempty"`
	// UpstreamRequests the upstream answered, /stats not included.
	UpstreamRequests *uint64 `json:"upstream_requests,omitempty"`
	UpstreamError    string  `json:"upstream_error,omitempty"`
	// Tolerance is the step's requests that did not succeed. The cuts fall
	// between steps, with no request in flight, so only a request that
	// failed can leave its connection counted at one end and not the
	// other (dialled but never accepted, or accepted after the cut).
	Tolerance uint64 `json:"tolerance"`
}

// AcceptsOff is how far the accepts are from the load generator's count
// beyond the tolerance; 0 when they agree.
func (s *StepProbes) AcceptsOff() uint64 {
	if s.Check == nil {
		return 0
	}
	return beyond(s.Accepts, s.Check.LoadgenConnections, s.Check.Tolerance)
}

// ConnectsOff is the same for the connects and the upstream's count.
func (s *StepProbes) ConnectsOff() uint64 {
	if s.Check == nil || s.Check.UpstreamConnections == nil {
		return 0
	}
	return beyond(s.Connects, *s.Check.UpstreamConnections, s.Check.Tolerance)
}

func beyond(a, b, tol uint64) uint64 {
	d := max(a, b) - min(a, b)
	if d <= tol {
		return 0
	}
	return d - tol
}

// upstreamStats is what the upstream's /stats says.
type upstreamStats struct {
	Accepted uint64 `json:"connections_accepted"`
	Requests uint64 `json:"requests"`
}

// statsTimeout bounds one /stats query between steps.
const statsTimeout = 2 * time.Second

// readUpstreamStats asks the upstream at addr for its counts, on a
// connection of its own that it counts too.
func readUpstreamStats(ctx context.Context, addr string) (upstreamStats, error) {
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats", nil)
	if err != nil {
		return upstreamStats{}, err
	}
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return upstreamStats{}, fmt.Errorf("upstream /stats: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil || resp.StatusCode != http.StatusOK {
		return upstreamStats{}, fmt.Errorf("upstream /stats: status %d, %v", resp.StatusCode, err)
	}
	var s upstreamStats
	if err := json.Unmarshal(body, &s); err != nil {
		return upstreamStats{}, fmt.Errorf("upstream /stats answered %q: %w", body, err)
	}
	return s, nil
}

// checkReading is one end of a step's connection check.
type checkReading struct {
	dials    uint64
	upstream upstreamStats
	upErr    error
}

// connectionCheck is the check over a step from its two readings. An
// interrupted step cut up to one request per connection short, and each
// of those may be counted at one end only.
func connectionCheck(before, after checkReading, res *loadgen.StepResult, connections int) *ConnectionCheck {
	c := &ConnectionCheck{
		LoadgenConnections: after.dials - before.dials,
		Tolerance:          failedRequests(res),
	}
	if res.Interrupted {
		c.Tolerance += uint64(connections)
	}
	switch {
	case before.upErr != nil:
		c.UpstreamError = before.upErr.Error()
	case after.upErr != nil:
		c.UpstreamError = after.upErr.Error()
	default:
		// The later query's own connection is counted in after.
		conns := after.upstream.Accepted - before.upstream.Accepted - 1
		reqs := after.upstream.Requests - before.upstream.Requests
		c.UpstreamConnections, c.UpstreamRequests = &conns, &reqs
	}
	return c
}

// failedRequests is how many of the step's requests did not succeed.
func failedRequests(res *loadgen.StepResult) uint64 {
	ok := uint64(0)
	for code, n := range res.StatusCodes {
		if len(code) == 3 && (code[0] == '2' || code[0] == '3') {
			ok += n
		}
	}
	return res.Requests - min(ok, res.Requests)
}

// Overhead compares a step with its twin measured with the probes
// detached (probes.overhead). Ratios are on / off: a throughput ratio below
// 1 and a CPU-per-request ratio above 1 are what the probes cost.
type Overhead struct {
	OffFirst           bool     `json:"off_first"` // the detached twin ran before the step
	Off                OffStep  `json:"off"`
	ThroughputRatio    *float64 `json:"throughput_ratio,omitempty"`      // absent when the twin served nothing
	CPUPerRequestRatio *float64 `json:"cpu_per_request_ratio,omitempty"` // absent without proxy CPU figures on both
}

// OffStep is what the detached twin of a step measured.
type OffStep struct {
	Throughput       float64  `json:"throughput"`
	AchievedRate     float64  `json:"achieved_rate"`
	Requests         uint64   `json:"requests"`
	Success          float64  `json:"success"`
	LoadgenSaturated bool     `json:"loadgen_saturated"`
	ProxyCPUSeconds  *float64 `json:"proxy_cpu_seconds,omitempty"`
}

// overheadOf sets the ratios of on against off.
func overheadOf(on *Step, off OffStep, offFirst bool) *Overhead {
	o := &Overhead{OffFirst: offFirst, Off: off}
	if off.Throughput > 0 {
		r := on.Throughput / off.Throughput
		o.ThroughputRatio = &r
	}
	if res := on.Resources; res != nil && !res.NoProxy && off.ProxyCPUSeconds != nil && on.Requests > 0 && off.Requests > 0 && *off.ProxyCPUSeconds > 0 {
		r := (res.ProxyCPUSeconds / float64(on.Requests)) / (*off.ProxyCPUSeconds / float64(off.Requests))
		o.CPUPerRequestRatio = &r
	}
	return o
}
