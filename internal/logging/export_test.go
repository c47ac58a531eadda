package logging

import (
	"regexp"

	"ferry/internal/scrub"
)

// Test hooks for the pre-check fuzz target: the pre-check is the logs
// rules' hints, and the patterns their candidate patterns (a rule never
// changes text outside a match of its pattern).

func MayHoldSecret(s string) bool {
	for _, r := range scrub.Logs.TextRules() {
		if scrub.MayMatch(r, s) {
			return true
		}
	}
	return false
}

func ValuePatterns() []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, r := range scrub.Logs.TextRules() {
		out = append(out, regexp.MustCompile(r.Pattern()))
	}
	return out
}
