//go:build race

package keystore

// raceEnabled: built with -race, which also turns on checkptr.
const raceEnabled = true
