package conformance

// Cases is the whole suite, in the order it runs. Each group lives in its
// own file.
func Cases() []Case {
	var all []Case
	for _, g := range [][]Case{fidelityCases, hopByHopCases, connectionCases, errorCases, robustnessCases, lifecycleCases,
		targetCases, interimCases, poolCases, framingCases, limitCases, timeoutCases} {
		all = append(all, g...)
	}
	return all
}
