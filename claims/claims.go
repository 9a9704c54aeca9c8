// Package claims reads claims files (claims/*.yaml: sentences published
// about these proxies, each translated into a figure, its subjects and a
// relation) and judges each claim against results files.
//
// A verdict rests on the measured quantity's 95% interval: supported when
// the interval lies wholly on the claim's side of the relation, refuted
// when it lies wholly on the other side, inconclusive otherwise or when the
// runs it needs are too few, saturated, failed or missing. Figures without
// run-to-run noise (image and binary sizes) are judged directly. A claims
// file never changes a results file.
package claims

// File is one parsed claims file.
type File struct {
	Claims []Claim `yaml:"claims" json:"claims"`
	Path   string  `yaml:"-" json:"-"` // where it was read from
}

// Claim is one published statement, translated into something the lab
// measures.
type Claim struct {
	ID     string `yaml:"id" json:"id"`
	Quote  string `yaml:"quote" json:"quote"`   // the sentence as published
	Source string `yaml:"source" json:"source"` // where it was published
	// Figure names what is measured (see Figures).
	Figure string `yaml:"figure" json:"figure"`
	// Scenario names the results the claim is judged on, by scenario
	// name; empty when exactly one of the given files holds the figure.
	Scenario string `yaml:"scenario,omitempty" json:"scenario,omitempty"`
	// Subject is the row the claim is about; Against, when set, the row
	// it is compared with: the measured quantity is then the ratio
	// Subject/Against.
	Subject string `yaml:"subject" json:"subject"`
	Against string `yaml:"against,omitempty" json:"against,omitempty"`
	// At selects the step of a per-step figure.
	At *At `yaml:"at,omitempty" json:"at,omitempty"`
	// Relation is what the claim says of the quantity: "ratio >= 3.2",
	// "ratio <= 0.33", "value <= 18.3ms", "value ~ 42180 ± 10%".
	Relation Relation `yaml:"relation" json:"relation"`
	// Note says how the sentence was translated, for the reader.
	Note string `yaml:"note,omitempty" json:"note,omitempty"`

	Line, Column int `yaml:"-" json:"-"` // where the claim starts in its file
}

// At selects one step: by its 1-based index or by its target rate.
type At struct {
	Step int `yaml:"step,omitempty" json:"step,omitempty"`
	Rate int `yaml:"rate,omitempty" json:"rate,omitempty"`
}

// Relation is a parsed relation. In YAML it is one string (see
// relationPattern); Parse fills Value once it knows the figure's unit.
type Relation struct {
	Ratio bool    // the quantity is Subject/Against rather than Subject's value
	Op    string  // ">=", "<=", ">", "<", "~"
	Value float64 // in the figure's base unit (/s, microseconds, bytes, ratio, count); plain for a ratio
	// Tolerance is the relative half-width for "~": 0.10 for "± 10%".
	Tolerance float64
	Text      string // as written

	// number and unit are the value as written, before conversion.
	number float64
	unit   string
}

// Verdict outcomes.
const (
	Supported    = "supported"
	Refuted      = "refuted"
	Inconclusive = "inconclusive"
)

// Verdict is one claim judged against results.
type Verdict struct {
	Claim *Claim
	// Quoted is the claim's side in the figure's units ("ratio >= 3.20",
	// "p99 <= 18.3 ms").
	Quoted string
	// Measured is the quantity with its interval ("2.10 (1.95-2.30)",
	// "3.81 MB"), or "-" when nothing could be measured.
	Measured string
	Value    float64
	Lo, Hi   float64 // the 95% interval; Lo == Hi == Value for figures without noise
	Outcome  string  // Supported, Refuted or Inconclusive
	Why      string  // one sentence: the rule that decided, or what was missing
	// Rests names the rows and runs the verdict rests on, such as
	// "rust runs 1-3, go runs 1-3 of capacity (run 3f2a9c1e)".
	Rests string
}
