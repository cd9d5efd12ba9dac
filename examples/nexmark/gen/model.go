package gen

import "fmt"

// EventKind says which of an Event's records is set. Its values are the Flink benchmark's
// event_type column.
type EventKind uint8

const (
	// PersonEvent is a new person registering (event_type 0).
	PersonEvent EventKind = 0
	// AuctionEvent is a new auction opening (event_type 1).
	AuctionEvent EventKind = 1
	// BidEvent is a bid on an auction (event_type 2).
	BidEvent EventKind = 2
)

// String returns "person", "auction" or "bid".
func (k EventKind) String() string {
	switch k {
	case PersonEvent:
		return "person"
	case AuctionEvent:
		return "auction"
	case BidEvent:
		return "bid"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Person is a person registering with the auction site.
type Person struct {
	// ID is unique among people, from FirstPersonID up.
	ID int64
	// Name is "First Last".
	Name string
	// EmailAddress is a random address.
	EmailAddress string
	// CreditCard is four groups of four digits.
	CreditCard string
	// City is one of ten cities in the states below.
	City string
	// State is one of AZ, CA, ID, OR, WA, WY.
	State string
	// DateTime is the event timestamp in milliseconds since the Unix epoch.
	DateTime int64
	// Extra pads the record to its average size.
	Extra string
}

// Auction is an auction opening.
type Auction struct {
	// ID is unique among auctions, from FirstAuctionID up.
	ID int64
	// ItemName is a short random text.
	ItemName string
	// Description is a longer random text.
	Description string
	// InitialBid is the starting price in cents.
	InitialBid int64
	// Reserve is the lowest price the seller accepts, above InitialBid.
	Reserve int64
	// DateTime is the event timestamp in milliseconds since the Unix epoch.
	DateTime int64
	// Expires is when the auction closes, after DateTime, in milliseconds since the Unix epoch.
	Expires int64
	// Seller is the id of the selling person.
	Seller int64
	// Category is in [FirstCategoryID, FirstCategoryID+NumCategories).
	Category int64
	// Extra pads the record to its average size.
	Extra string
}

// Bid is a bid on an auction.
type Bid struct {
	// Auction is the id of the auction bid on.
	Auction int64
	// Bidder is the id of the bidding person.
	Bidder int64
	// Price is the bid in cents.
	Price int64
	// Channel is where the bid came from: "Google", "Facebook", "Baidu", "Apple" or
	// "channel-N".
	Channel string
	// URL is the page the bid was placed on.
	URL string
	// DateTime is the event timestamp in milliseconds since the Unix epoch.
	DateTime int64
	// Extra pads the record to its average size.
	Extra string
}

// Event is one Nexmark event: Kind says which of Person, Auction and Bid is set; the others are
// zero. It is a flat value (no pointers) so that a generator fills it without allocating and
// copies of it never alias. It encodes with msgpack as [kind, record], leaving the unset records
// out.
type Event struct {
	// Kind says which record is set.
	Kind EventKind
	// Person is set when Kind is PersonEvent.
	Person Person
	// Auction is set when Kind is AuctionEvent.
	Auction Auction
	// Bid is set when Kind is BidEvent.
	Bid Bid
}

// Timestamp returns the DateTime of the set record, in milliseconds since the Unix epoch.
func (e *Event) Timestamp() int64 {
	switch e.Kind {
	case PersonEvent:
		return e.Person.DateTime
	case AuctionEvent:
		return e.Auction.DateTime
	default:
		return e.Bid.DateTime
	}
}
