package lab

import (
	"fmt"
	"math"
)

// Units for figures, shared by the reasons lab writes into results (a
// search probe's verdict) and by every rendering in report.

// FormatStat renders a Stat as "median ±half-width" in one unit chosen for
// the median (unit as in Metric.Unit); without an interval the median alone.
func FormatStat(s Stat, unit string) string {
	if s.N == 0 {
		return "-"
	}
	v := FormatValue(s.Median, unit)
	if !s.HasInterval {
		return v
	}
	return v + " ±" + formatSpread(s.HalfWidth(), s.Median, unit)
}

// FormatValue renders one figure with a unit a reader takes in at a glance.
func FormatValue(v float64, unit string) string {
	switch unit {
	case "/s":
		return fmt.Sprintf("%.1f", v)
	case "us":
		return micros(v)
	case "bytes":
		return bytesIEC(int64(v))
	case "s":
		return fmt.Sprintf("%.2f", v)
	case "ratio":
		return percent(v)
	}
	return fmt.Sprintf("%g", v)
}

// formatSpread renders a half-width in the unit its median was shown in, so
// "4.66ms ±0.81" reads as milliseconds.
func formatSpread(h, median float64, unit string) string {
	switch unit {
	case "us":
		div, _ := microsUnit(median)
		if own, _ := microsUnit(h); own > div {
			// A tail interval far wider than the median reads better in
			// its own unit: "777µs ±6.54ms", not "±6536".
			return micros(h)
		}
		return trimFloat(h/div, min(2, int(math.Log10(div))))
	case "bytes":
		div, _ := iecUnit(int64(median))
		return trimFloat(h/div, min(1, int(math.Log10(div))))
	case "ratio":
		return trimFloat(100*h, 2)
	case "s":
		return trimFloat(h, 2)
	}
	return trimFloat(h, 1)
}

func trimFloat(v float64, prec int) string { return fmt.Sprintf("%.*f", prec, v) }

func percent(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }

// micros renders microseconds with a unit a reader takes in at a glance.
func micros(us float64) string {
	div, unit := microsUnit(us)
	if div == 1 {
		return fmt.Sprintf("%.0fµs", us)
	}
	return fmt.Sprintf("%.2f%s", us/div, unit)
}

func microsUnit(us float64) (float64, string) {
	switch {
	case us >= 1e6:
		return 1e6, "s"
	case us >= 1e3:
		return 1e3, "ms"
	}
	return 1, "µs"
}

func bytesIEC(n int64) string {
	div, unit := iecUnit(n)
	if div == 1 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.1f%s", float64(n)/div, unit)
}

func iecUnit(n int64) (float64, string) {
	const unit = 1024
	if n < unit {
		return 1, "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return float64(div), string("KMGTPE"[exp]) + "iB"
}
