package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Order sizes: every order has minLines to maxLines lines; rendered as an
// update_order message that is about 2.2 to 9.6 KiB, about 6 KiB on average
// (checked by TestOrderSizes).
const (
	minLines      = 5
	maxLines      = 30
	maxOpenOrders = 3 // open orders per terminal; a new one beyond it replaces the oldest
)

// benchOrder is an order as one terminal holds it locally: the fields the
// Odoo 12 POS exports (export_as_JSON, protocol.md §4.2) that change
// between updates. Only its terminal's sender goroutine touches it, so
// at most one update of an order is ever in flight.
type benchOrder struct {
	uid       string
	seq       int64 // sequence_number (the server's number after the first answer)
	rev       int64 // revision_ID as last acknowledged
	onServer  bool  // order_on_server (set after the first answer)
	lines     []orderLine
	nextLine  int
	createdAt string
}

type orderLine struct {
	id      int
	product int
	qty     int
	price   float64
	note    string
}

// termOrders is the order book of one terminal: its open orders and the
// local sequence for new ones.
type termOrders struct {
	t      *termInfo
	rnd    *rand.Rand
	open   []*benchOrder
	nextSq int64
}

func newTermOrders(t *termInfo, seed uint64) *termOrders {
	return &termOrders{t: t, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

var notes = []string{"", "", "no onions", "to go", "extra hot", "no ice"}

func (b *termOrders) newLine(o *benchOrder) {
	o.nextLine++
	o.lines = append(o.lines, orderLine{
		id:      o.nextLine,
		product: 30 + b.rnd.IntN(400),
		qty:     1 + b.rnd.IntN(4),
		price:   float64(50+b.rnd.IntN(2000)) / 10,
		note:    notes[b.rnd.IntN(len(notes))],
	})
}

// next picks the order of the terminal's next update and changes it the
// way a cashier would: a new order (5–30 lines) about one update in five,
// otherwise an edit of one of its open orders (change a quantity, add or
// remove a line, staying within 5–30 lines). It returns the order and
// whether it is new.
func (b *termOrders) next() *benchOrder {
	if len(b.open) == 0 || b.rnd.IntN(5) == 0 {
		b.nextSq++
		o := &benchOrder{
			uid:       fmt.Sprintf("%05d-%03d-%04d", b.t.session, b.t.login, b.nextSq),
			seq:       b.nextSq,
			rev:       1,
			createdAt: "2026-12-01T10:15:00.000Z",
		}
		for range minLines + b.rnd.IntN(maxLines-minLines+1) {
			b.newLine(o)
		}
		if len(b.open) >= maxOpenOrders {
			b.open = b.open[1:] // paid and gone (not sent: only update_order is measured)
		}
		b.open = append(b.open, o)
		return o
	}
	o := b.open[b.rnd.IntN(len(b.open))]
	switch r := b.rnd.IntN(10); {
	case r < 2 && len(o.lines) < maxLines:
		b.newLine(o)
	case r < 4 && len(o.lines) > minLines:
		i := b.rnd.IntN(len(o.lines))
		o.lines = append(o.lines[:i], o.lines[i+1:]...)
	default:
		l := &o.lines[b.rnd.IntN(len(o.lines))]
		l.qty = 1 + (l.qty+b.rnd.IntN(3))%9
	}
	return o
}

// appendMessage appends the update_order message of o as ms.js sends it
// (protocol.md §4.1, §4.2): {"action":"update_order","session_id":…,
// "login_number":…,"data":{<export_as_JSON>,"pos_id":…,"nonce":…}}.
func appendMessage(b []byte, t *termInfo, o *benchOrder, nonce string) []byte {
	msInfo := func(b []byte) []byte {
		b = append(b, `{"user":{"id":`...)
		b = strconv.AppendInt(b, int64(t.user), 10)
		b = append(b, `,"name":"Cashier `...)
		b = strconv.AppendInt(b, int64(t.user), 10)
		b = append(b, `"},"pos":{"id":`...)
		b = strconv.AppendInt(b, int64(t.pos), 10)
		b = append(b, `,"name":"Till `...)
		b = strconv.AppendInt(b, int64(t.pos), 10)
		return append(b, `"}}`...)
	}
	total := 0.0
	for _, l := range o.lines {
		total += float64(l.qty) * l.price
	}
	b = append(b, `{"action":"update_order","session_id":`...)
	b = strconv.AppendInt(b, int64(t.session), 10)
	b = append(b, `,"login_number":`...)
	b = strconv.AppendInt(b, int64(t.login), 10)
	b = append(b, `,"data":{"name":"Order `...)
	b = append(b, o.uid...)
	b = append(b, `","amount_paid":0,"amount_total":`...)
	b = strconv.AppendFloat(b, total, 'f', 2, 64)
	b = append(b, `,"amount_tax":0,"amount_return":0,"lines":[`...)
	for i, l := range o.lines {
		if i > 0 {
			b = append(b, ',')
		}
		sub := float64(l.qty) * l.price
		b = append(b, `[0,0,{"qty":`...)
		b = strconv.AppendInt(b, int64(l.qty), 10)
		b = append(b, `,"price_unit":`...)
		b = strconv.AppendFloat(b, l.price, 'f', -1, 64)
		b = append(b, `,"price_subtotal":`...)
		b = strconv.AppendFloat(b, sub, 'f', 2, 64)
		b = append(b, `,"price_subtotal_incl":`...)
		b = strconv.AppendFloat(b, sub, 'f', 2, 64)
		b = append(b, `,"discount":0,"product_id":`...)
		b = strconv.AppendInt(b, int64(l.product), 10)
		b = append(b, `,"tax_ids":[[6,false,[]]],"id":`...)
		b = strconv.AppendInt(b, int64(l.id), 10)
		b = append(b, `,"pack_lot_ids":[],"note":"`...)
		b = append(b, l.note...)
		b = append(b, `","uid":"`...)
		b = append(b, o.uid...)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(l.id), 10)
		b = append(b, `","ms_info":{"created":`...)
		b = msInfo(b)
		b = append(b, `}}]`...)
	}
	b = append(b, `],"statement_ids":[],"pos_session_id":`...)
	b = strconv.AppendInt(b, int64(t.session), 10)
	b = append(b, `,"pricelist_id":1,"partner_id":false,"user_id":`...)
	b = strconv.AppendInt(b, int64(t.user), 10)
	b = append(b, `,"uid":"`...)
	b = append(b, o.uid...)
	b = append(b, `","sequence_number":`...)
	b = strconv.AppendInt(b, o.seq, 10)
	b = append(b, `,"creation_date":"`...)
	b = append(b, o.createdAt...)
	b = append(b, `","fiscal_position_id":false,"table_id":`...)
	b = strconv.AppendInt(b, int64(1+t.pos%20), 10)
	b = append(b, `,"floor":"Main Floor","customer_count":2,"multiprint_resume":"{}","ms_info":{"created":`...)
	b = msInfo(b)
	b = append(b, `,"changed":`...)
	b = msInfo(b)
	b = append(b, `},"revision_ID":`...)
	b = strconv.AppendInt(b, o.rev, 10)
	b = append(b, `,"new_order":`...)
	b = strconv.AppendBool(b, !o.onServer)
	if o.onServer {
		b = append(b, `,"order_on_server":true`...)
	}
	b = append(b, `,"run_ID":1,"pos_id":`...)
	b = strconv.AppendInt(b, int64(t.pos), 10)
	b = append(b, `,"nonce":"`...)
	b = append(b, nonce...)
	return append(b, `"}}`...)
}

// nonceFor returns the nonce of update number n: base-36 like ms.js
// ((Math.random()+1).toString(36).substring(7), usually 5 characters),
// but unique within a run, so a delivery names its update.
func nonceFor(n uint64) string {
	s := strconv.FormatUint(n, 36)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}
