package scenarios

import (
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Events is probes.events: which of the counted events also go through the
// perf buffer. The accept and connect counts are exact whatever is chosen;
// the records are there to study the buffer's delivery, and each costs the
// proxy a perf output and the reader a wake-up. YAML and JSON spell it
// "none" (the default), "all", or {sample: N}: one event in N on each CPU.
type Events struct {
	// Sample: 0 sends none, 1 every event, N >= 2 one in N per CPU.
	Sample int `yaml:"sample"`
}

// EventWords are the one-word spellings of Events.
var EventWords = []string{"none", "all"}

// MaxSample is the sparsest sample a scenario may ask for; beyond it a step
// sends next to nothing, which is what none says plainly. The bpf package
// has the same bound.
const MaxSample = 1 << 20

const eventsHint = "use none, all or {sample: N} with N from 2 to 1048576"

// worded is a struct that may also be written as one word: a scalar is
// read by word, a mapping field by field like any struct, so both keep
// their file positions.
type worded interface {
	word(n *yaml.Node) error
}

func (e *Events) word(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		switch n.Value {
		case "none":
			*e = Events{}
			return nil
		case "all":
			*e = Events{Sample: 1}
			return nil
		}
		return fmt.Errorf("unknown events value %q (%s)", n.Value, eventsHint)
	}
	return fmt.Errorf("expected events, got %s (%s)", describe(n), eventsHint)
}

// String is the YAML spelling.
func (e Events) String() string {
	switch e.Sample {
	case 0:
		return "none"
	case 1:
		return "all"
	}
	return fmt.Sprintf("{sample: %d}", e.Sample)
}

// MarshalYAML writes the spelling the decoder reads back.
func (e Events) MarshalYAML() (any, error) {
	if e.Sample > 1 {
		return map[string]int{"sample": e.Sample}, nil
	}
	return e.String(), nil
}

// MarshalJSON writes the YAML spelling in JSON: "none", "all" or {"sample": N}.
func (e Events) MarshalJSON() ([]byte, error) {
	if e.Sample > 1 {
		return json.Marshal(map[string]int{"sample": e.Sample})
	}
	return json.Marshal(e.String())
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Events) UnmarshalJSON(b []byte) error {
	var w string
	if json.Unmarshal(b, &w) == nil {
		switch w {
		case "none":
			*e = Events{}
		case "all":
			*e = Events{Sample: 1}
		default:
			return fmt.Errorf("unknown events value %q (%s)", w, eventsHint)
		}
		return nil
	}
	var m struct {
		Sample *int `json:"sample"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Sample == nil {
		return fmt.Errorf("events must be \"none\", \"all\" or {\"sample\": N}, got %s", b)
	}
	*e = Events{Sample: *m.Sample}
	return nil
}

// UnmarshalJSON reads probes as results files hold them; files written
// before probes.events existed sent every event, and say so once read.
func (p *Probes) UnmarshalJSON(b []byte) error {
	type plain Probes
	v := plain{Events: Events{Sample: 1}}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Probes(v)
	return nil
}
