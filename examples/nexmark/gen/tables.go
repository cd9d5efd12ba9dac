package gen

import (
	"math/bits"
	"strconv"
	"strings"
	"sync"
)

// Nexmark's lists: few states so that q3 (people in OR, ID or CA) finds matches in small runs.
var (
	usStates   = []string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = []string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	firstNames = []string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = []string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	hotChannel = []string{"Google", "Facebook", "Baidu", "Apple"}
)

const (
	numEmails    = 1 << 12
	numCards     = 1 << 14
	numChannels  = 10_000 // Nexmark's CHANNELS_NUMBER
	lettersLen   = 256 << 10
	textLen      = 64 << 10
	minStringLen = 3                // Nexmark's MIN_STRING_LENGTH
	tablesSeed   = 0x6E65786D61726B // "nexmark"
)

// tables holds the immutable strings events are cut from. It is built once per process and
// shared by every Generator; every field is read-only afterwards.
type tables struct {
	names       []string // "First Last"
	emails      []string
	cards       string // numCards+3 groups of "dddd ": card k is cards[5k : 5k+19]
	letters     string // lowercase letters, for Extra padding
	text        string // letters with a space in 13, for item names and descriptions
	hotURLs     []string
	channels    []string // "channel-N"
	channelURLs []string
}

var sharedTables = sync.OnceValue(buildTables)

func buildTables() *tables {
	r := rng{s: tablesSeed}
	t := &tables{}
	for _, f := range firstNames {
		for _, l := range lastNames {
			t.names = append(t.names, f+" "+l)
		}
	}
	t.emails = make([]string, numEmails)
	for i := range t.emails {
		t.emails[i] = randomString(&r, 7, ' ') + "@" + randomString(&r, 5, ' ') + ".com"
	}
	var b strings.Builder
	for range numCards + 3 {
		for range 4 {
			b.WriteByte(byte('0' + r.intn(10)))
		}
		b.WriteByte(' ')
	}
	t.cards = b.String()
	b.Reset()
	for range lettersLen {
		b.WriteByte(byte('a' + r.intn(26)))
	}
	t.letters = b.String()
	b.Reset()
	for range textLen {
		if r.intn(13) == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(byte('a' + r.intn(26)))
		}
	}
	t.text = b.String()
	t.hotURLs = make([]string, len(hotChannel))
	for i := range t.hotURLs {
		t.hotURLs[i] = baseURL(&r)
	}
	t.channels = make([]string, numChannels)
	t.channelURLs = make([]string, numChannels)
	for n := range numChannels {
		t.channels[n] = "channel-" + strconv.Itoa(n)
		u := baseURL(&r)
		if r.intn(10) > 0 {
			id := int64(int32(bits.Reverse32(uint32(n))))
			if id < 0 {
				id = -id
			}
			u += "&channel_id=" + strconv.FormatInt(id, 10)
		}
		t.channelURLs[n] = u
	}
	return t
}

// randomString is Nexmark's nextString: 3 to maxLen-1 characters, each a letter or, one time in
// 13, the space character sp; surrounding spaces are trimmed.
func randomString(r *rng, maxLen int64, sp byte) string {
	n := minStringLen + r.intn(maxLen-minStringLen)
	buf := make([]byte, n)
	for i := range buf {
		if r.intn(13) == 0 {
			buf[i] = sp
		} else {
			buf[i] = byte('a' + r.intn(26))
		}
	}
	return strings.TrimSpace(string(buf))
}

// baseURL is Nexmark's bid URL shape.
func baseURL(r *rng) string {
	return "https://www.nexmark.com/" + randomString(r, 5, '_') + "/" + randomString(r, 5, '_') + "/" +
		randomString(r, 5, '_') + "/item.htm?query=1"
}

// creditCard returns card k in [0, numCards).
func (t *tables) creditCard(k int64) string {
	return t.cards[5*k : 5*k+19]
}

// nextText is Nexmark's nextString(maxLen) cut from the text table: 3 to maxLen-1 characters,
// trimmed.
func (t *tables) nextText(r *rng, maxLen int64) string {
	n := minStringLen + r.intn(maxLen-minStringLen)
	off := r.intn(int64(len(t.text)) - n + 1)
	return strings.TrimSpace(t.text[off : off+n])
}

// nextExtra is Nexmark's nextExtra: letters such that currentSize plus their length averages
// avgSize (uniform within ±20% of the gap), or "" when currentSize already exceeds avgSize.
func (t *tables) nextExtra(r *rng, currentSize, avgSize int) string {
	if currentSize > avgSize {
		return ""
	}
	want := avgSize - currentSize
	delta := (want*2 + 5) / 10 // round(want * 0.2)
	n := int64(want - delta)
	if delta > 0 {
		n += r.intn(int64(2 * delta))
	}
	off := r.intn(int64(len(t.letters)) - n + 1)
	return t.letters[off : off+n]
}
