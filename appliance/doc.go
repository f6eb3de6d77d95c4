// Package appliance holds the domain types shared by every part of possync:
// the keys and records of the sync state, the Store interface that the
// storage packages implement, the error type that the HTTP layer maps to
// JSON-RPC errors, and the build version.
//
// It imports only the standard library. The dependency direction is
// cmd → appliance/... → appliance, with storage and discovery implementing
// or using the types here without ever importing the HTTP layer.
package appliance
