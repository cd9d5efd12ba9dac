package gen

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// The records encode as msgpack arrays of their fields in declaration order, and an Event as
// [kind, record]: compact, and without reflection on the hot path.

var (
	_ msgpack.CustomEncoder = (*Event)(nil)
	_ msgpack.CustomDecoder = (*Event)(nil)
	_ msgpack.CustomEncoder = (*Person)(nil)
	_ msgpack.CustomDecoder = (*Person)(nil)
	_ msgpack.CustomEncoder = (*Auction)(nil)
	_ msgpack.CustomDecoder = (*Auction)(nil)
	_ msgpack.CustomEncoder = (*Bid)(nil)
	_ msgpack.CustomDecoder = (*Bid)(nil)
)

// enc wraps a msgpack encoder and keeps its first error, so field lists read as lists.
type enc struct {
	e   *msgpack.Encoder
	err error
}

func (w *enc) arrayLen(n int) {
	if w.err == nil {
		w.err = w.e.EncodeArrayLen(n)
	}
}

func (w *enc) int(v int64) {
	if w.err == nil {
		w.err = w.e.EncodeInt(v)
	}
}

func (w *enc) str(s string) {
	if w.err == nil {
		w.err = w.e.EncodeString(s)
	}
}

// dec wraps a msgpack decoder and keeps its first error.
type dec struct {
	d   *msgpack.Decoder
	err error
}

func (r *dec) arrayLen(what string, want int) {
	if r.err != nil {
		return
	}
	n, err := r.d.DecodeArrayLen()
	if err != nil {
		r.err = err
	} else if n != want {
		r.err = fmt.Errorf("nexmark: decode %s: want an array of %d fields, got %d", what, want, n)
	}
}

func (r *dec) int(p *int64) {
	if r.err == nil {
		*p, r.err = r.d.DecodeInt64()
	}
}

func (r *dec) str(p *string) {
	if r.err == nil {
		*p, r.err = r.d.DecodeString()
	}
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (p *Person) EncodeMsgpack(e *msgpack.Encoder) error {
	w := enc{e: e}
	p.encode(&w)
	return w.err
}

func (p *Person) encode(w *enc) {
	w.arrayLen(8)
	w.int(p.ID)
	w.str(p.Name)
	w.str(p.EmailAddress)
	w.str(p.CreditCard)
	w.str(p.City)
	w.str(p.State)
	w.int(p.DateTime)
	w.str(p.Extra)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (p *Person) DecodeMsgpack(d *msgpack.Decoder) error {
	r := dec{d: d}
	p.decode(&r)
	return r.err
}

func (p *Person) decode(r *dec) {
	r.arrayLen("person", 8)
	r.int(&p.ID)
	r.str(&p.Name)
	r.str(&p.EmailAddress)
	r.str(&p.CreditCard)
	r.str(&p.City)
	r.str(&p.State)
	r.int(&p.DateTime)
	r.str(&p.Extra)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (a *Auction) EncodeMsgpack(e *msgpack.Encoder) error {
	w := enc{e: e}
	a.encode(&w)
	return w.err
}

func (a *Auction) encode(w *enc) {
	w.arrayLen(10)
	w.int(a.ID)
	w.str(a.ItemName)
	w.str(a.Description)
	w.int(a.InitialBid)
	w.int(a.Reserve)
	w.int(a.DateTime)
	w.int(a.Expires)
	w.int(a.Seller)
	w.int(a.Category)
	w.str(a.Extra)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (a *Auction) DecodeMsgpack(d *msgpack.Decoder) error {
	r := dec{d: d}
	a.decode(&r)
	return r.err
}

func (a *Auction) decode(r *dec) {
	r.arrayLen("auction", 10)
	r.int(&a.ID)
	r.str(&a.ItemName)
	r.str(&a.Description)
	r.int(&a.InitialBid)
	r.int(&a.Reserve)
	r.int(&a.DateTime)
	r.int(&a.Expires)
	r.int(&a.Seller)
	r.int(&a.Category)
	r.str(&a.Extra)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (b *Bid) EncodeMsgpack(e *msgpack.Encoder) error {
	w := enc{e: e}
	b.encode(&w)
	return w.err
}

func (b *Bid) encode(w *enc) {
	w.arrayLen(7)
	w.int(b.Auction)
	w.int(b.Bidder)
	w.int(b.Price)
	w.str(b.Channel)
	w.str(b.URL)
	w.int(b.DateTime)
	w.str(b.Extra)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (b *Bid) DecodeMsgpack(d *msgpack.Decoder) error {
	r := dec{d: d}
	b.decode(&r)
	return r.err
}

func (b *Bid) decode(r *dec) {
	r.arrayLen("bid", 7)
	r.int(&b.Auction)
	r.int(&b.Bidder)
	r.int(&b.Price)
	r.str(&b.Channel)
	r.str(&b.URL)
	r.int(&b.DateTime)
	r.str(&b.Extra)
}

// EncodeMsgpack implements msgpack.CustomEncoder: [kind, record].
func (e *Event) EncodeMsgpack(m *msgpack.Encoder) error {
	w := enc{e: m}
	w.arrayLen(2)
	w.int(int64(e.Kind))
	switch e.Kind {
	case PersonEvent:
		e.Person.encode(&w)
	case AuctionEvent:
		e.Auction.encode(&w)
	case BidEvent:
		e.Bid.encode(&w)
	default:
		return fmt.Errorf("nexmark: encode event: unknown kind %d", e.Kind)
	}
	return w.err
}

// DecodeMsgpack implements msgpack.CustomDecoder. The records other than the decoded one are
// zeroed.
func (e *Event) DecodeMsgpack(d *msgpack.Decoder) error {
	r := dec{d: d}
	r.arrayLen("event", 2)
	var kind int64
	r.int(&kind)
	if r.err != nil {
		return r.err
	}
	*e = Event{Kind: EventKind(kind)}
	switch e.Kind {
	case PersonEvent:
		e.Person.decode(&r)
	case AuctionEvent:
		e.Auction.decode(&r)
	case BidEvent:
		e.Bid.decode(&r)
	default:
		return fmt.Errorf("nexmark: decode event: unknown kind %d", kind)
	}
	return r.err
}
