package state

import (
	"fmt"
	"testing"
)

func TestKeyGroupRangesPartition(t *testing.T) {
	for _, maxP := range []int{1, 7, 128, 1000} {
		for _, p := range []int{1, 2, 3, 5, 7} {
			if p > maxP {
				continue
			}
			t.Run(fmt.Sprintf("max=%d,p=%d", maxP, p), func(t *testing.T) {
				must(t, ValidateMaxParallelism(maxP, p))
				next := 0
				for i := range p {
					r := KeyGroupRangeForSubtask(maxP, p, i)
					eq(t, r.Start, next)
					if r.Len() == 0 {
						t.Fatalf("subtask %d owns no key groups", i)
					}
					for kg := r.Start; kg <= r.End; kg++ {
						eq(t, OperatorIndexForKeyGroup(maxP, p, kg), i)
					}
					next = r.End + 1
				}
				eq(t, next, maxP)
			})
		}
	}
	isErrAny(t, ValidateMaxParallelism(0, 1))
	isErrAny(t, ValidateMaxParallelism(UpperBoundMaxParallelism+1, 1))
	isErrAny(t, ValidateMaxParallelism(4, 5))
}

func isErrAny(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
}

func TestKeyGroupRange(t *testing.T) {
	r := KeyGroupRange{2, 5}
	eq(t, r.Len(), 4)
	eq(t, r.Contains(2), true)
	eq(t, r.Contains(6), false)
	eq(t, r.Intersect(KeyGroupRange{4, 9}), KeyGroupRange{4, 5})
	eq(t, r.Intersect(KeyGroupRange{7, 9}).Len(), 0)
	eq(t, KeyGroupRange{3, 2}.Len(), 0)
	eq(t, r.String(), "[2, 5]")
}

// The hashes and key groups of keys must never change between versions:
// savepoints depend on them. These values pin them.
func TestHasherStable(t *testing.T) {
	hs := mustHasher[string](t)
	hi := mustHasher[int](t)
	hi64 := mustHasher[int64](t)
	type userID int64
	type name string
	type pair struct {
		A int32
		B string
	}
	hu := mustHasher[userID](t)
	hn := mustHasher[name](t)
	hp := mustHasher[pair](t)
	ha := mustHasher[[2]uint16](t)

	eq(t, hs(""), uint32(2166136261))
	eq(t, hs("hello"), uint32(0x4f9f2cab))
	eq(t, hi(42), uint32(42))
	eq(t, hi(-1), uint32(0))
	eq(t, hi64(1<<40), uint32(256))
	eq(t, hu(42), hi(42)) // named integers hash as their value
	eq(t, hn("hello"), hs("hello"))
	eq(t, hp(pair{1, "x"}), hp(pair{1, "x"}))
	if hp(pair{1, "x"}) == hp(pair{2, "x"}) {
		t.Error("struct fields do not contribute to the hash")
	}
	eq(t, ha([2]uint16{1, 2}), ha([2]uint16{1, 2}))

	eq(t, KeyGroupForHash(0, 128), int(murmurScramble(0)%128))
	got := []int{}
	for _, k := range []string{"a", "b", "flink", "go"} {
		got = append(got, KeyGroupForHash(hs(k), 128))
	}
	eq(t, got, pinnedKeyGroups)
}

var pinnedKeyGroups = []int{7, 25, 13, 97}

func mustHasher[K comparable](t *testing.T) func(K) uint32 {
	t.Helper()
	h, err := Hasher[K]()
	must(t, err)
	return h
}

func TestHasherUnstable(t *testing.T) {
	type withPtr struct{ P *int }
	for name, err := range map[string]error{
		"pointer":   get2(Hasher[*int]()),
		"interface": get2(Hasher[any]()),
		"chan":      get2(Hasher[chan int]()),
		"struct":    get2(Hasher[withPtr]()),
		"array":     get2(Hasher[[2]*int]()),
	} {
		t.Run(name, func(t *testing.T) { isErr(t, err, ErrUnhashableKey) })
	}
}
