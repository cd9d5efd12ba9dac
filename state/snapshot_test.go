package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
)

// allStates is one state of each kind on a backend keyed by string.
type allStates struct {
	v ValueState[int64]
	l ListState[string]
	m MapState[string, int]
	r ReducingState[int]
	a AggregatingState[int, float64]
}

func sum(a, b int) (int, error) { return a + b, nil }

func registerAll(t testing.TB, b *HeapKeyedBackend[string]) allStates {
	t.Helper()
	var s allStates
	var err error
	s.v, err = GetValueState(b, ValueStateDescriptor[int64]{Name: "v"})
	must(t, err)
	s.l, err = GetListState(b, ListStateDescriptor[string]{Name: "l"})
	must(t, err)
	s.m, err = GetMapState(b, MapStateDescriptor[string, int]{Name: "m"})
	must(t, err)
	s.r, err = GetReducingState(b, ReducingStateDescriptor[int]{Name: "r", Reduce: sum})
	must(t, err)
	s.a, err = GetAggregatingState(b, AggregatingStateDescriptor[int, avgAcc, float64]{Name: "a", Aggregate: avg{}})
	must(t, err)
	return s
}

// content is everything a backend holds, for comparisons.
type content struct {
	V map[string]int64
	L map[string][]string
	M map[string]map[string]int
	R map[string]int
	A map[string]avgAcc
}

func (s allStates) content() content {
	return content{
		V: dumpValues[string](s.v),
		L: dumpLists[string](s.l),
		M: dumpMaps[string](s.m),
		R: dumpValues[string](&valueState[string, int]{s.r.(*reducingState[string, int]).single}),
		A: dumpValues[string](&valueState[string, avgAcc]{s.a.(*aggregatingState[string, int, avgAcc, float64]).single}),
	}
}

func mergeContent(cs ...content) content {
	var out content
	for _, c := range cs {
		out.V = mergeMaps(out.V, c.V)
		out.L = mergeMaps(out.L, c.L)
		out.M = mergeMaps(out.M, c.M)
		out.R = mergeMaps(out.R, c.R)
		out.A = mergeMaps(out.A, c.A)
	}
	return out
}

// fill writes keys [from, to) into every state, with values derived from
// the key and round.
func (s allStates) fill(t testing.TB, b *HeapKeyedBackend[string], keys []string, round int) {
	t.Helper()
	for i, k := range keys {
		if !b.KeyGroupRange().Contains(b.KeyGroupOf(k)) {
			continue
		}
		must(t, b.SetCurrentKey(k))
		must(t, s.v.Update(int64(i*1000+round)))
		must(t, s.l.Add(fmt.Sprintf("%s-%d", k, round)))
		must(t, s.m.Put(fmt.Sprint(round%3), i+round))
		must(t, s.r.Add(i))
		must(t, s.a.Add(round))
		if i%7 == round%7 {
			must(t, s.m.Clear())
			must(t, s.v.Clear())
		}
	}
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("key-%d", i)
	}
	return out
}

func TestSnapshotRoundTripAllKinds(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	s := registerAll(t, b)
	ks := keys(300)
	for round := range 3 {
		s.fill(t, b, ks, round)
	}
	want := s.content()
	in := snap(t, b)
	eq(t, in.Handle.KeyGroupRange, b.KeyGroupRange())
	eq(t, len(in.Handle.Offsets), DefaultMaxParallelism)

	b2 := newBackend[string](t, DefaultKeyedBackendOptions())
	must(t, b2.Restore(in))
	eq(t, b2.StateNames(), []string{"a", "l", "m", "r", "v"})
	got := registerAll(t, b2).content()
	eq(t, got, want)
}

// Changes after Snapshot never show in what it writes, however much later
// it is written.
func TestSnapshotIsolation(t *testing.T) {
	for _, split := range []int{shardSplitLen, 2} {
		t.Run(fmt.Sprintf("split=%d", split), func(t *testing.T) { testSnapshotIsolation(t, split) })
	}
}

func testSnapshotIsolation(t *testing.T, split int) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	b.splitLen = split
	s := registerAll(t, b)
	ks := keys(200)
	s.fill(t, b, ks, 0)
	want := s.content()
	sn, err := b.Snapshot()
	must(t, err)
	s.fill(t, b, ks, 1)
	sn2, err := b.Snapshot()
	must(t, err)
	want2 := s.content()
	s.fill(t, b, ks, 2)
	for _, k := range ks[:50] {
		must(t, b.SetCurrentKey(k))
		must(t, s.l.Clear())
		must(t, s.r.Clear())
	}

	for _, tc := range []struct {
		sn   *KeyedSnapshot
		want content
	}{{sn, want}, {sn2, want2}} {
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		must(t, b2.Restore(writeSnap(t, tc.sn)))
		eq(t, registerAll(t, b2).content(), tc.want)
	}
}

// rescale restores the given snapshots into a new operator of parallelism p
// and returns the new backends and their snapshots.
func rescale(t *testing.T, from []KeyedStateInput, p int, register bool) ([]*HeapKeyedBackend[string], []KeyedStateInput) {
	t.Helper()
	var bs []*HeapKeyedBackend[string]
	var ins []KeyedStateInput
	handles := make([]KeyedStateHandle, len(from))
	for i, in := range from {
		handles[i] = in.Handle
	}
	for i := range p {
		b := newBackend[string](t, SubtaskKeyedBackendOptions(DefaultMaxParallelism, p, i))
		b.splitLen = 5 // restores split shards too
		var mine []KeyedStateInput
		for _, j := range KeyedStreamsForRange(handles, b.KeyGroupRange()) {
			mine = append(mine, from[j])
		}
		must(t, b.Restore(mine...))
		if register {
			registerAll(t, b)
		}
		bs = append(bs, b)
		ins = append(ins, snap(t, b))
	}
	return bs, ins
}

func TestRescale2To3To1(t *testing.T) {
	ks := keys(1000)
	var ins []KeyedStateInput
	var want []content
	for i := range 2 {
		b := newBackend[string](t, SubtaskKeyedBackendOptions(DefaultMaxParallelism, 2, i))
		s := registerAll(t, b)
		s.fill(t, b, ks, 0)
		s.fill(t, b, ks, 1)
		want = append(want, s.content())
		ins = append(ins, snap(t, b))
	}
	all := mergeContent(want...)
	eq(t, len(all.L), len(ks)) // every key landed in exactly one subtask

	for _, register := range []bool{true, false} {
		t.Run(fmt.Sprintf("register=%v", register), func(t *testing.T) {
			// At parallelism 3 the states are registered (decoded and
			// re-encoded) or not (carried over encoded); both must survive.
			three, threeIns := rescale(t, ins, 3, register)
			if register {
				var cs []content
				for _, b := range three {
					cs = append(cs, registerAll(t, b).content())
				}
				eq(t, mergeContent(cs...), all)
			}
			one, _ := rescale(t, threeIns, 1, true)
			eq(t, registerAll(t, one[0]).content(), all)
		})
	}
}

// recordingReader records which byte ranges are read.
type recordingReader struct {
	r  io.ReaderAt
	mu struct {
		sync.Mutex
		reads [][2]int64
	}
}

func (r *recordingReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.mu.reads = append(r.mu.reads, [2]int64{off, off + int64(len(p))})
	r.mu.Unlock()
	return r.r.ReadAt(p, off)
}

func TestRestoreReadsOnlyOwnedKeyGroups(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	s := registerAll(t, b)
	s.fill(t, b, keys(500), 0)
	in := snap(t, b)
	rec := &recordingReader{r: in.Reader}
	in.Reader = rec

	opts := SubtaskKeyedBackendOptions(DefaultMaxParallelism, 4, 2)
	b2 := newBackend[string](t, opts)
	must(t, b2.Restore(in))
	r := opts.KeyGroupRange
	lo := in.Handle.Offsets[r.Start]
	hi := in.Handle.Size
	if r.End+1 < len(in.Handle.Offsets) {
		hi = in.Handle.Offsets[r.End+1]
	}
	headerEnd := in.Handle.Offsets[0]
	for _, rd := range rec.mu.reads {
		if rd[1] <= headerEnd || (rd[0] >= lo && rd[1] <= hi) {
			continue
		}
		t.Errorf("read [%d, %d) outside the header [0, %d) and owned key groups [%d, %d)", rd[0], rd[1], headerEnd, lo, hi)
	}
	got := registerAll(t, b2).content()
	eq(t, len(got.L) > 0, true)
	for k := range got.L {
		if !r.Contains(b2.KeyGroupOf(k)) {
			t.Errorf("restored key %q outside %s", k, r)
		}
	}
}

func TestRestoreErrors(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	s := registerAll(t, b)
	s.fill(t, b, keys(50), 0)
	in := snap(t, b)

	t.Run("after registration", func(t *testing.T) {
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		registerAll(t, b2)
		isErr(t, b2.Restore(in), ErrRestore)
	})
	t.Run("key group twice", func(t *testing.T) {
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		isErr(t, b2.Restore(in, in), ErrRestore)
		must(t, b2.Restore(in))
		isErr(t, b2.Restore(in), ErrRestore) // a second call also sees the first
		eq(t, registerAll(t, b2).content(), s.content())
	})
	t.Run("max parallelism", func(t *testing.T) {
		b2 := newBackend[string](t, KeyedBackendOptions{MaxParallelism: 64, KeyGroupRange: KeyGroupRange{0, 63}})
		isErr(t, b2.Restore(in), ErrRestore)
	})
	t.Run("key type", func(t *testing.T) {
		b2 := newBackend[int](t, DefaultKeyedBackendOptions())
		isErr(t, b2.Restore(in), ErrIncompatibleState)
	})
	t.Run("no reader", func(t *testing.T) {
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		isErr(t, b2.Restore(KeyedStateInput{Handle: in.Handle}), ErrRestore)
	})
	t.Run("handle offsets", func(t *testing.T) {
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		h := in.Handle
		h.Offsets = h.Offsets[1:]
		isErr(t, b2.Restore(KeyedStateInput{Handle: h, Reader: in.Reader}), ErrCorruptSnapshot)
		h = in.Handle
		h.Offsets = append([]int64(nil), h.Offsets...)
		h.Offsets[3], h.Offsets[4] = h.Offsets[4], h.Offsets[3]
		isErr(t, b2.Restore(KeyedStateInput{Handle: h, Reader: in.Reader}), ErrCorruptSnapshot)
		eq(t, len(b2.StateNames()), 0) // a failed restore changes nothing
	})
	t.Run("kind mismatch on registration", func(t *testing.T) {
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		must(t, b2.Restore(in))
		_, err := GetListState(b2, ListStateDescriptor[int64]{Name: "v"})
		isErr(t, err, ErrIncompatibleState)
		_, err = GetValueState(b2, ValueStateDescriptor[string]{Name: "v"})
		isErr(t, err, ErrIncompatibleState)
		_, err = GetMapState(b2, MapStateDescriptor[string, string]{Name: "m"})
		isErr(t, err, ErrIncompatibleState)
		// The right registration still works afterwards.
		eq(t, registerAll(t, b2).content(), s.content())
	})
	t.Run("reader error", func(t *testing.T) {
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		boom := errors.New("disk on fire")
		err := b2.Restore(KeyedStateInput{Handle: in.Handle, Reader: failingReader{boom}})
		isErr(t, err, boom)
	})
}

type failingReader struct{ err error }

func (f failingReader) ReadAt([]byte, int64) (int, error) { return 0, f.err }

func TestWriteErrors(t *testing.T) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	registerAll(t, b).fill(t, b, keys(10), 0)
	sn, err := b.Snapshot()
	must(t, err)
	boom := errors.New("full")
	_, err = sn.Write(context.Background(), failingWriter{boom})
	isErr(t, err, boom)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = sn.Write(ctx, io.Discard)
	isErr(t, err, context.Canceled)
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// Snapshots are written on other goroutines while the task goroutine keeps
// writing and snapshotting; each must restore to exactly the content at its
// Snapshot call. Run with -race.
func TestConcurrentSnapshotWrites(t *testing.T) {
	for _, split := range []int{shardSplitLen, 3} {
		t.Run(fmt.Sprintf("split=%d", split), func(t *testing.T) { testConcurrentSnapshotWrites(t, split) })
	}
}

func testConcurrentSnapshotWrites(t *testing.T, split int) {
	b := newBackend[string](t, DefaultKeyedBackendOptions())
	b.splitLen = split
	s := registerAll(t, b)
	ks := keys(400)
	type result struct {
		in   KeyedStateInput
		want content
		err  error
	}
	results := make(chan result, 16)
	var wg sync.WaitGroup
	for round := range 8 {
		s.fill(t, b, ks, round)
		sn, err := b.Snapshot()
		must(t, err)
		want := s.content()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			h, err := sn.Write(context.Background(), &buf)
			results <- result{KeyedStateInput{Handle: h, Reader: bytes.NewReader(buf.Bytes())}, want, err}
		}()
	}
	s.fill(t, b, ks, 100) // keep writing while the last ones are written
	wg.Wait()
	close(results)
	for r := range results {
		must(t, r.err)
		b2 := newBackend[string](t, DefaultKeyedBackendOptions())
		must(t, b2.Restore(r.in))
		eq(t, registerAll(t, b2).content(), r.want)
	}
}

func TestShardSplitting(t *testing.T) {
	b := newBackend[int](t, KeyedBackendOptions{MaxParallelism: 2, KeyGroupRange: KeyGroupRange{0, 1}})
	b.splitLen = 4
	s, err := GetValueState(b, ValueStateDescriptor[int]{Name: "v"})
	must(t, err)
	want := map[int]int{}
	for k := range 3000 {
		must(t, b.SetCurrentKey(k))
		must(t, s.Update(k))
		want[k] = k
	}
	shards := len(s.(*valueState[int, int]).t.kgs[0].shards)
	if shards < 64 {
		t.Fatalf("key group 0 has %d shards after 1500 keys with split length 4", shards)
	}
	eq(t, dumpValues[int](s), want)
	for k := range 3000 {
		must(t, b.SetCurrentKey(k))
		v, ok := value(t, s)
		eq(t, ok, true)
		eq(t, v, k)
		if k%2 == 0 {
			must(t, s.Clear())
			delete(want, k)
		}
	}
	eq(t, dumpValues[int](s), want)
}
