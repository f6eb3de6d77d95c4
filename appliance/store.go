package appliance

import (
	"context"
	"strconv"
	"time"
)

// SessionKey names one multi-session: the main Odoo's database name and the
// id of its pos.multi_session record. Two databases never share state.
type SessionKey struct {
	DB string
	ID int64
}

// POSKey names one POS config (its per-POS message counter) in a database.
type POSKey struct {
	DB string
	ID int64
}

// OrderKey names one order: its uid within a multi-session.
type OrderKey struct {
	Session SessionKey
	UID     string
}

// OrderState is the server-side state of an order.
type OrderState string

// Order states, as in the reference Sync Server.
const (
	StateDraft   OrderState = "draft"
	StateDeleted OrderState = "deleted"
	StateUnpaid  OrderState = "unpaid"
)

// SessionRecord is the durable row of a multi-session.
type SessionRecord struct {
	Key     SessionKey
	OrderID int64 // last shared order number handed out in this run
	RunID   int64 // newest run_ID seen
}

// POSRecord is the durable row of a POS config.
type POSRecord struct {
	Key       POSKey
	Session   int64 // multi-session id the POS belongs to (same DB)
	MessageID int64 // last message_ID sent to this POS
	UserID    int64 // Odoo user of the last sync_all
}

// OrderRecord is the durable row of an order.
type OrderRecord struct {
	Key      OrderKey
	Revision int64
	Nonce    string // raw JSON text of the nonce of the last accepted write
	State    OrderState
	Run      int64
	Updated  time.Time // wall clock of the last change; used only for retention
	Message  []byte    // the last accepted message, JSON
}

// Target is one recipient of a Broadcast: a bus channel and, for templated
// bodies, the message_ID written into that copy.
type Target struct {
	Channel   string
	MessageID int64
}

// Broadcast is a group of bus notifications created by one operation. Its
// notifications have the consecutive ids FirstID, FirstID+1, … one per
// target, in target order. The body is shared: for a templated broadcast
// the message of target i is Prefix + decimal(Targets[i].MessageID) + Suffix;
// otherwise it is Prefix for every target.
type Broadcast struct {
	FirstID   uint64
	At        time.Time
	Templated bool
	Prefix    []byte
	Suffix    []byte
	Targets   []Target
}

// LastID returns the id of the broadcast's last notification.
func (b *Broadcast) LastID() uint64 { return b.FirstID + uint64(len(b.Targets)) - 1 }

// AppendMessage appends the JSON message of target i to dst.
func (b *Broadcast) AppendMessage(dst []byte, i int) []byte {
	dst = append(dst, b.Prefix...)
	if b.Templated {
		dst = strconv.AppendInt(dst, b.Targets[i].MessageID, 10)
		dst = append(dst, b.Suffix...)
	}
	return dst
}

// Batch is the set of writes of one operation. Store.Commit applies it
// atomically and durably.
type Batch struct {
	Sessions   []SessionRecord
	POS        []POSRecord
	Orders     []OrderRecord
	Broadcasts []Broadcast
	// BusIDFloor, when not 0, raises LastBusID to at least this id without
	// writing a notification: a durable jump of the bus id sequence past a
	// client's cursor (protocol.md §9.3-1, README "How possync reads the
	// protocol"). Ids up to it are never handed out afterwards.
	BusIDFloor uint64
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Sessions) == 0 && len(b.POS) == 0 && len(b.Orders) == 0 && len(b.Broadcasts) == 0 && b.BusIDFloor == 0
}

// Snapshot is the whole durable state, as read at start-up.
type Snapshot struct {
	Sessions   []SessionRecord
	POS        []POSRecord
	Orders     []OrderRecord
	Broadcasts []Broadcast // ascending FirstID
	LastBusID  uint64      // highest notification id ever committed (0 if none); never decreases
}

// Purge names records that retention removes.
type Purge struct {
	BroadcastsBefore uint64 // delete broadcasts whose last id is below this
	Orders           []OrderKey
}

// Store is the durable state of the Sync Server. Implementations: the Badger
// store in package storage, and storage/memstore for tests. Both pass the
// suite in storage/storagetest.
type Store interface {
	// Load reads everything.
	Load(ctx context.Context) (*Snapshot, error)
	// Commit writes the batch atomically; when it returns nil the batch is
	// durable (survives kill -9 and, for the Badger store, power loss). It
	// also raises LastBusID to the highest notification id in the batch.
	Commit(ctx context.Context, b *Batch) error
	// Order reads one order; ErrNotFound if it does not exist.
	Order(ctx context.Context, k OrderKey) (OrderRecord, error)
	// Purge deletes what retention no longer keeps. LastBusID is unchanged.
	Purge(ctx context.Context, p Purge) error
	// Close releases the store. It is safe to call more than once.
	Close() error
}

// HealthReporter is implemented by a Store that can tell, without a write,
// that writes would be refused (a full or read-only file system). Health
// returns nil when writes can go through or when it cannot tell.
type HealthReporter interface {
	Health() error
}

// WriteProber is implemented by a Store that can commit a small record of
// its own through the same checks and the same durability as Commit, so a
// health check can prove that writes land (possync boot-check before a new
// release is marked good). The record is ignored by Load.
type WriteProber interface {
	ProbeWrite(ctx context.Context) error
}
