package scenarios

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in Go syntax ("500ms", "5s", "1m30s")
// in YAML and JSON alike, so results files echo scenarios readably.
type Duration time.Duration

// durationPattern is the accepted YAML spelling. It is narrower than
// time.ParseDuration (no sign, no ".5s", no "1.s") so that schema.json can
// state exactly the same rule; the schema test compares the two.
var durationPattern = regexp.MustCompile(`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$`)

const durationHint = "use Go syntax such as 500ms, 5s, 1m"

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// parseDuration reads the YAML spelling of a duration.
func parseDuration(s string) (Duration, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	if !durationPattern.MatchString(s) {
		return 0, fmt.Errorf("invalid duration %q (%s)", s, durationHint)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		// Only overflow gets here: the pattern already fixed the syntax.
		return 0, fmt.Errorf("invalid duration %q: too large", s)
	}
	return Duration(d), nil
}

// UnmarshalYAML accepts a string in Go syntax only: a bare number has no unit
// and is refused rather than guessed.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return fmt.Errorf("expected a duration, got %s (%s)", describe(n), durationHint)
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the Go spelling, which UnmarshalYAML reads back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the Go spelling as a JSON string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads anything time.ParseDuration accepts, so every value
// MarshalJSON writes, negative ones included, reads back.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		// encoding/json's convention: null leaves the value alone.
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a JSON string such as \"5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (%s)", s, durationHint)
	}
	*d = Duration(v)
	return nil
}
