package httpapi

import (
	"fmt"
	"html/template"
	"strings"
	"sync"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// qrQuiet is the quiet zone around a QR code, in modules (the standard
// asks for 4).
const qrQuiet = 4

// qrCache keeps rendered QR codes: the box's URLs rarely change, so the
// status page encodes each one once.
type qrCache struct {
	// mu guards the field that follows.
	mu sync.Mutex
	m  map[string]template.HTML
}

// svg returns an inline SVG QR code of text (medium error correction,
// black on white), or "" when it cannot be encoded.
func (c *qrCache) svg(text string) template.HTML {
	c.mu.Lock()
	defer c.mu.Unlock()
	if out, ok := c.m[text]; ok {
		return out
	}
	out := qrSVG(text)
	if c.m == nil || len(c.m) > 64 { // bounded: the Host header is the client's
		c.m = map[string]template.HTML{}
	}
	c.m[text] = out
	return out
}

// bitmapWriter captures the module matrix of a qrcode.QRCode.
type bitmapWriter struct{ bits [][]bool }

func (w *bitmapWriter) Write(m qrcode.Matrix) error { w.bits = m.Bitmap(); return nil }
func (w *bitmapWriter) Close() error                { return nil }

func qrSVG(text string) template.HTML {
	code, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return ""
	}
	var w bitmapWriter
	if err := code.Save(&w); err != nil || len(w.bits) == 0 {
		return ""
	}
	n := len(w.bits) + 2*qrQuiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="QR code of %s">`,
		n, n, template.HTMLEscapeString(text))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range w.bits {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x+qrQuiet, y+qrQuiet, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()) //nolint:gosec // built here from numbers and an escaped label
}
