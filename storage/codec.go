package storage

import (
	"encoding/binary"
	"errors"
	"time"

	"possync/appliance"
)

// valueFormat is the first byte of every record value.
const valueFormat byte = 1

// errBadValue reports a value that does not decode.
var errBadValue = errors.New("malformed value")

// encoder appends fields to a value.
type encoder struct{ b []byte }

func newEncoder(size int) *encoder {
	e := &encoder{b: make([]byte, 0, 1+size)}
	e.b = append(e.b, valueFormat)
	return e
}

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) bytes(p []byte) {
	e.uvarint(uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// time writes a presence flag, then Unix nanoseconds if t is not zero.
func (e *encoder) time(t time.Time) {
	e.bool(!t.IsZero())
	if !t.IsZero() {
		e.varint(t.UnixNano())
	}
}

// decoder reads fields from a value. The first error sticks; the []byte
// fields it returns alias the input.
type decoder struct {
	b   []byte
	err error
}

func newDecoder(v []byte) *decoder {
	if len(v) == 0 || v[0] != valueFormat {
		return &decoder{err: errBadValue}
	}
	return &decoder{b: v[1:]}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadValue
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errBadValue
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next byte string, nil if it is empty.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errBadValue
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	if n == 0 {
		return nil
	}
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.err = errBadValue
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	ns := d.varint()
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// finish returns the first error, or errBadValue if bytes are left over.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errBadValue
	}
	return d.err
}

func encodeSession(r *appliance.SessionRecord) []byte {
	e := newEncoder(2 * binary.MaxVarintLen64)
	e.varint(r.OrderID)
	e.varint(r.RunID)
	return e.b
}

func decodeSession(v []byte, r *appliance.SessionRecord) error {
	d := newDecoder(v)
	r.OrderID = d.varint()
	r.RunID = d.varint()
	return d.finish()
}

func encodePOS(r *appliance.POSRecord) []byte {
	e := newEncoder(3 * binary.MaxVarintLen64)
	e.varint(r.Session)
	e.varint(r.MessageID)
	e.varint(r.UserID)
	return e.b
}

func decodePOS(v []byte, r *appliance.POSRecord) error {
	d := newDecoder(v)
	r.Session = d.varint()
	r.MessageID = d.varint()
	r.UserID = d.varint()
	return d.finish()
}

func encodeOrder(r *appliance.OrderRecord) []byte {
	e := newEncoder(7*binary.MaxVarintLen64 + len(r.Nonce) + len(r.State) + len(r.Message))
	e.varint(r.Revision)
	e.string(r.Nonce)
	e.string(string(r.State))
	e.varint(r.Run)
	e.time(r.Updated)
	e.bytes(r.Message)
	return e.b
}

// decodeOrder fills everything but r.Key. r.Message aliases v.
func decodeOrder(v []byte, r *appliance.OrderRecord) error {
	d := newDecoder(v)
	r.Revision = d.varint()
	r.Nonce = d.string()
	r.State = appliance.OrderState(d.string())
	r.Run = d.varint()
	r.Updated = d.time()
	r.Message = d.bytes()
	return d.finish()
}

func encodeBroadcast(b *appliance.Broadcast) []byte {
	size := 6*binary.MaxVarintLen64 + len(b.Prefix) + len(b.Suffix)
	for _, t := range b.Targets {
		size += 2*binary.MaxVarintLen64 + len(t.Channel)
	}
	e := newEncoder(size)
	e.time(b.At)
	e.bool(b.Templated)
	e.bytes(b.Prefix)
	e.bytes(b.Suffix)
	e.uvarint(uint64(len(b.Targets)))
	for _, t := range b.Targets {
		e.string(t.Channel)
		e.varint(t.MessageID)
	}
	return e.b
}

// decodeBroadcast fills everything but b.FirstID. Prefix and Suffix alias v.
func decodeBroadcast(v []byte, b *appliance.Broadcast) error {
	d := newDecoder(v)
	b.At = d.time()
	b.Templated = d.bool()
	b.Prefix = d.bytes()
	b.Suffix = d.bytes()
	n := d.uvarint()
	if n > uint64(len(d.b))/2 { // a target takes at least 2 bytes
		return errBadValue
	}
	b.Targets = nil
	if n > 0 {
		b.Targets = make([]appliance.Target, n)
	}
	for i := range b.Targets {
		b.Targets[i] = appliance.Target{Channel: d.string(), MessageID: d.varint()}
	}
	return d.finish()
}
