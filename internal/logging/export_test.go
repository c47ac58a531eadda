package logging

import "regexp"

// Test hooks for the pre-check fuzz target.
var MayHoldSecret = mayHoldSecret

func ValuePatterns() []*regexp.Regexp { return valuePatterns }
