package flink

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// addrRows places the subtasks of every vertex of g on TaskManagers of
// slotsPerTM slots each, in slot order, as AssignSlots does: rows[v][i] is
// the data address of subtask i of vertex v.
func addrRows(g *JobGraph, slotsPerTM int) [][]string {
	rows := make([][]string, len(g.Vertices))
	for _, v := range g.Vertices {
		rows[v.ID] = make([]string, v.Parallelism)
		for i := range rows[v.ID] {
			rows[v.ID][i] = fmt.Sprintf("10.0.0.%d:6121", i/slotsPerTM)
		}
	}
	return rows
}

func roundTrip(t testing.TB, s ExchangeSpec) (ExchangeSpec, []byte) {
	b, err := msgpack.Marshal(s)
	require.NoError(t, err)
	var got ExchangeSpec
	require.NoError(t, msgpack.Unmarshal(b, &got))
	return got, b
}

// TestExchangeSpecsShareRows: a JobManager gives each subtask only the
// address rows it reads, shared rather than copied: a source none, a
// consumer its own vertex's and its producers'.
func TestExchangeSpecsShareRows(t *testing.T) {
	g, err := controlPlaneJob(8)
	require.NoError(t, err)
	require.Len(t, g.Vertices, 2)
	rows := addrRows(g, 2)
	specs := exchangeSpecs(g, rows)
	require.Len(t, specs, 2)

	src, dst := specs[0], specs[1]
	assert.True(t, src.Network)
	assert.Equal(t, [][]string{nil, nil}, src.DataAddrs, "a source reads no addresses")
	require.Len(t, dst.DataAddrs, 2)
	for v := range rows {
		require.Len(t, dst.DataAddrs[v], 8)
		assert.Same(t, &rows[v][0], &dst.DataAddrs[v][0], "row %d is shared, not copied", v)
	}
	for _, v := range g.Vertices {
		assert.True(t, validDataAddrs(g, v, specs[v.ID].DataAddrs), "vertex %d", v.ID)
		assert.True(t, validDataAddrs(g, v, rows), "vertex %d with every row", v.ID)
	}
	assert.False(t, validDataAddrs(g, g.Vertices[1], src.DataAddrs), "a consumer needs its producers' row")
	assert.False(t, validDataAddrs(g, g.Vertices[0], [][]string{rows[0][:3], nil}), "a row is complete or empty")
	assert.False(t, validDataAddrs(g, g.Vertices[0], rows[:1]), "a row per vertex")
}

// TestExchangeSpecWire: every spec survives the wire, and the encoding a
// JobManager makes once per vertex is the one made afresh.
func TestExchangeSpecWire(t *testing.T) {
	g, err := controlPlaneJob(6)
	require.NoError(t, err)
	specs := exchangeSpecs(g, addrRows(g, 4))
	interleaved := [][]string{{"a", "b", "a", "b", "c", "a"}, {"c", "c", "c", "b", "b", "a"}}
	tests := []struct {
		name string
		spec ExchangeSpec
	}{
		{"in-process", ExchangeSpec{}},
		{"source, shared encoding", specs[0]},
		{"consumer, shared encoding", specs[1]},
		{"every row", ExchangeSpec{Network: true, DataAddrs: addrRows(g, 4)}},
		{"no runs", ExchangeSpec{Network: true, DataAddrs: interleaved}},
		{"one row", ExchangeSpec{Network: true, DataAddrs: [][]string{nil, interleaved[1]}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, b := roundTrip(t, tt.spec)
			assert.Equal(t, tt.spec.Network, got.Network)
			assert.Equal(t, tt.spec.DataAddrs, got.DataAddrs)
			fresh, err := msgpack.Marshal(ExchangeSpec{Network: tt.spec.Network, DataAddrs: tt.spec.DataAddrs})
			require.NoError(t, err)
			assert.Equal(t, fresh, b, "the shared encoding is the fresh one")
		})
	}
	// A spec whose rows were replaced after the JobManager encoded them is
	// encoded afresh.
	changed := specs[1]
	changed.DataAddrs = interleaved
	got, _ := roundTrip(t, changed)
	assert.Equal(t, interleaved, got.DataAddrs)
}

// TestExchangeSpecWireSize: a consumer's descriptor grows with the number
// of TaskManagers, not with the number of subtasks it reads from: the
// address table is never copied whole into each descriptor.
func TestExchangeSpecWireSize(t *testing.T) {
	size := func(p, tms int) int {
		g, err := controlPlaneJob(p)
		require.NoError(t, err)
		_, b := roundTrip(t, exchangeSpecs(g, addrRows(g, p/tms))[1])
		return len(b)
	}
	small, large := size(100, 10), size(10_000, 10)
	t.Logf("consumer spec on 10 TaskManagers: %d bytes at p=100, %d bytes at p=10000", small, large)
	assert.Less(t, large, small+64)
	assert.Less(t, large, 1024)
}

// TestExchangeSpecDecodeRejects: a malformed spec is an error, never a
// panic or an allocation the sender chose.
func TestExchangeSpecDecodeRejects(t *testing.T) {
	enc := func(v ...any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	addrs := []string{"a", "b"}
	tests := []struct {
		name string
		b    []byte
	}{
		{"too few fields", enc(true, addrs)},
		{"unknown address", enc(true, addrs, [][]int{{2, 1}})},
		{"negative address", enc(true, addrs, [][]int{{-1, 1}})},
		{"empty run", enc(true, addrs, [][]int{{0, 0}})},
		{"odd run fields", enc(true, addrs, [][]int{{0, 1, 1}})},
		{"row too long", enc(true, addrs, [][]int{{0, 1 << 15, 1, 1}})},
		{"huge run", enc(true, addrs, [][]int{{0, 1 << 40}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s ExchangeSpec
			err := msgpack.Unmarshal(tt.b, &s)
			require.Error(t, err)
			if tt.name != "too few fields" {
				assert.True(t, errors.Is(err, errBadExchangeSpec), "%v", err)
			}
		})
	}
	var s ExchangeSpec
	require.NoError(t, msgpack.Unmarshal(enc(true, addrs, [][]int{{0, 2, 1, 1}, nil}), &s))
	assert.Equal(t, [][]string{{"a", "a", "b"}, nil}, s.DataAddrs)
}

// FuzzExchangeSpec feeds arbitrary bytes to the decoder of a deployment's
// exchange spec: it fails cleanly, or decodes a spec that survives the
// wire unchanged.
func FuzzExchangeSpec(f *testing.F) {
	g, err := controlPlaneJob(6)
	require.NoError(f, err)
	for _, s := range exchangeSpecs(g, addrRows(g, 4)) {
		b, err := msgpack.Marshal(s)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s ExchangeSpec
		if msgpack.Unmarshal(b, &s) != nil {
			return
		}
		got, _ := roundTrip(t, s)
		assert.Equal(t, s, got)
	})
}
