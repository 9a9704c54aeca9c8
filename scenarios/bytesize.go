package scenarios

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ByteSize is a number of bytes. YAML takes an integer or a string with a
// unit ("512MiB", "1 KB"); JSON always holds the plain integer so results
// stay easy to process.
type ByteSize int64

// sizePattern is the accepted string spelling; schema.json carries the same
// pattern and the schema test compares the two.
var sizePattern = regexp.MustCompile(`^([0-9]+) ?(B|KiB|MiB|GiB|KB|MB|GB)?$`)

const sizeHint = "use a number of bytes or a number with unit B, KiB, MiB, GiB, KB, MB, GB, such as 512MiB"

// sizeUnits runs from the largest multiplier down, which String relies on.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6},
	{"KiB", 1 << 10}, {"KB", 1e3},
	{"B", 1},
}

// parseSize reads the string spelling of a size.
func parseSize(s string) (ByteSize, error) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (%s)", s, sizeHint)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	mult := int64(1)
	for _, u := range sizeUnits {
		if u.name == m[2] {
			mult = u.mult
		}
	}
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(n * mult), nil
}

// String uses the largest unit that divides the size exactly, so the result
// is short and parses back to the same number.
func (b ByteSize) String() string {
	if b != 0 {
		for _, u := range sizeUnits {
			if int64(b)%u.mult == 0 {
				return strconv.FormatInt(int64(b)/u.mult, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalYAML accepts an integer (negative ones are left for validation to
// report with the field's name) or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("invalid size %s: too large", n.Value)
			}
			*b = ByteSize(v)
			return nil
		case "!!str":
			v, err := parseSize(n.Value)
			if err != nil {
				return err
			}
			*b = v
			return nil
		}
	}
	return fmt.Errorf("expected a size, got %s (%s)", describe(n), sizeHint)
}
