package state

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// DefaultMaxParallelism is the number of key groups a job has unless it sets
// its own. Flink derives a default from the parallelism with a floor of 128;
// we use the floor, which keeps key-group bookkeeping small.
const DefaultMaxParallelism = 128

// UpperBoundMaxParallelism is the largest max parallelism Flink accepts (2^15).
const UpperBoundMaxParallelism = 1 << 15

// ErrUnhashableKey is returned when a key type has no stable hash: pointers,
// channels, functions and interfaces holding them hash by address, which
// differs between processes.
var ErrUnhashableKey = errors.New("state: key type has no stable hash")

// KeyGroupRange is the inclusive range [Start, End] of key groups owned by one
// subtask. An empty range has End < Start.
type KeyGroupRange struct {
	Start int
	End   int
}

// Len returns the number of key groups in r.
func (r KeyGroupRange) Len() int {
	if r.End < r.Start {
		return 0
	}
	return r.End - r.Start + 1
}

// Contains reports whether key group kg lies in r.
func (r KeyGroupRange) Contains(kg int) bool { return kg >= r.Start && kg <= r.End }

// Intersect returns the key groups present in both r and o.
func (r KeyGroupRange) Intersect(o KeyGroupRange) KeyGroupRange {
	return KeyGroupRange{Start: max(r.Start, o.Start), End: min(r.End, o.End)}
}

// String formats r as "[start, end]".
func (r KeyGroupRange) String() string { return fmt.Sprintf("[%d, %d]", r.Start, r.End) }

// ValidateMaxParallelism checks that a max parallelism is usable with the
// given parallelism.
func ValidateMaxParallelism(maxParallelism, parallelism int) error {
	if maxParallelism < 1 || maxParallelism > UpperBoundMaxParallelism {
		return fmt.Errorf("state: max parallelism %d out of range [1, %d]", maxParallelism, UpperBoundMaxParallelism)
	}
	if parallelism > maxParallelism {
		return fmt.Errorf("state: parallelism %d exceeds max parallelism %d", parallelism, maxParallelism)
	}
	return nil
}

// KeyGroupForHash maps a key's 32-bit hash to its key group, as Flink's
// KeyGroupRangeAssignment.computeKeyGroupForKeyHash does.
func KeyGroupForHash(hash uint32, maxParallelism int) int {
	return int(murmurScramble(hash) % uint32(maxParallelism))
}

// OperatorIndexForKeyGroup returns the subtask that owns key group kg.
func OperatorIndexForKeyGroup(maxParallelism, parallelism, kg int) int {
	return kg * parallelism / maxParallelism
}

// KeyGroupRangeForSubtask returns the contiguous key groups owned by subtask
// index of an operator with the given parallelism.
func KeyGroupRangeForSubtask(maxParallelism, parallelism, index int) KeyGroupRange {
	start := (index*maxParallelism + parallelism - 1) / parallelism
	end := ((index+1)*maxParallelism - 1) / parallelism
	return KeyGroupRange{Start: start, End: end}
}

// murmurScramble is the murmur3 32-bit hash of a single int, as Flink's
// MathUtils.murmurHash: it spreads poorly distributed hash codes before the
// modulo.
func murmurScramble(code uint32) uint32 {
	code *= 0xcc9e2d51
	code = code<<15 | code>>17
	code *= 0x1b873593
	code = code<<13 | code>>19
	code = code*5 + 0xe6546b64
	code ^= 4
	code ^= code >> 16
	code *= 0x85ebca6b
	code ^= code >> 13
	code *= 0xc2b2ae35
	code ^= code >> 16
	return code
}

// Hasher returns a stable hash function for keys of type K: the same key gives
// the same hash in every process and every run, which key groups rely on.
// Strings, booleans and numbers hash directly; other comparable types (arrays
// and structs of those) hash their msgpack encoding. Types that contain
// pointers, channels or interfaces have no stable hash and return
// ErrUnhashableKey.
func Hasher[K comparable]() (func(K) uint32, error) {
	var zero K
	t := reflect.TypeOf(&zero).Elem()
	if !stableHashable(t) {
		return nil, fmt.Errorf("%w: %s", ErrUnhashableKey, t)
	}
	var f any
	switch any(zero).(type) {
	case string:
		f = func(k string) uint32 { return hashString(k) }
	case int:
		f = func(k int) uint32 { return hashUint64(uint64(k)) }
	case int64:
		f = func(k int64) uint32 { return hashUint64(uint64(k)) }
	case int32:
		f = func(k int32) uint32 { return hashUint64(uint64(k)) }
	case uint64:
		f = hashUint64
	case uint32:
		f = func(k uint32) uint32 { return hashUint64(uint64(k)) }
	case uint:
		f = func(k uint) uint32 { return hashUint64(uint64(k)) }
	}
	if h, ok := f.(func(K) uint32); ok {
		return h, nil
	}
	if t.Kind() >= reflect.Int && t.Kind() <= reflect.Uintptr {
		// Named integer types (type UserID int64) hash as their value.
		return func(k K) uint32 {
			v := reflect.ValueOf(k)
			if v.CanInt() {
				return hashUint64(uint64(v.Int()))
			}
			return hashUint64(v.Uint())
		}, nil
	}
	if t.Kind() == reflect.String {
		return func(k K) uint32 { return hashString(reflect.ValueOf(k).String()) }, nil
	}
	return func(k K) uint32 {
		b, err := msgpack.Marshal(k)
		if err != nil {
			// Every stableHashable type encodes; keep the hash defined anyway.
			return 0
		}
		h := fnv.New32a()
		h.Write(b)
		return h.Sum32()
	}, nil
}

func stableHashable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return stableHashable(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if !stableHashable(t.Field(i).Type) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

// hashString is FNV-1a over the string's bytes, without allocating.
func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// hashUint64 folds a 64-bit value to 32 bits the way Java's Long.hashCode
// does; the murmur scramble in KeyGroupForHash spreads it.
func hashUint64(v uint64) uint32 { return uint32(v ^ v>>32) }
