package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"possync/appliance"
)

// Record kinds: the first byte of every key. See the package doc.
const (
	kindMeta      byte = 0x00
	kindSession   byte = 0x01
	kindPOS       byte = 0x02
	kindOrder     byte = 0x03
	kindBroadcast byte = 0x04
)

// Meta keys.
var (
	keyFormat    = []byte{kindMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	keyLastBusID = []byte{kindMeta, 'l', 'a', 's', 't', '_', 'b', 'u', 's', '_', 'i', 'd'}
)

// errBadKey reports a key that does not parse: the store is corrupt or was
// written by another program.
var errBadKey = errors.New("malformed key")

// appendDB appends a length-prefixed database name.
func appendDB(dst []byte, db string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(db)))
	return append(dst, db...)
}

// appendInt64 appends v big-endian with the sign bit flipped, so that byte
// order matches numeric order.
func appendInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func sessionKey(k appliance.SessionKey) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(k.DB)+8)
	b = append(b, kindSession)
	b = appendDB(b, k.DB)
	return appendInt64(b, k.ID)
}

func posKey(k appliance.POSKey) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(k.DB)+8)
	b = append(b, kindPOS)
	b = appendDB(b, k.DB)
	return appendInt64(b, k.ID)
}

func orderKey(k appliance.OrderKey) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(k.Session.DB)+8+len(k.UID))
	b = append(b, kindOrder)
	b = appendDB(b, k.Session.DB)
	b = appendInt64(b, k.Session.ID)
	return append(b, k.UID...)
}

func broadcastKey(firstID uint64) []byte {
	b := make([]byte, 0, 9)
	b = append(b, kindBroadcast)
	return binary.BigEndian.AppendUint64(b, firstID)
}

// parseDBID parses the db and int64 id that follow the kind byte of a
// session, POS or order key, and returns what is left.
func parseDBID(key []byte) (db string, id int64, rest []byte, err error) {
	if len(key) < 1 {
		return "", 0, nil, errBadKey
	}
	n, w := binary.Uvarint(key[1:])
	// left is what follows the length; n+8 could overflow for a length
	// near 2^64 (a damaged key), so n is compared with left first.
	if w <= 0 {
		return "", 0, nil, fmt.Errorf("%w %x", errBadKey, key)
	}
	if left := uint64(len(key) - 1 - w); n > left || left-n < 8 {
		return "", 0, nil, fmt.Errorf("%w %x", errBadKey, key)
	}
	p := key[1+w:]
	db = string(p[:n])
	id = int64(binary.BigEndian.Uint64(p[n:]) ^ (1 << 63))
	return db, id, p[n+8:], nil
}

func parseSessionKey(key []byte) (appliance.SessionKey, error) {
	db, id, rest, err := parseDBID(key)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w %x", errBadKey, key)
	}
	return appliance.SessionKey{DB: db, ID: id}, err
}

func parsePOSKey(key []byte) (appliance.POSKey, error) {
	db, id, rest, err := parseDBID(key)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w %x", errBadKey, key)
	}
	return appliance.POSKey{DB: db, ID: id}, err
}

func parseOrderKey(key []byte) (appliance.OrderKey, error) {
	db, id, rest, err := parseDBID(key)
	return appliance.OrderKey{Session: appliance.SessionKey{DB: db, ID: id}, UID: string(rest)}, err
}

func parseBroadcastKey(key []byte) (uint64, error) {
	if len(key) != 9 {
		return 0, fmt.Errorf("%w %x", errBadKey, key)
	}
	return binary.BigEndian.Uint64(key[1:]), nil
}
