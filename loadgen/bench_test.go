package loadgen

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkAttackUnpaced measures the generator's own ceiling against an
// in-process fasthttp server on loopback: both share the machine, so read
// the figure as a comparison between revisions, and the CPU profile
// (-cpuprofile) for where the generator's time goes.
func BenchmarkAttackUnpaced(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go srv.Serve(ln)
	defer srv.Shutdown()

	g, err := New(Target{URL: "http://" + ln.Addr().String() + "/"}, Config{Connections: 64, KeepAlive: true})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	var requests uint64
	var elapsed time.Duration
	b.ReportAllocs()
	for b.Loop() {
		res, err := g.Attack(context.Background(), Step{Rate: 0, Duration: time.Second}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Success != 1 {
			b.Fatalf("success %v: %v", res.Success, res.Errors)
		}
		requests += res.Requests
		elapsed += time.Duration(res.Duration * float64(time.Second))
	}
	b.ReportMetric(float64(requests)/elapsed.Seconds(), "req/s")
}
