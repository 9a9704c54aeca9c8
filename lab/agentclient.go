package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/proxylab/proxylab/bpf"
)

// agentClient speaks to the agent on a SUT host (agentwire.go).
type agentClient struct {
	addr  string // host:port on the SUT address
	token string
	http  *http.Client
}

func newAgentClient(addr, token string) *agentClient {
	// One kept-alive connection, so that a reading does not add a
	// connection of its own to the SUT host's accept counts or to the
	// path between the hosts.
	tr := &http.Transport{MaxIdleConns: 1, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute, Proxy: nil}
	return &agentClient{addr: addr, token: token, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// agentError is an answer of the agent that is not a success: it was
// reached, and refused or failed the request.
type agentError struct {
	status int
	text   string
}

func (e *agentError) Error() string {
	return fmt.Sprintf("answered %d: %s", e.status, e.text)
}

// do sends one request and decodes a JSON answer into out (nil: none
// expected).
func (a *agentClient) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := url.URL{Scheme: "http", Host: a.addr, Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &agentError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

func (a *agentClient) get(ctx context.Context, path string, q url.Values, out any) error {
	return a.do(ctx, http.MethodGet, path, q, out)
}

func (a *agentClient) post(ctx context.Context, path string, q url.Values) error {
	return a.do(ctx, http.MethodPost, path, q, nil)
}

// reading reads the SUT host: every core, the processes outside the trees
// of roots on cpus, and each root's tree.
func (a *agentClient) reading(ctx context.Context, cpus string, roots ...int) (*AgentReading, error) {
	return a.read(ctx, url.Values{}, cpus, roots)
}

// read is a reading with the query q adds to it.
func (a *agentClient) read(ctx context.Context, q url.Values, cpus string, roots []int) (*AgentReading, error) {
	var trees []string
	for _, r := range roots {
		if r > 0 {
			trees = append(trees, strconv.Itoa(r))
		}
	}
	var rd AgentReading
	q.Set("cpus", cpus)
	q.Set("trees", strings.Join(trees, ","))
	if err := a.get(ctx, "/v1/reading", q, &rd); err != nil {
		return nil, fmt.Errorf("reading of the SUT host: %w", err)
	}
	return &rd, nil
}

// agentProbes are the probes the agent attached on the SUT host, as the
// run uses probes (probeSet).
type agentProbes struct {
	a    *agentClient
	cpus string // the agent's own
}

func (p *agentProbes) pid(ctx context.Context, path string, pid uint32) error {
	if err := p.a.post(ctx, path, url.Values{"pid": {strconv.FormatUint(uint64(pid), 10)}}); err != nil {
		return fmt.Errorf("probes on the SUT host: %w", err)
	}
	return nil
}

func (p *agentProbes) Watch(pid uint32) error {
	return p.pid(context.Background(), "/v1/probes/watch", pid)
}

func (p *agentProbes) Unwatch(pid uint32) error {
	return p.pid(context.Background(), "/v1/probes/unwatch", pid)
}

func (p *agentProbes) SetAttached(on bool) error {
	if err := p.a.post(context.Background(), "/v1/probes/attached", url.Values{"on": {strconv.FormatBool(on)}}); err != nil {
		return fmt.Errorf("probes on the SUT host: %w", err)
	}
	return nil
}

func (p *agentProbes) Snapshot() (bpf.Counts, error) {
	rd, err := p.a.read(context.Background(), url.Values{"probes": {"1"}}, p.cpus, nil)
	switch {
	case err != nil:
		return bpf.Counts{}, err
	case rd.Probes == nil:
		return bpf.Counts{}, fmt.Errorf("probes on the SUT host: %s", rd.ProbesError)
	}
	return *rd.Probes, nil
}

// Close leaves the probes to the agent: they go with its container.
func (p *agentProbes) Close() error { return nil }
