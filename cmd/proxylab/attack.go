package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/loadgen"
)

func newAttack() *cobra.Command {
	var (
		rate        int
		duration    time.Duration
		connections int
		noKeepAlive bool
		method      string
		bodyBytes   int
		headers     []string
		timeout     time.Duration
		rawPath     string
	)
	cmd := &cobra.Command{
		Use:   "attack URL",
		Short: "Send constant-rate load to one URL on 127.0.0.0/8 and print what it measured",
		Long: `attack runs one load step of the lab's load generator against a URL of your
choosing, without containers: the same open-model pacing, connection handling
and measurements a compare step uses. --rate 0 sends as fast as the
connections allow, which measures the ceiling of the target or of the load
generator itself.

--raw FILE also writes every request's result in vegeta's own encoding (gob,
as vegeta attack writes it), for vegeta report, vegeta plot and vegeta encode.

Its threads run as SCHED_BATCH, as in compare: on a core it shares with the
target, it does not preempt the target each time an answer wakes it.

Like compare it sends traffic only to 127.0.0.0/8.`,
		Example: "  proxylab attack http://127.0.0.1:8081/ --rate 20000 --duration 10s\n" +
			"  taskset -c 0 proxylab attack http://127.0.0.1:9000/ --rate 0 --connections 64\n" +
			"  proxylab attack http://127.0.0.1:8081/ --rate 5000 --raw results.bin && vegeta report < results.bin",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := loadgen.Target{Method: method, URL: args[0], Header: http.Header{}}
			for _, h := range headers {
				name, value, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(name) == "" {
					return exitError{code: 2, err: fmt.Errorf("--header %q: want \"Name: value\"", h)}
				}
				t.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
			if bodyBytes < 0 {
				return exitError{code: 2, err: fmt.Errorf("--body-bytes must be >= 0, got %d", bodyBytes)}
			}
			if bodyBytes > 0 {
				t.Body = bytes.Repeat([]byte("x"), bodyBytes)
				if t.Header.Get("Content-Type") == "" {
					t.Header.Set("Content-Type", "application/octet-stream")
				}
			}
			c := loadgen.Config{Connections: connections, KeepAlive: !noKeepAlive, Timeout: timeout}
			s := loadgen.Step{Rate: rate, Duration: duration}
			g, err := loadgen.New(t, c)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			defer g.Close()
			if err := loadgen.Batch(); err != nil {
				// A tuning: where the host refuses it the attack goes on.
				fmt.Fprintln(cmd.ErrOrStderr(), "proxylab: keeping the normal scheduling policy:", err)
			}
			var raw *os.File
			if rawPath != "" {
				if raw, err = os.Create(rawPath); err != nil {
					return exitError{code: 2, err: fmt.Errorf("--raw: %w", err)}
				}
				s.Raw = raw
			}
			res, err := g.Attack(cmd.Context(), s, nil)
			if raw != nil {
				if cerr := raw.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("--raw: %w", cerr)
				}
			}
			if err != nil && res == nil {
				return exitError{code: 2, err: err}
			}
			printAttack(cmd.OutOrStdout(), t, c, s, res)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&rate, "rate", 1000, "requests per second; 0 sends as fast as the connections allow")
	f.DurationVar(&duration, "duration", 10*time.Second, "how long to send")
	f.IntVar(&connections, "connections", 64, "connections to the target, also the most requests in flight")
	f.BoolVar(&noKeepAlive, "no-keepalive", false, "open a new connection for every request")
	f.StringVar(&method, "method", "GET", "request method")
	f.IntVar(&bodyBytes, "body-bytes", 0, "request body size in bytes")
	f.StringArrayVar(&headers, "header", nil, `extra request header "Name: value" (repeatable)`)
	f.DurationVar(&timeout, "timeout", loadgen.DefaultTimeout, "per-request timeout")
	f.StringVar(&rawPath, "raw", "", "also write every result to this file in vegeta's gob encoding")
	return cmd
}

// printAttack writes one "name: value" line per figure, so that scripts can
// pick the line they need.
func printAttack(w io.Writer, t loadgen.Target, c loadgen.Config, s loadgen.Step, r *loadgen.StepResult) {
	rate := "as fast as possible"
	if s.Rate > 0 {
		rate = fmt.Sprintf("%d/s", s.Rate)
	}
	fmt.Fprintf(w, "target:        %s %s, %d connection(s), keep-alive %v\n", t.Method, t.URL, c.Connections, c.KeepAlive)
	fmt.Fprintf(w, "rate:          %s for %s\n", rate, s.Duration)
	fmt.Fprintf(w, "requests:      %d in %.3f s\n", r.Requests, r.Duration)
	fmt.Fprintf(w, "achieved_rate: %.1f\n", r.AchievedRate)
	fmt.Fprintf(w, "throughput:    %.1f\n", r.Throughput)
	fmt.Fprintf(w, "success:       %.4f\n", r.Success)
	l := r.Latency
	fmt.Fprintf(w, "latency_us:    min %d, mean %.0f, p50 %d, p90 %d, p99 %d, p99.9 %d, max %d\n", l.Min, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(w, "status_codes:  %v\n", r.StatusCodes)
	for text, n := range r.Errors {
		fmt.Fprintf(w, "error:         %d x %s\n", n, text)
	}
	if r.LoadgenSaturated {
		fmt.Fprintf(w, "saturated:     %s\n", r.Saturation)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted:   true")
	}
}
