package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger reads the value log only when a value is asked for, except at
// open: it scans the newest value-log file and cuts it at the first entry
// that does not check out, as after a power cut mid-write. On a damaged
// file that cut drops acknowledged orders and rewrites the file. So
// verifyFiles also checks every value pointer of the table files: the
// entry it names is in its file, whole, with a good checksum, and before
// the point where Badger would cut the newest file.

// Value-log layout (badger/v4 value.go, memtable.go): a 20-byte file
// header, then entries of header (meta, user meta, uvarint key length,
// uvarint value length, uvarint expiry), key, value and a big-endian
// Castagnoli CRC-32 of all that. Table entries whose meta has
// bitValuePointer hold {Fid, Len, Offset uint32} in host byte order.
const (
	vlogHeaderSize  = 20
	bitValuePointer = 1 << 1
	vptrSize        = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// vlogFile is a value-log file read for checking.
type vlogFile struct {
	name string
	mf   *z.MmapFile // nil for an empty file
	data []byte
	end  int // newest file only: end of the last whole entry that checks out, from the start
}

// readVlogs maps the value-log files of dir by file id, and finds where
// Badger would cut the newest one.
func readVlogs(dir string, names []string) (map[uint32]*vlogFile, error) {
	files := make(map[uint32]*vlogFile, len(names))
	for _, name := range names {
		id, err := strconv.ParseUint(strings.TrimSuffix(name, ".vlog"), 10, 32)
		if err != nil {
			continue
		}
		f := &vlogFile{name: name}
		files[uint32(id)] = f
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Size() == 0 {
			continue // mmap refuses empty files
		}
		mf, err := z.OpenMmapFile(filepath.Join(dir, name), os.O_RDONLY, 0)
		if err != nil {
			closeVlogs(files)
			e := classifyOpenError(dir, fmt.Errorf("value-log file cannot be read: %w", err))
			e.File = name
			return nil, e
		}
		f.mf, f.data = mf, mf.Data
	}
	var newest uint32
	for fid := range files {
		newest = max(newest, fid)
	}
	if f := files[newest]; f != nil {
		f.end = validEnd(f.data)
	}
	return files, nil
}

// closeVlogs unmaps the files of readVlogs.
func closeVlogs(files map[uint32]*vlogFile) {
	for _, f := range files {
		if f.mf != nil {
			_ = f.mf.Close(-1) // -1: never truncate
		}
	}
}

// validEnd returns the offset after the last entry of data, from the
// start, that is whole and checks out: where Badger cuts the file.
func validEnd(data []byte) int {
	off := vlogHeaderSize
	for off < len(data) {
		n, ok := entryLen(data[off:])
		if !ok {
			break
		}
		off += n
	}
	return min(off, len(data))
}

// entryLen returns the length of the entry at the start of b, if it is
// whole, not empty and its checksum matches.
func entryLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	h := 2
	var lens [3]uint64
	for i := range lens {
		v, n := binary.Uvarint(b[h:])
		if n <= 0 {
			return 0, false
		}
		lens[i], h = v, h+n
	}
	klen, vlen := lens[0], lens[1]
	if klen == 0 || klen > 1<<16 || vlen > uint64(len(b)) {
		return 0, false
	}
	n := h + int(klen) + int(vlen)
	if n+4 > len(b) || crc32.Checksum(b[:n], castagnoli) != binary.BigEndian.Uint32(b[n:]) {
		return 0, false
	}
	return n + 4, true
}

// checkPointers checks every value pointer of t against files (newest is
// the highest file id): a pointer into an older file that is gone
// (rewritten by value-log GC) is an old version Badger never reads and is
// skipped.
func checkPointers(dir string, t *table.Table, files map[uint32]*vlogFile, newest uint32) error {
	it := t.NewIterator(table.NOCACHE)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		vs := it.ValueCopy()
		if vs.Meta&bitValuePointer == 0 || len(vs.Value) < vptrSize {
			continue
		}
		fid := binary.NativeEndian.Uint32(vs.Value[0:])
		n := int(binary.NativeEndian.Uint32(vs.Value[4:]))
		off := int(binary.NativeEndian.Uint32(vs.Value[8:]))
		f, ok := files[fid]
		if !ok {
			if len(files) == 0 || fid >= newest { // GC never removes the newest file
				return &OpenError{Dir: dir, File: fmt.Sprintf("%06d.vlog", fid), Problem: ProblemDamaged, Err: fmt.Errorf(
					"value-log file is missing, and table %s points into it", table.IDToFilename(t.ID()))}
			}
			continue
		}
		end := len(f.data)
		if fid == newest {
			end = f.end // Badger cuts the newest file there
		}
		if off < vlogHeaderSize || off+n > end {
			return &OpenError{Dir: dir, File: f.name, Problem: ProblemDamaged, Err: fmt.Errorf(
				"value log is truncated or corrupt: table %s needs bytes %d-%d, but only %d bytes check out (file size %d)",
				table.IDToFilename(t.ID()), off, off+n, end, len(f.data))}
		}
		if got, ok := entryLen(f.data[off:]); !ok || got != n {
			return &OpenError{Dir: dir, File: f.name, Problem: ProblemDamaged, Err: fmt.Errorf(
				"value log is corrupt: the entry at offset %d (%d bytes, needed by table %s) fails its checksum",
				off, n, table.IDToFilename(t.ID()))}
		}
	}
	return nil
}
