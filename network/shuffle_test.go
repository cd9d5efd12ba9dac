package network

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

// runShuffle runs a 2x2 keyed shuffle; subtask i (producer and consumer) runs in envs[i%len(envs)],
// so with two environments half of the exchanges go over TCP. It checks exactly-once delivery in
// per-channel order.
func runShuffle(t testing.TB, envs []*Environment, perProducer int, cfg RecordWriterConfig) {
	ctx := testCtx(t, 60*time.Second)
	const par = 2
	envOf := func(i int) *Environment { return envs[i%len(envs)] }
	parts := make([]*ResultPartition, par)
	for p := range par {
		var err error
		if parts[p], err = envOf(p).NewResultPartition(pid(p, 0), par); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 2*par)
	for p := range par {
		go func() { errc <- produce(ctx, parts[p], p, perProducer, par, cfg, testCodecs()) }()
	}
	for c := range par {
		specs := make([]InputChannelSpec, par)
		for p := range par {
			specs[p] = InputChannelSpec{Partition: pid(p, 0), Subpartition: c}
			if envOf(p) != envOf(c) {
				specs[p].ProducerAddr = envOf(p).Addr()
			}
		}
		gate, err := envOf(c).NewInputGate(specs)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer gate.Close()
			_, err := consume(ctx, gate, c, perProducer, par, testCodecs())
			errc <- err
		}()
	}
	for range 2 * par {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// Every buffer went back to its TaskManager's pool: nothing leaked, nothing still reserved.
	for _, env := range envs {
		waitFor(t, 10*time.Second, "all buffers returned", func() bool {
			m := env.Buffers.Metrics()
			return m.Available == m.Total && m.Reserved == 0 && m.LocalPools == 0
		})
	}
}

// keyOf is the test's key function; partition by key hash like a keyed shuffle.
func keyOf(producer, seq int64) uint64 {
	x := uint64(producer)<<40 ^ uint64(seq)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

// produce emits n records of producer p to a partition with par subpartitions by key hash.
func produce(ctx context.Context, part *ResultPartition, p, n, par int, cfg RecordWriterConfig, codecs *Codecs) error {
	w := NewRecordWriter(part, CodecFor[testRecord](codecs), cfg)
	for i := range n {
		key := keyOf(int64(p), int64(i))
		if err := w.Emit(ctx, int(key%uint64(par)), testRecord{Producer: int32(p), Seq: int64(i), Key: key}); err != nil {
			w.Close()
			return fmt.Errorf("producer %d: %w", p, err)
		}
	}
	w.Close()
	return part.Finish()
}

// consume reads consumer c's gate to the end and checks that every record from channel ch arrives
// exactly once and in order: the expected sequence is every i < n whose key maps to c, from
// producer producers[ch] (producers nil: producer ch).
func consume(ctx context.Context, gate *InputGate, c, n, par int, codecs *Codecs, producers ...int) (int, error) {
	producerOf := func(ch int) int {
		if producers == nil {
			return ch
		}
		return producers[ch]
	}
	rd := NewRecordReader(gate, CodecFor[testRecord](codecs), 0)
	defer rd.Close()
	next := make([]int, gate.NumChannels()) // next expected seq per channel
	advance := func(p, from int) int {
		for from < n && int(keyOf(int64(p), int64(from))%uint64(par)) != c {
			from++
		}
		return from
	}
	for ch := range next {
		next[ch] = advance(producerOf(ch), 0)
	}
	total := 0
	for {
		var r testRecord
		res, err := rd.Next(ctx, &r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, fmt.Errorf("consumer %d after %d records: %w", c, total, err)
		}
		if res.IsEvent {
			if res.Event.Kind == EventEndOfPartition && next[res.Channel] != n {
				return total, fmt.Errorf("consumer %d: channel %d ended at seq %d, want %d", c, res.Channel, next[res.Channel], n)
			}
			continue
		}
		ch := res.Channel
		p := producerOf(ch)
		if int(r.Producer) != p || int(r.Seq) != next[ch] || r.Key != keyOf(int64(p), r.Seq) {
			return total, fmt.Errorf("consumer %d channel %d: got %+v, want producer %d seq %d", c, ch, r, p, next[ch])
		}
		next[ch] = advance(p, next[ch]+1)
		total++
	}
	for p, s := range next {
		if s != n {
			return total, fmt.Errorf("consumer %d: channel %d stopped at seq %d, want %d", c, p, s, n)
		}
	}
	return total, nil
}
