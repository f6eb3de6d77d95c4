package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// envelopeBody is an update_order body of about 6 KiB, as the Odoo 12
// client sends it: 20 lines.
func envelopeBody() []byte {
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf(`[0,0,{"uid":"00001-001-0001-%d","qty":1,"price_unit":4.8,"discount":0,"product_id":%d,"id":%d,"pack_lot_ids":[],"note":"","tax_ids":[[6,false,[]]],"ms_info":{"created":{"user":{"id":2,"name":"Mitchell Admin"},"pos":{"id":1,"name":"Shop 1"}}}}]`, i, 50+i, i+1))
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"call","params":{"multi_session_id":1,"message":{"action":"update_order","session_id":12,"login_number":3,"data":{"uid":"00001-001-0001","run_ID":1,"revision_ID":2,"nonce":"n1","lines":[%s]}},"dbname":"shop","user_ID":2},"id":915127480}`, strings.Join(lines, ","))
}

// BenchmarkParseEnvelope: the one-pass scan (parseEnvelope) against
// json.Unmarshal into an envelope, on a 6 KiB update_order body.
func BenchmarkParseEnvelope(b *testing.B) {
	body := envelopeBody()
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseEnvelope(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var env envelope
			if err := json.Unmarshal(body, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
}
