package lab

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/proxylab/proxylab/scenarios"
)

// Calibration is what a short fixed benchmark of the host measured: the
// direct row (load generator and upstream, no proxy) in the closed model at
// a fixed number of connections, before any row of the scenario.
type Calibration struct {
	Connections  int     `json:"connections"`
	Duration     float64 `json:"duration"`      // seconds
	AchievedRate float64 `json:"achieved_rate"` // requests per second
	P50          int64   `json:"latency_p50_us"`
	P99          int64   `json:"latency_p99_us"`
	// LoadgenCPUSeconds and UpstreamCPUSeconds say what the rate cost.
	LoadgenCPUSeconds  float64 `json:"loadgen_cpu_seconds"`
	UpstreamCPUSeconds float64 `json:"upstream_cpu_seconds,omitempty"`
	Error              string  `json:"error,omitempty"` // why there is no figure
}

// The calibration's fixed load: the direct row (no proxy) in the closed
// model, 64 keep-alive connections, 1 KiB answers, 3 s after 1 s of
// warm-up. It is short, so that it costs little in every file, and closed,
// so that its rate says how much the load generator and the upstream
// together get through on this host today.
const (
	calibrationConnections = 64
	calibrationDuration    = 3 * time.Second
	calibrationWarmup      = time.Second
)

// calibrate measures the host with the calibration load before the rows,
// through the same row machinery as any direct row. A calibration that
// fails says why and the run goes on: it describes the host, it is not a
// row of the comparison.
func (r *runner) calibrate(ctx context.Context) *Calibration {
	c := *r
	c.sc = &scenarios.Scenario{Name: r.sc.Name, Repeat: 1, Warmup: scenarios.Duration(calibrationWarmup),
		Upstream: scenarios.Upstream{ResponseBytes: 1024},
		Load: scenarios.Load{Model: scenarios.ModelClosed, Method: "GET", Path: "/", Connections: calibrationConnections,
			Keepalive: true, Steps: []scenarios.Step{{Duration: scenarios.Duration(calibrationDuration)}}}}
	c.rates, c.probes, c.o.RawDir, c.o.Observer = []int{0}, nil, "", nil
	direct := Direct
	direct.Name, direct.Port = "calibration", r.upstream.Port
	r.info(fmt.Sprintf("calibrating the host: no proxy, closed loop, %d connections, %s", calibrationConnections, calibrationDuration))
	run := c.runOne(ctx, &Artifact{Component: direct}, 0)
	cal := &Calibration{Connections: calibrationConnections}
	if run.Status != RunOK || len(run.Steps) != 1 {
		cal.Error = fmt.Sprintf("%s: %s", run.Status, run.Error)
		return cal
	}
	st := run.Steps[0]
	cal.Duration, cal.AchievedRate = st.Duration, math.Round(st.AchievedRate*10)/10
	cal.P50, cal.P99 = st.Latency.P50, st.Latency.P99
	if st.Resources != nil {
		cal.LoadgenCPUSeconds = st.Resources.LoadgenCPUSeconds
		if u := st.Resources.UpstreamCPUSeconds; u != nil {
			cal.UpstreamCPUSeconds = *u
		}
	}
	r.info(fmt.Sprintf("calibration: %.0f requests/s, p99 %s", cal.AchievedRate, micros(float64(cal.P99))))
	return cal
}

// disturbance says how the first disturbed step of run was disturbed.
func disturbance(run *Run) string {
	for i, st := range run.Steps {
		if st.Disturbed {
			return fmt.Sprintf("step %d: %s", i+1, st.Disturbance)
		}
	}
	return "something outside the run used its cores"
}
