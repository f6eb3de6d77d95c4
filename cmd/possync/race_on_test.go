//go:build race

package main

// raceEnabled: this test binary, and the servers it starts from itself,
// run under the race detector, which multiplies their memory (Go's race
// detector docs: 5–10×), so memory bounds are not judged in this build.
const raceEnabled = true
