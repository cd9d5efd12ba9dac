package flink

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/flinkgo/flink/state"
)

// The data addresses of a network exchange: which TaskManager runs each
// subtask of a job attempt, as a consumer subtask needs it to open an
// input channel to every producer.
//
// A JobManager builds one table per attempt, a row of p addresses per
// vertex, and gives each subtask only the rows it reads (exchangeSpecs): its
// own vertex's and its inputs' producers'. Every descriptor shares those
// rows: in one process nothing is copied, so building the descriptors of a
// p × p all-to-all job is linear in p. On the wire a descriptor carries its
// rows run-length encoded against the distinct addresses they use (subtask
// i of every vertex runs in the i-th slot the job was given, and a
// TaskManager's slots arrive together), so it is as long as the job has
// TaskManagers, not subtasks; and the subtasks of one vertex share one
// encoding, made once, as Flink 1.14 caches the serialized shuffle
// descriptors of a consumed partition group (FLINK-21110).

// addrTable is an attempt's data address rows, deduplicated by address
// and run-length encoded once, so that each vertex's spec is encoded
// without scanning its rows again. Immutable once built.
type addrTable struct {
	addrs []string    // the distinct addresses, in order of first use
	runs  [][]addrRun // runs[v] encodes rows[v]
}

// addrRun is n consecutive subtasks at address addrs[addr].
type addrRun struct{ addr, n int }

// newAddrTable deduplicates and run-length encodes rows[v][i], the address
// of subtask i of vertex v.
func newAddrTable(rows [][]string) *addrTable {
	t := &addrTable{runs: make([][]addrRun, len(rows))}
	index := make(map[string]int)
	for v, row := range rows {
		for i := 0; i < len(row); {
			j := i + 1
			for j < len(row) && row[j] == row[i] {
				j++
			}
			k, ok := index[row[i]]
			if !ok {
				k = len(t.addrs)
				index[row[i]] = k
				t.addrs = append(t.addrs, row[i])
			}
			t.runs[v] = append(t.runs[v], addrRun{addr: k, n: j - i})
			i = j
		}
	}
	return t
}

// exchangeSpecs returns the exchange spec of each vertex's subtasks in a
// network exchange, given rows[v][i], the data address of subtask i of
// vertex v: the rows a subtask of the vertex reads, shared with rows and
// with the vertex's other subtasks, and their wire form, encoded once.
// Neither rows nor the specs may be modified afterwards.
func exchangeSpecs(g *JobGraph, rows [][]string) []ExchangeSpec {
	t := newAddrTable(rows)
	specs := make([]ExchangeSpec, len(g.Vertices))
	for _, v := range g.Vertices {
		reads := make([][]string, len(rows))
		for _, u := range readsFrom(g, v) {
			reads[u] = rows[u]
		}
		s := ExchangeSpec{Network: true, DataAddrs: reads}
		var buf bytes.Buffer
		if err := t.encode(msgpack.NewEncoder(&buf), s); err == nil {
			s.wire = &exchangeWire{rows: reads, raw: buf.Bytes()}
		}
		specs[v.ID] = s
	}
	return specs
}

// exchangeWire is the encoded form of the ExchangeSpec whose DataAddrs are
// rows, shared by every descriptor that shares rows.
type exchangeWire struct {
	rows [][]string
	raw  []byte
}

// encodes reports whether w is the wire form of s: s still shares the rows
// w was encoded from.
func (w *exchangeWire) encodes(s ExchangeSpec) bool {
	return w != nil && s.Network && len(s.DataAddrs) == len(w.rows) &&
		(len(w.rows) == 0 || &s.DataAddrs[0] == &w.rows[0])
}

// readsFrom returns the vertices whose data addresses a subtask of v needs
// to open its input gate: v's own (to tell producers on its TaskManager),
// then its inputs' producers. A source needs none: its consumers connect
// to it.
func readsFrom(g *JobGraph, v *JobVertex) []int {
	if len(v.Inputs) == 0 {
		return nil
	}
	out := []int{v.ID}
	for _, eid := range v.Inputs {
		out = append(out, g.Edges[eid].Source)
	}
	return out
}

// validDataAddrs checks a deployment's addresses against the graph, so a
// malformed descriptor fails the deployment instead of a task: every row a
// subtask of v reads holds one address per subtask, and the others are
// empty or complete.
func validDataAddrs(g *JobGraph, v *JobVertex, addrs [][]string) bool {
	if len(addrs) != len(g.Vertices) {
		return false
	}
	for _, u := range readsFrom(g, v) {
		if len(addrs[u]) != g.Vertices[u].Parallelism {
			return false
		}
	}
	for _, u := range g.Vertices {
		if n := len(addrs[u.ID]); n != 0 && n != u.Parallelism {
			return false
		}
	}
	return true
}

// maxDataAddrs bounds the addresses one decoded descriptor may expand to
// (128 vertices at the greatest parallelism), so that a few bytes of runs
// cannot make a TaskManager allocate without bound.
const maxDataAddrs = 128 * state.UpperBoundMaxParallelism

// errBadExchangeSpec: a descriptor's exchange spec does not decode.
var errBadExchangeSpec = errors.New("flink: malformed exchange spec")

// EncodeMsgpack implements msgpack.CustomEncoder: the spec as [network,
// addresses, rows], each row nil or a flat list of (address index, count)
// runs over the distinct addresses the rows use.
func (s ExchangeSpec) EncodeMsgpack(enc *msgpack.Encoder) error {
	if s.wire.encodes(s) {
		return enc.Encode(msgpack.RawMessage(s.wire.raw))
	}
	return newAddrTable(s.DataAddrs).encode(enc, s)
}

// encode writes s, whose non-empty rows are t's, in the form EncodeMsgpack
// describes.
func (t *addrTable) encode(enc *msgpack.Encoder, s ExchangeSpec) error {
	// Number the addresses the rows use, in order of first use.
	local := make([]int, len(t.addrs))
	var addrs []string
	for v, row := range s.DataAddrs {
		if len(row) == 0 {
			continue
		}
		for _, r := range t.runs[v] {
			if local[r.addr] == 0 {
				addrs = append(addrs, t.addrs[r.addr])
				local[r.addr] = len(addrs) // 1-based: 0 is unnumbered
			}
		}
	}
	if err := enc.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := enc.EncodeBool(s.Network); err != nil {
		return err
	}
	if err := enc.Encode(addrs); err != nil {
		return err
	}
	if s.DataAddrs == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeArrayLen(len(s.DataAddrs)); err != nil {
		return err
	}
	for v, row := range s.DataAddrs {
		if len(row) == 0 {
			if err := enc.EncodeNil(); err != nil {
				return err
			}
			continue
		}
		if err := enc.EncodeArrayLen(2 * len(t.runs[v])); err != nil {
			return err
		}
		for _, r := range t.runs[v] {
			if err := enc.EncodeInt(int64(local[r.addr] - 1)); err != nil {
				return err
			}
			if err := enc.EncodeInt(int64(r.n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// DecodeMsgpack implements msgpack.CustomDecoder, for the form
// EncodeMsgpack writes. A spec that names an address it does not list, or
// expands to more than maxDataAddrs addresses, fails.
func (s *ExchangeSpec) DecodeMsgpack(dec *msgpack.Decoder) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errBadExchangeSpec, fmt.Sprintf(format, args...))
	}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 3 {
		return bad("%d fields, want 3", n)
	}
	network, err := dec.DecodeBool()
	if err != nil {
		return err
	}
	var addrs []string
	if err := dec.Decode(&addrs); err != nil {
		return err
	}
	nrows, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	var rows [][]string
	if nrows >= 0 {
		rows = make([][]string, 0, min(nrows, 1024)) // the length is the sender's word
	}
	total := 0
	for range max(nrows, 0) {
		m, err := dec.DecodeArrayLen()
		if err != nil {
			return err
		}
		if m > 0 && m%2 != 0 {
			return bad("row %d has %d run fields, want pairs", len(rows), m)
		}
		var row []string
		for range max(m, 0) / 2 {
			a, err := dec.DecodeInt()
			if err != nil {
				return err
			}
			c, err := dec.DecodeInt()
			if err != nil {
				return err
			}
			switch {
			case a < 0 || a >= len(addrs):
				return bad("row %d names address %d of %d", len(rows), a, len(addrs))
			case c < 1 || c > state.UpperBoundMaxParallelism-len(row):
				return bad("row %d: a run of %d after %d subtasks (at most %d in all)", len(rows), c, len(row), state.UpperBoundMaxParallelism)
			case total+c > maxDataAddrs:
				return bad("more than %d addresses", maxDataAddrs)
			}
			total += c
			for range c {
				row = append(row, addrs[a])
			}
		}
		rows = append(rows, row)
	}
	*s = ExchangeSpec{Network: network, DataAddrs: rows}
	return nil
}
