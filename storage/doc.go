// Package storage is the Badger v4 implementation of appliance.Store: the
// durable state of the Sync Server on the appliance's SD card.
//
// Open sizes Badger for a 1 GB Raspberry Pi (see badgerOptions) and turns
// on synchronous writes, so a Commit that returned nil survives a pulled
// plug. A background loop runs value-log GC every Options.GCInterval.
// Commit keeps a free-space reserve on the file system (space.go): Badger
// writes through mmapped files, and filling the disk there kills the
// process with SIGBUS instead of returning ENOSPC.
//
// # Key layout
//
// Every key starts with one byte naming the record kind. Database names
// are arbitrary strings (any byte, NUL included), so they are written as
// uvarint(len(db)) followed by the bytes; no name can be the prefix of
// another's key. int64 ids are 8 bytes big-endian with the sign bit flipped,
// so byte order is numeric order for negative ids too. uint64 ids are plain
// 8-byte big-endian.
//
//	0x00 "format"             → 1 byte: data format (1); 2 bytes from, to
//	                            while a migration runs (format.go)
//	0x00 "last_bus_id"        → uint64 BE: highest notification id committed
//	0x01 db session           → SessionRecord
//	0x02 db pos               → POSRecord
//	0x03 db session uid       → OrderRecord (uid is the rest of the key)
//	0x04 first_id             → Broadcast
//
// where db is uvarint(len)+bytes, session and pos are int64 ids. The uid of
// an order needs no length because it ends the key.
//
// # Value layout
//
// Values start with a format byte (1) followed by the fields that are not in
// the key, as uvarints, zigzag varints and uvarint-length-prefixed byte
// strings (see codec.go). Byte strings (order messages, broadcast bodies)
// are stored verbatim, so they round-trip byte for byte. Times are stored
// as Unix nanoseconds behind a presence flag, so the zero time.Time
// round-trips as zero.
//
// # LastBusID
//
// Commit writes the meta key last_bus_id in the same transaction as the
// batch whenever the batch holds notifications. The new value is the
// maximum of the batch's highest id and every value written before it;
// commits take their commit timestamp in that order (see Commit), so the
// key never goes down. Purge never touches it, so LastBusID survives the
// deletion of the broadcasts that raised it.
package storage
