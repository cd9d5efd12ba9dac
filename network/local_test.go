package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// smallBufferConfig uses 4 KiB buffers so that records span buffers quickly.
func smallBufferConfig(tcp bool) Config {
	c := testConfig(tcp)
	c.BufferSize = 4 << 10
	return c
}

func TestLocalRoundTripSpanningRecordsAndEvents(t *testing.T) {
	env := newEnv(t, smallBufferConfig(false))
	ctx := testCtx(t, 30*time.Second)
	part, err := env.NewResultPartition(pid(0, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := env.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()

	// Sizes around and far beyond the 4 KiB buffer, including empty records.
	sizes := []int{0, 1, 3, 4, 5, 100, 4091, 4092, 4096, 4097, 10000, 100 << 10, 7, 0}
	records := make([][]byte, len(sizes))
	for i, n := range sizes {
		records[i] = bytes.Repeat([]byte{byte(i + 1)}, n)
	}
	go func() {
		w := NewRecordWriter(part, Codec[[]byte](BytesCodec{}), DefaultRecordWriterConfig())
		for i, r := range records {
			if err := w.Emit(ctx, 0, r); err != nil {
				t.Error(err)
				return
			}
			if i == 5 {
				if err := w.BroadcastEvent(Event{Kind: EventUserBase, Payload: []byte("mid")}); err != nil {
					t.Error(err)
				}
			}
		}
		w.Close()
		if err := part.Finish(); err != nil {
			t.Error(err)
		}
	}()

	rd := NewRecordReader(gate, Codec[[]byte](BytesCodec{}), 0)
	defer rd.Close()
	var got [][]byte
	var events []string
	for {
		var rec []byte
		res, err := rd.Next(ctx, &rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.IsEvent {
			events = append(events, fmt.Sprintf("%s@%d", res.Event.Kind, len(got)))
			continue
		}
		got = append(got, bytes.Clone(rec))
	}
	if len(got) != len(records) {
		t.Fatalf("got %d records, want %d", len(got), len(records))
	}
	for i := range records {
		if !bytes.Equal(got[i], records[i]) {
			t.Fatalf("record %d: got %d bytes, want %d", i, len(got[i]), len(records[i]))
		}
	}
	if want := []string{"Event(32)@6", "EndOfPartition@14"}; fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	waitFor(t, 5*time.Second, "partition released after consumption", func() bool { return env.Partitions.Len() == 0 })
	gate.Close()
	if m := env.Buffers.Metrics(); m.Reserved != 0 {
		t.Fatalf("buffers still reserved: %+v", m)
	}
}

func TestLocalShuffle2x2(t *testing.T) {
	env := newEnv(t, testConfig(false))
	runShuffle(t, []*Environment{env}, 200_000, DefaultRecordWriterConfig())
}

func TestLocalShuffleFlushEveryRecord(t *testing.T) {
	env := newEnv(t, testConfig(false))
	runShuffle(t, []*Environment{env}, 5_000, RecordWriterConfig{BufferTimeout: 0})
}

func TestGateBlockChannel(t *testing.T) {
	env := newEnv(t, testConfig(false))
	ctx := testCtx(t, 30*time.Second)
	var parts [2]*ResultPartition
	for p := range parts {
		parts[p], _ = env.NewResultPartition(pid(p, 0), 1)
		w := NewRecordWriter(parts[p], Codec[int64](Int64Codec{}), RecordWriterConfig{BufferTimeout: -1})
		for i := range 100 {
			if err := w.Emit(ctx, 0, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		parts[p].Finish()
	}
	gate, err := env.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0)}, {Partition: pid(1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	if err := gate.RequestPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	gate.BlockChannel(0)
	// Everything of channel 1 arrives while channel 0 is blocked.
	for {
		boe, err := gate.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if boe.Channel != 1 {
			t.Fatalf("element from blocked channel %d", boe.Channel)
		}
		if boe.IsEvent() {
			if boe.Event.Kind != EventEndOfPartition {
				t.Fatalf("event %v", boe.Event.Kind)
			}
			break
		}
		boe.Buffer.Recycle()
	}
	// Nothing else is ready while channel 0 stays blocked.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = gate.Next(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with only a blocked channel: %v", err)
	}
	gate.ResumeChannel(0)
	rd := NewRecordReader(gate, Codec[int64](Int64Codec{}), 0)
	want := int64(0)
	for {
		var v int64
		res, err := rd.Next(ctx, &v)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.IsEvent {
			continue
		}
		if res.Channel != 0 || v != want {
			t.Fatalf("got %d from channel %d, want %d from 0", v, res.Channel, want)
		}
		want++
	}
	if want != 100 {
		t.Fatalf("resumed channel delivered %d records, want 100", want)
	}
	if m := gate.Metrics(); m.IdleNanos <= 0 {
		t.Fatalf("idle time not measured: %+v", m)
	}
}

func TestLocalConsumerRequestsBeforeProducerRegisters(t *testing.T) {
	env := newEnv(t, testConfig(false))
	ctx := testCtx(t, 30*time.Second)
	gate, err := env.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	got := make(chan error, 1)
	go func() {
		rd := NewRecordReader(gate, Codec[string](StringCodec{}), 0)
		var s string
		_, err := rd.Next(ctx, &s)
		if err == nil && s != "hello" {
			err = fmt.Errorf("got %q", s)
		}
		got <- err
	}()
	waitFor(t, 5*time.Second, "consumer waiting", func() bool {
		gate.mu.Lock()
		defer gate.mu.Unlock()
		return gate.mu.wake != nil
	})
	part, err := env.NewResultPartition(pid(0, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	w := NewRecordWriter(part, Codec[string](StringCodec{}), RecordWriterConfig{BufferTimeout: 0})
	if err := w.Emit(ctx, 0, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	w.Close()
	part.Release(nil)
}

func TestBufferTimeoutLocal(t *testing.T) {
	env := newEnv(t, testConfig(false))
	ctx := testCtx(t, 30*time.Second)
	part, _ := env.NewResultPartition(pid(0, 0), 1)
	w := NewRecordWriter(part, Codec[int64](Int64Codec{}), RecordWriterConfig{BufferTimeout: 20 * time.Millisecond})
	defer w.Close()
	gate, _ := env.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0)}})
	defer gate.Close()
	rd := NewRecordReader(gate, Codec[int64](Int64Codec{}), 0)
	defer rd.Close()
	// A trickle: each record must arrive on its own, shipped by the flusher, not by more records.
	for i := range int64(5) {
		if err := w.Emit(ctx, 0, i); err != nil {
			t.Fatal(err)
		}
		// Generous bound: the flusher ships within ~20 ms; a noisy machine gets 10 s.
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var v int64
		_, err := rd.Next(rctx, &v)
		cancel()
		if err != nil || v != i {
			t.Fatalf("record %d: got %d, %v", i, v, err)
		}
	}
	part.Release(nil)
}

func TestReleasedPartitionFailsReader(t *testing.T) {
	env := newEnv(t, testConfig(false))
	ctx := testCtx(t, 30*time.Second)
	part, _ := env.NewResultPartition(pid(0, 0), 1)
	gate, _ := env.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0)}})
	defer gate.Close()
	if err := gate.RequestPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("producer failed")
	part.Release(cause)
	_, err := gate.Next(ctx)
	mustErrIs(t, err, ErrPartitionReleased)
	mustErrIs(t, err, cause)
}

func TestWriterBackpressureMeasuredAndContextHonoured(t *testing.T) {
	cfg := smallBufferConfig(false)
	env := newEnv(t, cfg)
	part, _ := env.NewResultPartition(pid(0, 0), 1) // pool max = 1*2+8 = 10 buffers
	w := NewRecordWriter(part, Codec[[]byte](BytesCodec{}), RecordWriterConfig{BufferTimeout: -1})
	defer w.Close()
	rec := make([]byte, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = w.Emit(ctx, 0, rec)
	}
	mustErrIs(t, err, context.DeadlineExceeded)
	if m := w.Metrics(); m.BackPressuredNanos <= 0 || m.Buffers != 10 {
		t.Fatalf("metrics %+v, want back pressure and 10 buffers", m)
	}
	part.Release(nil)
}
