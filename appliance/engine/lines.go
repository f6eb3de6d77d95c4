package engine

import "encoding/json"

// markChanged sets "is_changed": true on every incoming line whose uid is in
// the stored message and whose content differs from the stored line
// (protocol.md §4.2 step 4, reference dict_compare): keys present on one
// side only count, except is_changed; a differing "id" does not count,
// because each POS numbers its own line objects (an id present on one side
// only does count, as in the reference). New lines get no flag.
// Lines that are not [x, y, {uid: ...}] triples are left alone.
//
// incoming is data's "lines" as parseLines split them (checkLines did);
// markChanged updates them and data in place. old is the stored order's
// lines by uid (nil: none). markChanged returns the new lines by uid, to
// be kept as the next call's old.
func markChanged(data object, incoming []line, old map[string]object) map[string]object {
	if len(incoming) == 0 {
		return nil
	}
	changed := false
	cur := make(map[string]object, len(incoming))
	for i, ln := range incoming {
		uid, ok := lineUID(ln.dict)
		if !ok {
			continue
		}
		cur[uid] = ln.dict
		prev, ok := old[uid]
		if !ok || !lineDiffers(ln.dict, prev) {
			continue
		}
		ln.dict["is_changed"] = rawTrue
		incoming[i].raw = ln.encode()
		changed = true
	}
	if changed {
		data["lines"] = encodeLines(incoming)
	}
	return cur
}

// markAllChanged sets "is_changed": true on every line (sync_all answers,
// decision 6: a client that missed updates must apply every line).
func markAllChanged(data object) {
	lines, ok := parseLines(data.field("lines"))
	if !ok || len(lines) == 0 {
		return
	}
	for i, ln := range lines {
		if ln.dict == nil {
			continue
		}
		ln.dict["is_changed"] = rawTrue
		lines[i].raw = ln.encode()
	}
	data["lines"] = encodeLines(lines)
}

type line struct {
	raw    json.RawMessage   // the whole element
	triple []json.RawMessage // nil if not an array
	dict   object            // triple[2] if it is an object
}

func (l line) encode() json.RawMessage {
	b := []byte{'['}
	for i, v := range l.triple {
		if i > 0 {
			b = append(b, ',')
		}
		if i == 2 {
			b = appendObject(b, l.dict)
		} else {
			b = append(b, v...)
		}
	}
	return append(b, ']')
}

func parseLines(raw json.RawMessage) ([]line, bool) {
	if raw == nil || kind(raw) != "array" {
		return nil, false
	}
	// Fast path: every element is an array (the Odoo [0, 0, {...}] form).
	// raw is a member of a parsed message (valid JSON): split it without
	// validating it again, or fall back to encoding/json.
	triples, ok := splitTriples(raw)
	if !ok && json.Unmarshal(raw, &triples) == nil {
		ok = true
	}
	if ok {
		out := make([]line, len(triples))
		for i, tr := range triples {
			out[i].raw = encodeRaw(tr)
			if len(tr) < 3 || kind(tr[2]) != "object" {
				continue
			}
			d, ok := splitObject(tr[2])
			if !ok {
				continue
			}
			out[i].triple, out[i].dict = tr, d
		}
		return out, true
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return nil, false
	}
	out := make([]line, len(elems))
	for i, el := range elems {
		out[i].raw = el
		if kind(el) != "array" {
			continue
		}
		var triple []json.RawMessage
		if json.Unmarshal(el, &triple) != nil || len(triple) < 3 || kind(triple[2]) != "object" {
			continue
		}
		var d object
		if json.Unmarshal(triple[2], &d) != nil {
			continue
		}
		out[i].triple, out[i].dict = triple, d
	}
	return out, true
}

func encodeRaw(elems []json.RawMessage) json.RawMessage {
	b := []byte{'['}
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

func encodeLines(lines []line) json.RawMessage {
	b := []byte{'['}
	for i, l := range lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.raw...)
	}
	return append(b, ']')
}

func lineUID(d object) (string, bool) {
	if d == nil {
		return "", false
	}
	raw := d.field("uid")
	if raw == nil {
		return "", false
	}
	return string(compactRaw(raw)), true // compared as raw JSON: uids are opaque
}

func storedLines(msg []byte) map[string]object {
	if msg == nil {
		return nil
	}
	var m struct {
		Data struct {
			Lines json.RawMessage `json:"lines"`
		} `json:"data"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return nil
	}
	lines, ok := parseLines(m.Data.Lines)
	if !ok {
		return nil
	}
	out := make(map[string]object, len(lines))
	for _, l := range lines {
		if uid, ok := lineUID(l.dict); ok {
			out[uid] = l.dict
		}
	}
	return out
}

func lineDiffers(in, stored object) bool {
	for k, v := range in {
		w, ok := stored[k]
		if !ok {
			if k == "is_changed" {
				continue
			}
			return true
		}
		if k != "id" && !jsonEqual(v, w) {
			return true
		}
	}
	for k := range stored {
		if _, ok := in[k]; !ok && k != "is_changed" {
			return true
		}
	}
	return false
}
