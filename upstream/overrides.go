package main

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// maxDelay bounds delay_ms so a bad request cannot park a worker forever.
const maxDelay = 10 * time.Minute

// overrides are the per-request query parameters that change the answer.
type overrides struct {
	size    int
	delay   time.Duration
	status  int
	chunked bool
	// abortAfter >= 0 sends a head announcing size bytes, then only
	// abortAfter of them, and closes: an origin dying mid-response.
	abortAfter int
	// garbage answers bytes that are not HTTP and closes.
	garbage bool
}

func parseOverrides(args *fasthttp.Args, defaultSize int) (overrides, error) {
	o := overrides{size: defaultSize, status: fasthttp.StatusOK, abortAfter: -1}
	if args.Len() == 0 {
		return o, nil
	}
	var err error
	if args.Has("size") {
		if o.size, err = uintArg(args, "size", maxBodyBytes); err != nil {
			return o, err
		}
	}
	if args.Has("delay_ms") {
		ms, err := uintArg(args, "delay_ms", int(maxDelay/time.Millisecond))
		if err != nil {
			return o, err
		}
		o.delay = time.Duration(ms) * time.Millisecond
	}
	if args.Has("status") {
		if o.status, err = uintArg(args, "status", 599); err != nil {
			return o, err
		}
		// Interim (1xx) answers are not final responses and would leave
		// the client waiting for one.
		if o.status < 200 {
			return o, fmt.Errorf("status must be from 200 to 599")
		}
	}
	if args.Has("chunked") {
		switch string(args.Peek("chunked")) {
		case "1":
			o.chunked = true
		case "0":
		default:
			return o, fmt.Errorf("chunked must be 0 or 1")
		}
	}
	if args.Has("abort_after") {
		if o.abortAfter, err = uintArg(args, "abort_after", maxBodyBytes); err != nil {
			return o, err
		}
	}
	if args.Has("garbage") {
		if string(args.Peek("garbage")) != "1" {
			return o, fmt.Errorf("garbage must be 1")
		}
		o.garbage = true
	}
	return o, nil
}

func uintArg(args *fasthttp.Args, name string, limit int) (int, error) {
	n, err := fasthttp.ParseUint(args.Peek(name))
	if err != nil || n > limit {
		return 0, fmt.Errorf("%s must be an integer from 0 to %d", name, limit)
	}
	return n, nil
}
