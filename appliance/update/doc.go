// Package update is the in-place update logic of the box (issue 11,
// docs/update.md): receiving an uploaded RAUC bundle into the incoming
// directory, checking bundles with `rauc info`, installing them with
// `rauc install`, marking the booted slot good or bad after a boot, and the
// bookkeeping the status page reads (attempts.jsonl, slots.json).
//
// It runs the real `rauc` program and imports no HTTP code: the admin
// endpoint in appliance/httpapi calls Receiver through an interface, and
// the root-side commands (possync install-bundle, install-pending,
// boot-check) live in cmd/possync.
//
// Files under Dir (default /data/update):
//
//	incoming/          uploaded bundles: <name>.raucb.part while arriving, then <name>.raucb
//	attempts.jsonl     one Attempt per line, append-only, written by root tools
//	slots.json         the slots as `rauc status` last saw them, written by root tools
package update
