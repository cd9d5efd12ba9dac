package gen

import (
	"math"
	"math/bits"
)

// rng is a SplitMix64 stream: tiny, fast, and good enough for synthetic data. Each event gets its
// own stream, seeded from the config's seed and the event number, so events can be generated
// independently and in any order.
type rng struct{ s uint64 }

const golden = 0x9E3779B97F4A7C15

// mix64 is SplitMix64's output function, a bijective avalanche of x.
func mix64(x uint64) uint64 {
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// newRNG returns the stream of event i under seed.
func newRNG(seed uint64, i int64) rng {
	return rng{s: mix64(seed*0xD1B54A32D192ED03 + uint64(i)*golden + 0x632BE59BD9B4E019)}
}

func (r *rng) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// intn returns a value in [0, n) for n > 0 (Lemire's multiply-shift; the bias is below 2^-40 for
// the small n used here).
func (r *rng) intn(n int64) int64 {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int64(hi)
}

// float64 returns a value in [0, 1).
func (r *rng) float64() float64 {
	return float64(r.next()>>11) * (1.0 / (1 << 53))
}

// price returns a price in cents, log-uniform between 1 and 10^6 dollars: round(10^(6u) * 100)
// as Nexmark's PriceGenerator.
func (r *rng) price() int64 {
	return int64(math.Round(math.Exp(r.float64()*6*math.Ln10) * 100))
}
