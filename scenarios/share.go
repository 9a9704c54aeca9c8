package scenarios

import (
	"fmt"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Share is a fraction of a whole, such as a step's share of the measured
// capacity. YAML takes a percentage ("25%") or a number from 0 to 1
// (0.25); JSON holds the number.
type Share float64

// sharePattern is the accepted percentage spelling; schema.json carries the
// same pattern.
var sharePattern = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?) ?%$`)

const shareHint = "use a percentage such as 25% or a number from 0 to 1 such as 0.25"

// UnmarshalYAML reads "25%" or 0.25; the range is checked by the validator,
// which knows where the share is used.
func (s *Share) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a share, got %s (%s)", describe(n), shareHint)
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return fmt.Errorf("invalid share %q (%s)", n.Value, shareHint)
		}
		*s = Share(f)
		return nil
	case "!!str":
		m := sharePattern.FindStringSubmatch(n.Value)
		if m == nil {
			return fmt.Errorf("invalid share %q (%s)", n.Value, shareHint)
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		*s = Share(f / 100)
		return nil
	}
	return fmt.Errorf("expected a share, got %s (%s)", describe(n), shareHint)
}

// MarshalYAML writes the percentage spelling.
func (s Share) MarshalYAML() (any, error) { return s.String(), nil }

// String is the percentage, as short as it stays exact: "25%", "12.5%".
func (s Share) String() string {
	return strconv.FormatFloat(float64(s)*100, 'f', -1, 64) + "%"
}
