package scenarios

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The patterns below are repeated in schema.json; the schema test keeps the
// two in step.
var (
	namePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	pathPattern   = regexp.MustCompile(`^/[!-~]*$`)
	cpusetPattern = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
)

const (
	// maxNameLen keeps results file names, which embed the name, short.
	maxNameLen     = 64
	maxConnections = 100000
	// minStepDuration: shorter steps hold too few per-second samples to
	// say anything about a steady state.
	minStepDuration = time.Second
	// maxShare bounds of_capacity: above the capacity a rate is a probe
	// of overload, which a search does better.
	maxShare = 1.5
	// minProxyMemory is the smallest memory limit Docker accepts.
	minProxyMemory = 6 << 20
)

// Methods are the request methods load.method accepts.
var Methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}

// BodyMethods are the methods that may carry a request body (body_bytes > 0);
// RFC 9110 gives a body no meaning for the others.
var BodyMethods = []string{"POST", "PUT", "PATCH"}

// Validate checks the values of a scenario built in code or decoded by other
// means. Parse already calls it, with file positions in the errors. The error
// is an Errors value listing every problem.
func (s *Scenario) Validate() error {
	v := &validator{file: s.File}
	v.scenario(s)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

type validator struct {
	file string
	// pos and failed come from the decoder; both are nil in Validate.
	pos    map[string]*yaml.Node
	failed map[string]bool
	errs   Errors
}

func (v *validator) add(path, format string, args ...any) {
	e := &Error{File: v.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	located := false
	for p, ok := path, true; ok; p, ok = parentPath(p) {
		if v.failed[p] {
			return
		}
		if n := v.pos[p]; n != nil && !located {
			e.Line, e.Column, located = n.Line, n.Column, true
		}
	}
	v.errs = append(v.errs, e)
}

// absent reports whether a parsed file lacks the key at path, which turns
// "must be greater than 0, got 0" into the clearer "required".
func (v *validator) absent(path string) bool {
	return v.pos != nil && v.pos[path] == nil
}

func (v *validator) scenario(s *Scenario) {
	switch {
	case s.Name == "":
		v.add("name", "required")
	case len(s.Name) > maxNameLen:
		v.add("name", "longer than %d characters", maxNameLen)
	case !namePattern.MatchString(s.Name):
		v.add("name", "invalid name %q (use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit)", s.Name)
	}
	seen := map[string]int{}
	for i, p := range s.Proxies {
		path := fmt.Sprintf("proxies[%d]", i)
		if first, dup := seen[p]; dup {
			v.add(path, "duplicate proxy %q (already proxies[%d])", p, first)
			continue
		}
		seen[p] = i
		if !slices.Contains(ProxyNames(), p) {
			v.add(path, "unknown proxy %q; allowed: %s", p, strings.Join(ProxyNames(), ", "))
		}
	}
	if s.Repeat < 1 {
		v.add("repeat", "must be at least 1, got %d", s.Repeat)
	}
	v.notNegativeDuration("warmup", s.Warmup)
	v.notNegativeSize("upstream.response_bytes", s.Upstream.ResponseBytes)
	v.notNegativeDuration("upstream.delay", s.Upstream.Delay)
	v.load(&s.Load)
	v.resources(&s.Resources)
	v.probes(&s.Probes)
	v.overhead(s)
}

func (v *validator) load(l *Load) {
	if !slices.Contains(Methods, l.Method) {
		hint := ""
		if up := strings.ToUpper(l.Method); slices.Contains(Methods, up) {
			hint = fmt.Sprintf(" (methods are case-sensitive: %q)", up)
		}
		v.add("load.method", "unknown method %q%s; allowed: %s", l.Method, hint, strings.Join(Methods, ", "))
	}
	switch {
	case !strings.HasPrefix(l.Path, "/"):
		v.add("load.path", "must start with \"/\", got %q", l.Path)
	case !pathPattern.MatchString(l.Path):
		v.add("load.path", "must be visible ASCII only, got %q (percent-encode spaces and other bytes)", l.Path)
	}
	if l.BodyBytes < 0 {
		v.add("load.body_bytes", "must not be negative, got %d", l.BodyBytes)
	} else if l.BodyBytes > 0 && !slices.Contains(BodyMethods, l.Method) && slices.Contains(Methods, l.Method) {
		v.add("load.body_bytes", "a request body needs one of the methods %s, not %s", strings.Join(BodyMethods, ", "), l.Method)
	}
	if l.Connections < 1 || l.Connections > maxConnections {
		v.add("load.connections", "must be between 1 and %d, got %d", maxConnections, l.Connections)
	}
	if l.Model != "" && !slices.Contains(LoadModels, l.Model) {
		v.add("load.model", "unknown load model %q; allowed: %s", l.Model, strings.Join(LoadModels, ", "))
	} else if l.Closed() && l.Search != nil {
		v.add("load.search", "a search varies the rate, which the closed model does not set; use model: open, or steps")
	}
	switch {
	case v.failed["load.steps"] || v.failed["load.search"]:
		// Already reported; which of the two was meant is unknown.
	case l.Steps != nil && l.Search != nil:
		v.add("load.search", "set either steps or search, not both")
	case l.Steps == nil && l.Search == nil:
		v.add("load", "needs steps (fixed rates) or search (the highest rate meeting an SLO)")
	case l.Steps != nil && len(l.Steps) == 0:
		v.add("load.steps", "empty step list; give at least one {rate, duration}")
	}
	for i, st := range l.Steps {
		v.step(fmt.Sprintf("load.steps[%d]", i), st, l.Closed())
	}
	if l.Search != nil {
		v.search("load.search", l.Search)
	}
}

func (v *validator) step(path string, st Step, closed bool) {
	rp, cp := path+".rate", path+".of_capacity"
	hasRate := st.Rate != 0 || (v.pos != nil && !v.absent(rp))
	hasShare := st.OfCapacity != 0 || (v.pos != nil && !v.absent(cp))
	switch {
	case closed && (hasRate || hasShare):
		v.add(path, "the closed model sets no rate (each connection sends its next request when the last answer arrived); give only duration")
	case closed:
	case hasRate && hasShare:
		v.add(cp, "set either rate or of_capacity, not both")
	case hasShare:
		if !(st.OfCapacity > 0 && st.OfCapacity <= maxShare) {
			v.add(cp, "must be greater than 0%% and at most %s, got %s", Share(maxShare), st.OfCapacity)
		}
	case v.absent(rp):
		v.add(rp, "required (requests per second, or of_capacity: a share of the capacity a search measured)")
	case st.Rate <= 0:
		v.add(rp, "must be greater than 0, got %d", st.Rate)
	}
	switch dp := path + ".duration"; {
	case v.absent(dp):
		v.add(dp, "required")
	default:
		v.atLeastStep(dp, st.Duration)
	}
}

func (v *validator) search(path string, s *Search) {
	switch p := path + ".slo_p99"; {
	case v.absent(p):
		v.add(p, "required (the p99 latency a rate must stay under)")
	case s.SLOP99 <= 0:
		v.add(p, "must be greater than 0, got %s", s.SLOP99)
	}
	if !(s.MinSuccess > 0 && s.MinSuccess <= 1) {
		v.add(path+".min_success", "must be greater than 0 and at most 1, got %g", s.MinSuccess)
	}
	switch p := path + ".start"; {
	case v.absent(p):
		v.add(p, "required (the first rate to try)")
	case s.Start < 1:
		v.add(p, "must be at least 1, got %d", s.Start)
	}
	switch p := path + ".max"; {
	case v.absent(p):
		v.add(p, "required (the highest rate to try)")
	case s.Max < s.Start:
		v.add(p, "must be at least start (%d), got %d", s.Start, s.Max)
	}
	v.atLeastStep(path+".step_duration", s.StepDuration)
}

func (v *validator) atLeastStep(path string, d Duration) {
	if d.D() < minStepDuration {
		v.add(path, "must be at least %s, got %s", minStepDuration, d)
	}
}

func (v *validator) resources(r *Resources) {
	v.cpuset("resources.proxy_cpus", r.ProxyCPUs)
	v.cpuset("resources.upstream_cpus", r.UpstreamCPUs)
	v.cpuset("resources.loadgen_cpus", r.LoadgenCPUs)
	switch m := r.ProxyMemory; {
	case m < 0:
		v.add("resources.proxy_memory", "must not be negative, got %d", m)
	case m > 0 && m < minProxyMemory:
		v.add("resources.proxy_memory", "must be 0 (the lab's default limit) or at least %s, the smallest limit Docker accepts; got %s", ByteSize(minProxyMemory), m)
	}
}

// cpuset checks the cgroup cpuset syntax and that every range runs upwards;
// whether the CPUs exist is for the lab to check on the host.
func (v *validator) cpuset(path, set string) {
	if set == "" {
		return
	}
	if !cpusetPattern.MatchString(set) {
		v.add(path, "invalid cpuset %q (use CPU numbers and ranges such as \"0\", \"1-3\", \"0,2\")", set)
		return
	}
	for part := range strings.SplitSeq(set, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			continue
		}
		a, errA := strconv.Atoi(lo)
		b, errB := strconv.Atoi(hi)
		if errA != nil || errB != nil || a > b {
			v.add(path, "invalid cpuset %q: range %s does not run upwards", set, part)
			return
		}
	}
}

func (v *validator) probes(p *Probes) {
	if !slices.Contains(ProbeModes, p.Mode) {
		v.add("probes.mode", "unknown probe mode %q; allowed: %s", p.Mode, strings.Join(ProbeModes, ", "))
	}
	if n := p.PerfBufferPages; n < 1 || n&(n-1) != 0 {
		v.add("probes.perf_buffer_pages", "must be a power of two such as 8, 64 or 256, got %d", n)
	}
	v.events(p.Events)
}

// overhead checks probes.overhead against the rest of the scenario.
func (v *validator) overhead(s *Scenario) {
	if !s.Probes.Overhead {
		return
	}
	if !s.Probes.Enabled {
		v.add("probes.overhead", "needs probes.enabled: true (it compares steps with the probes attached and detached)")
	}
	if s.Load.Search != nil {
		v.add("probes.overhead", "needs load.steps: a search's next rate depends on each measurement, so it cannot be run twice")
	}
}

// events checks probes.events. In a file, the mapping form is only for a
// sample: {sample: 1} is spelt all.
func (v *validator) events(e Events) {
	const path = "probes.events.sample"
	mapping := v.pos != nil && v.pos["probes.events"] != nil && v.pos["probes.events"].Kind == yaml.MappingNode
	switch {
	case mapping && v.absent(path):
		v.add("probes.events", "a mapping needs sample: N, one event in N per CPU (%s)", eventsHint)
	case mapping && e.Sample == 1:
		v.add(path, "sample 1 sends every event: write events: all")
	case e.Sample < 0 || e.Sample > MaxSample || mapping && e.Sample < 2:
		v.add(path, "sample rate must be from 2 to %d, got %d", MaxSample, e.Sample)
	}
}

func (v *validator) notNegativeDuration(path string, d Duration) {
	if d < 0 {
		v.add(path, "must not be negative, got %s", d)
	}
}

func (v *validator) notNegativeSize(path string, b ByteSize) {
	if b < 0 {
		v.add(path, "must not be negative, got %d", b)
	}
}
