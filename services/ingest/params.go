package ingest

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// submitParams are the query parameters of POST /v1/submissions, the one
// list of them (docs/submitting.md documents each; a test keeps the two in
// step). Any other is refused, so that a typo (submiter) is not silently
// ignored and the file judged as if it had not been given.
var submitParams = []string{
	"dataset", // apc, outpatient, emergency_care or local_flow
	// source and submitter are the caller's (its certificate's): given,
	// they must agree with it, or the submission is refused (403). Kept on
	// the list so that clients that name them keep working.
	"source",    // provider (a provider's) or national (the national exchange's)
	"submitter", // organisation code of the sender
	"results",   // all (default) or errors
	// See idempotent resends: taken here so that the submission flow that
	// reads it merges without touching this list.
	"idempotency_key",
}

// reportParams are the query parameters of GET /v1/submissions/{id}.
var reportParams = []string{
	"limit",  // failing records to list
	"format", // json (default) or text
}

// checkQuery says what is wrong with the names in q, against the endpoint's
// params: a name it does not take (with the known name it most likely
// meant), or a name given twice (only one value would be read). Names are
// matched exactly; a value is never echoed.
func checkQuery(q url.Values, params []string) []string {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names) // the same answer for the same request
	var problems []string
	for _, name := range names {
		shown := quoteName(name)
		if !slices.Contains(params, name) {
			msg := fmt.Sprintf("query parameter %s is not known", shown)
			if near := nearest(name, params); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			}
			problems = append(problems, msg+"; known: "+strings.Join(params, ", "))
			continue
		}
		if n := len(q[name]); n > 1 {
			problems = append(problems, fmt.Sprintf("query parameter %s is given %d times: give it once", shown, n))
		}
	}
	return problems
}

// quoteName bounds a name from the request before it goes into an answer or
// a log: it is the caller's text and could be anything.
func quoteName(name string) string {
	const max = 40
	if len(name) > max {
		name = strings.ToValidUTF8(name[:max], "") + "…"
	}
	return fmt.Sprintf("%q", name)
}

// nearest is the known name closest to name, when it is close enough to be
// a typo: at most one edit in four letters (and at least one), case ignored.
func nearest(name string, params []string) string {
	best, bestDist := "", 0
	lower := strings.ToLower(name)
	for _, p := range params {
		d := editDistance(lower, p)
		if d <= max(1, len(p)/4) && (best == "" || d < bestDist) {
			best, bestDist = p, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes (the
// known names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
