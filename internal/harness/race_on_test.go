//go:build race

package harness

// raceEnabled: the binary under test is built with the race detector too,
// which reuses the packages this test run already compiled.
const raceEnabled = true
