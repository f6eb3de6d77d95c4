// Package engine implements the protocol logic of the Odoo 12
// pos_multi_session Sync Server, independent of HTTP and of the store.
//
// The contract is shared/protocol.md. In short:
//
//   - Engine.Update handles /pos_multi_session_sync/update messages
//     (update_order, sync_all, remove_order, any other action relayed).
//   - Engine.Ping handles /pos_longpolling/update (PONG on the bus).
//   - Engine.Poll handles /longpolling/poll (Odoo bus semantics).
//
// Concurrency: every operation of one multi-session runs under that
// session's mutex (one writer per multi-session); different multi-sessions
// run in parallel. An operation computes its writes on working copies,
// reserves bus ids, commits the batch to the Store (durable before visible),
// and only then applies the copies to memory and publishes its
// notifications. The Bus makes notifications visible strictly in id order,
// so a poller that has seen id N has seen every notification below N on its
// channels, even when two sessions commit concurrently.
//
// Lock order: Engine.mu may be taken while holding session locks; session
// locks are taken in ascending (DB, ID) order; Bus.mu is a leaf.
package engine
