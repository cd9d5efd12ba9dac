package state

import (
	"iter"
	"maps"
	"slices"
)

const (
	// shardSplitLen is the size at which a shard makes its key group double
	// its shards. It bounds the copy-on-write pause of one write after a
	// snapshot to copying about this many entries.
	shardSplitLen = 1024
	// maxShards caps the shards of one key group, so that keys whose hash
	// bits collide cannot make a key group split forever.
	maxShards = 1 << 12
)

// table holds one keyed state's entries: per key group of the backend's
// range a directory of a power-of-two number of shards, picked by the key's
// hash bits (HeapKeyedBackend.locate). A shard is a Go map.
//
// Copy on write works on two levels. A snapshot shares every key group's
// directory (O(key groups) to take); the first write to a key group after it
// copies the directory (O(shards in the key group)), and the first write to
// a shard copies the shard (O(shardSplitLen)). A directory or shard created
// at or before the last snapshot's generation is shared; anything newer
// belongs to the table alone.
type table[K comparable, S any] struct {
	b   *HeapKeyedBackend[K]
	kgs []kgDir[K, S]
}

type kgDir[K comparable, S any] struct {
	shards []shard[K, S] // nil until the first write
	gen    uint64
}

type shard[K comparable, S any] struct {
	m   map[K]S
	gen uint64
}

func newTable[K comparable, S any](b *HeapKeyedBackend[K]) table[K, S] {
	return table[K, S]{b: b, kgs: make([]kgDir[K, S], b.kgRange.Len())}
}

// get returns the current key's entry. The caller checked b.cur >= 0.
func (t *table[K, S]) get() (S, bool) {
	shards := t.kgs[t.b.cur].shards
	if len(shards) == 0 {
		var zero S
		return zero, false
	}
	s, ok := shards[t.b.sub&uint32(len(shards)-1)].m[t.b.key]
	return s, ok
}

// writable returns the shard of key group idx selected by sub, copying it
// first if a snapshot shares it.
func (t *table[K, S]) writable(idx int, sub uint32) map[K]S {
	d := &t.kgs[idx]
	if d.gen <= t.b.snapGen {
		if d.shards == nil {
			d.shards = make([]shard[K, S], 1)
		} else {
			d.shards = slices.Clone(d.shards)
		}
		d.gen = t.b.gen
	}
	sh := &d.shards[sub&uint32(len(d.shards)-1)]
	if sh.gen > t.b.snapGen {
		return sh.m
	}
	if sh.m == nil {
		sh.m = make(map[K]S)
	} else {
		sh.m = maps.Clone(sh.m)
	}
	sh.gen = t.b.gen
	return sh.m
}

// put sets the current key's entry.
func (t *table[K, S]) put(s S) { t.insert(t.b.cur, t.b.sub, t.b.key, s) }

// insert sets k's entry in key group idx.
func (t *table[K, S]) insert(idx int, sub uint32, k K, s S) {
	m := t.writable(idx, sub)
	m[k] = s
	if len(m) > t.b.splitLen && len(t.kgs[idx].shards) < maxShards {
		t.split(idx)
	}
}

// split doubles key group idx's shards. It builds new maps and leaves the
// old ones untouched, since a snapshot may hold them.
func (t *table[K, S]) split(idx int) {
	old := t.kgs[idx].shards
	n := 2 * len(old)
	shards := make([]shard[K, S], n)
	for i := range shards {
		shards[i] = shard[K, S]{m: make(map[K]S, t.b.splitLen/2), gen: t.b.gen}
	}
	mask := uint32(n - 1)
	for _, sh := range old {
		for k, s := range sh.m {
			_, sub := t.b.locate(k)
			shards[sub&mask].m[k] = s
		}
	}
	t.kgs[idx] = kgDir[K, S]{shards: shards, gen: t.b.gen}
}

// remove deletes the current key's entry, copying nothing if it is absent.
func (t *table[K, S]) remove() {
	if _, ok := t.get(); ok {
		delete(t.writable(t.b.cur, t.b.sub), t.b.key)
	}
}

// keys returns every key with an entry.
func (t *table[K, S]) keys() []K {
	var out []K
	for _, d := range t.kgs {
		for _, sh := range d.shards {
			for k := range sh.m {
				out = append(out, k)
			}
		}
	}
	return out
}

// freeze shares every key group's directory with a snapshot; neither the
// directories nor their shards are written again (see writable).
func (t *table[K, S]) freeze() frozenTable[K, S] {
	out := make(frozenTable[K, S], len(t.kgs))
	for i := range t.kgs {
		out[i] = t.kgs[i].shards
	}
	return out
}

// purge applies fix to every entry: it may drop the entry or replace it
// with a new value (never modify it in place). It returns the number of
// entries dropped.
func (t *table[K, S]) purge(fix func(S) (ns S, changed, drop bool)) int {
	n := 0
	for idx := range t.kgs {
		shards := t.kgs[idx].shards
		for j := range shards {
			var dels []K
			var sets map[K]S
			for k, s := range shards[j].m {
				ns, changed, drop := fix(s)
				switch {
				case drop:
					dels = append(dels, k)
				case changed:
					if sets == nil {
						sets = make(map[K]S)
					}
					sets[k] = ns
				}
			}
			if len(dels) == 0 && len(sets) == 0 {
				continue
			}
			m := t.writable(idx, uint32(j))
			for _, k := range dels {
				delete(m, k)
			}
			maps.Copy(m, sets)
			n += len(dels)
		}
	}
	return n
}

// restoreKey decodes a key from restored key group idx, checks that it
// belongs there, and returns it with its shard bits.
func (t *table[K, S]) restoreKey(r *blobReader, idx int) (K, uint32, error) {
	k, err := decodeWith(r, t.b.keyCodec, "key")
	if err != nil {
		return k, 0, err
	}
	kg, sub := t.b.locate(k)
	if want := t.b.kgRange.Start + idx; kg != want {
		return k, 0, corruptf("key %v of key group %d found in key group %d", k, kg, want)
	}
	return k, sub, nil
}

// frozenTable is a table's shards as of a snapshot, per key group.
type frozenTable[K comparable, S any] [][]shard[K, S]

// all iterates key group idx's entries.
func (f frozenTable[K, S]) all(idx int) iter.Seq2[K, S] {
	return func(yield func(K, S) bool) {
		for _, sh := range f[idx] {
			for k, s := range sh.m {
				if !yield(k, s) {
					return
				}
			}
		}
	}
}

// len returns the number of entries in key group idx.
func (f frozenTable[K, S]) len(idx int) int {
	n := 0
	for _, sh := range f[idx] {
		n += len(sh.m)
	}
	return n
}

// restoredTS maps a timestamp read from a snapshot to the one to store:
// zero without TTL, the restore time for data written without TTL.
func restoredTS(ts int64, snapTTL bool, p ttlPolicy, now int64) int64 {
	switch {
	case !p.enabled():
		return 0
	case !snapTTL:
		return now
	}
	return ts
}
