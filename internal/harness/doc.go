// Package harness keeps Ferry hardened: end-to-end tests that run the real
// ferry binary (built once per test run) against simulated Jira sites and
// attack it as an outsider, an operator and a crash would — a catalogue of
// hostile requests and configurations that must each get their specific
// refusal and change nothing, SIGKILL at random moments under mixed load on
// both engines, a property test of tenant isolation, and overload shedding.
// The package holds no production code; its longer runs are scripts
// (scripts/crash, scripts/load) whose results docs/benchmarks.md records.
package harness
