package state

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestOperatorListState(t *testing.T) {
	b := NewOperatorBackend()
	s, err := GetOperatorListState(b, ListStateDescriptor[string]{Name: "offsets"})
	must(t, err)
	s2, err := GetOperatorListState(b, ListStateDescriptor[string]{Name: "offsets"})
	must(t, err)
	if s != s2 {
		t.Fatal("second registration returned another state")
	}
	_, err = GetUnionListState(b, ListStateDescriptor[string]{Name: "offsets"})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetOperatorListState(b, ListStateDescriptor[int]{Name: "offsets"})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetOperatorListState(b, ListStateDescriptor[int]{Name: "ttl", TTL: TTLConfig{TTL: time.Second}})
	isErr(t, err, ErrInvalidDescriptor)
	_, err = GetUnionListState(b, ListStateDescriptor[int]{})
	isErr(t, err, ErrInvalidDescriptor)

	got, err := s.Get()
	must(t, err)
	eq(t, got, []string(nil))
	must(t, s.Add("a"))
	must(t, s.AddAll([]string{"b", "c"}))
	got, _ = s.Get()
	eq(t, got, []string{"a", "b", "c"})
	got[0] = "mutated"
	got, _ = s.Get()
	eq(t, got, []string{"a", "b", "c"})

	sn, err := b.Snapshot()
	must(t, err)
	must(t, s.Add("d")) // after the snapshot: not in it
	must(t, s.Update([]string{"z"}))
	got, _ = s.Get()
	eq(t, got, []string{"z"})
	must(t, s.Update(nil))
	got, _ = s.Get()
	eq(t, got, []string(nil))
	must(t, s.Add("q"))
	must(t, s.Clear())
	got, _ = s.Get()
	eq(t, got, []string(nil))

	var buf bytes.Buffer
	h, err := sn.Write(t.Context(), &buf)
	must(t, err)
	b2 := NewOperatorBackend()
	must(t, b2.Restore(OperatorStateInput{Handle: h, Reader: bytes.NewReader(buf.Bytes())}))
	eq(t, b2.StateNames(), []string{"offsets"})
	_, err = GetUnionListState(b2, ListStateDescriptor[string]{Name: "offsets"})
	isErr(t, err, ErrIncompatibleState)
	_, err = GetOperatorListState(b2, ListStateDescriptor[int]{Name: "offsets"})
	isErr(t, err, ErrIncompatibleState)
	r, err := GetOperatorListState(b2, ListStateDescriptor[string]{Name: "offsets"})
	must(t, err)
	got, _ = r.Get()
	eq(t, got, []string{"a", "b", "c"})
	isErr(t, b2.Restore(), ErrRestore)
}

func TestRedistributeOperatorState(t *testing.T) {
	// handle builds a handle whose offsets are 1000*subtask + element index,
	// so assignments are easy to read.
	handle := func(sub int, split, union int) OperatorStateHandle {
		h := OperatorStateHandle{Size: int64(sub)}
		s := OperatorStateMeta{Name: "s", Mode: SplitDistribution}
		for i := range split {
			s.Offsets = append(s.Offsets, int64(1000*sub+i))
		}
		u := OperatorStateMeta{Name: "u", Mode: UnionDistribution}
		for i := range union {
			u.Offsets = append(u.Offsets, int64(1000*sub+100+i))
		}
		h.States = []OperatorStateMeta{s, u}
		return h
	}
	// render shows an assignment as "stream:state=offsets" per new subtask.
	render := func(as [][]OperatorStateAssignment) []string {
		var out []string
		for _, sub := range as {
			var parts []string
			for _, a := range sub {
				for _, s := range a.Handle.States {
					if s.Mode != modeOf(map[string]stateKind{"s": kindOperatorList, "u": kindOperatorUnion}[s.Name]) {
						parts = append(parts, "bad mode")
					}
					if a.Handle.Size != int64(a.Stream) {
						parts = append(parts, "bad size")
					}
					parts = append(parts, fmt.Sprintf("%d:%s=%v", a.Stream, s.Name, s.Offsets))
				}
			}
			out = append(out, fmt.Sprint(parts))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		old  []OperatorStateHandle
		p    int
		want []string
	}{
		{
			name: "same parallelism keeps assignment",
			old:  []OperatorStateHandle{handle(0, 1, 0), handle(1, 3, 0)},
			p:    2,
			want: []string{"[0:s=[0]]", "[1:s=[1000 1001 1002]]"},
		},
		{
			name: "split 2 to 3 evenly, first subtasks get the extra",
			old:  []OperatorStateHandle{handle(0, 3, 0), handle(1, 4, 0)},
			p:    3,
			want: []string{"[0:s=[0 1 2]]", "[1:s=[1000 1001]]", "[1:s=[1002 1003]]"},
		},
		{
			name: "split 3 to 1",
			old:  []OperatorStateHandle{handle(0, 1, 0), handle(1, 0, 0), handle(2, 2, 0)},
			p:    1,
			want: []string{"[0:s=[0] 2:s=[2000 2001]]"},
		},
		{
			name: "more subtasks than elements",
			old:  []OperatorStateHandle{handle(0, 2, 0)},
			p:    4,
			want: []string{"[0:s=[0]]", "[0:s=[1]]", "[]", "[]"},
		},
		{
			name: "union goes everywhere",
			old:  []OperatorStateHandle{handle(0, 0, 1), handle(1, 0, 2)},
			p:    3,
			want: []string{
				"[0:u=[100] 1:u=[1100 1101]]",
				"[0:u=[100] 1:u=[1100 1101]]",
				"[0:u=[100] 1:u=[1100 1101]]",
			},
		},
		{
			name: "split and union together",
			old:  []OperatorStateHandle{handle(0, 2, 1), handle(1, 1, 1)},
			p:    1,
			want: []string{"[0:s=[0 1] 0:u=[100] 1:s=[1000] 1:u=[1100]]"},
		},
		{
			name: "no handles",
			p:    2,
			want: []string{"[]", "[]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RedistributeOperatorState(tc.old, tc.p)
			must(t, err)
			eq(t, render(got), tc.want)
			again, err := RedistributeOperatorState(tc.old, tc.p)
			must(t, err)
			eq(t, again, got) // deterministic
		})
	}

	_, err := RedistributeOperatorState(nil, 0)
	isErr(t, err, ErrRestore)
	mixed := []OperatorStateHandle{
		{States: []OperatorStateMeta{{Name: "x", Mode: SplitDistribution}}},
		{States: []OperatorStateMeta{{Name: "x", Mode: UnionDistribution}}},
	}
	_, err = RedistributeOperatorState(mixed, 2)
	isErr(t, err, ErrIncompatibleState)
}

// End to end: 3 subtasks with split and union state, restored at 2 and then 4.
func TestOperatorStateRescale(t *testing.T) {
	type stream struct {
		data []byte
		h    OperatorStateHandle
	}
	write := func(b *OperatorBackend) stream {
		sn, err := b.Snapshot()
		must(t, err)
		var buf bytes.Buffer
		h, err := sn.Write(t.Context(), &buf)
		must(t, err)
		return stream{buf.Bytes(), h}
	}
	restore := func(old []stream, p int, register bool) ([][]int, [][]string, []stream) {
		handles := make([]OperatorStateHandle, len(old))
		for i, s := range old {
			handles[i] = s.h
		}
		as, err := RedistributeOperatorState(handles, p)
		must(t, err)
		var splits [][]int
		var unions [][]string
		var next []stream
		for _, mine := range as {
			b := NewOperatorBackend()
			var ins []OperatorStateInput
			for _, a := range mine {
				ins = append(ins, OperatorStateInput{Handle: a.Handle, Reader: bytes.NewReader(old[a.Stream].data)})
			}
			must(t, b.Restore(ins...))
			if register {
				s, err := GetOperatorListState(b, ListStateDescriptor[int]{Name: "split"})
				must(t, err)
				u, err := GetUnionListState(b, ListStateDescriptor[string]{Name: "union"})
				must(t, err)
				sv, _ := s.Get()
				uv, _ := u.Get()
				splits = append(splits, sv)
				unions = append(unions, uv)
			}
			next = append(next, write(b))
		}
		return splits, unions, next
	}

	var old []stream
	for sub := range 3 {
		b := NewOperatorBackend()
		s, err := GetOperatorListState(b, ListStateDescriptor[int]{Name: "split"})
		must(t, err)
		u, err := GetUnionListState(b, ListStateDescriptor[string]{Name: "union"})
		must(t, err)
		for i := range sub + 2 { // 2, 3, 4 elements
			must(t, s.Add(sub*10+i))
		}
		must(t, u.Add(fmt.Sprintf("u%d", sub)))
		old = append(old, write(b))
	}

	splits, unions, _ := restore(old, 2, true)
	eq(t, splits, [][]int{{0, 1, 10, 11, 12}, {20, 21, 22, 23}})
	eq(t, unions, [][]string{{"u0", "u1", "u2"}, {"u0", "u1", "u2"}})

	// Through an unregistered generation (elements carried over encoded).
	_, _, mid := restore(old, 2, false)
	splits, unions, _ = restore(mid, 4, true)
	eq(t, splits, [][]int{{0, 1, 10}, {11, 12}, {20, 21}, {22, 23}})
	for _, u := range unions {
		// The union of the 2 subtasks that each had all 3 elements.
		eq(t, u, slices.Concat([]string{"u0", "u1", "u2"}, []string{"u0", "u1", "u2"}))
	}
}
