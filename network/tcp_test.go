package network

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRemoteShuffle2x2InProcess(t *testing.T) {
	a := newEnv(t, testConfig(true))
	b := newEnv(t, testConfig(true))
	runShuffle(t, []*Environment{a, b}, 100_000, DefaultRecordWriterConfig())
	if a.Connections.Metrics().BytesOut == 0 || b.Connections.Metrics().BytesIn == 0 {
		t.Fatal("no bytes went over TCP")
	}
	// One connection per TaskManager pair and direction.
	if n := a.Connections.Metrics().ClientConnections; n != 1 {
		t.Fatalf("%d client connections from A, want 1", n)
	}
}

func TestRemoteSmallBuffersSpanningRecords(t *testing.T) {
	a := newEnv(t, smallBufferConfig(true))
	b := newEnv(t, smallBufferConfig(true))
	ctx := testCtx(t, 30*time.Second)
	part, _ := a.NewResultPartition(pid(0, 0), 1)
	gate, err := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	sizes := []int{0, 5000, 4096, 100 << 10, 1, 9000}
	go func() {
		w := NewRecordWriter(part, Codec[[]byte](BytesCodec{}), DefaultRecordWriterConfig())
		for i, n := range sizes {
			rec := make([]byte, n)
			for j := range rec {
				rec[j] = byte(i + j)
			}
			if err := w.Emit(ctx, 0, rec); err != nil {
				t.Error(err)
			}
		}
		w.BroadcastEvent(Event{Kind: EventCheckpointBarrier, Payload: []byte{7}})
		w.Close()
		part.Finish()
	}()
	rd := NewRecordReader(gate, Codec[[]byte](BytesCodec{}), 0)
	defer rd.Close()
	i := 0
	var kinds []EventKind
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
			kinds = append(kinds, res.Event.Kind)
			if res.Event.Kind == EventCheckpointBarrier && (i != len(sizes) || string(res.Event.Payload) != "\x07") {
				t.Fatalf("barrier after %d records with payload %v", i, res.Event.Payload)
			}
			continue
		}
		if len(rec) != sizes[i] {
			t.Fatalf("record %d has %d bytes, want %d", i, len(rec), sizes[i])
		}
		for j := range rec {
			if rec[j] != byte(i+j) {
				t.Fatalf("record %d byte %d corrupt", i, j)
			}
		}
		i++
	}
	if len(kinds) != 2 || kinds[1] != EventEndOfPartition {
		t.Fatalf("events %v", kinds)
	}
}

// TestRemoteCreditIsolatesChannels: two producers on A feed two consumers on B over one TCP
// connection. Consumer 0 stops reading; consumer 1 still receives everything, producer 0 is
// back-pressured, and consumer 0 later receives all of its records.
func TestRemoteCreditIsolatesChannels(t *testing.T) {
	a := newEnv(t, smallBufferConfig(true))
	b := newEnv(t, smallBufferConfig(true))
	ctx := testCtx(t, 60*time.Second)
	const n = 20_000 // 20 bytes each: ~100 buffers of 4 KiB per producer, far above the credit
	var gates [2]*InputGate
	var parts [2]*ResultPartition
	for i := range 2 {
		parts[i], _ = a.NewResultPartition(pid(i, 0), 1)
		var err error
		gates[i], err = b.NewInputGate([]InputChannelSpec{{Partition: pid(i, 0), ProducerAddr: a.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		defer gates[i].Close()
	}
	errc := make(chan error, 4)
	for i := range 2 {
		go func() { errc <- produce(ctx, parts[i], i, n, 1, DefaultRecordWriterConfig(), testCodecs()) }()
	}
	// Consumer 0 requests its partition but does not read.
	if err := gates[0].RequestPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	// Consumer 1 reads everything while consumer 0 is paused.
	if _, err := consume(ctx, gates[1], 0, n, 1, testCodecs(), 1); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil { // producer 1 finished
		t.Fatal(err)
	}
	// Producer 0 is stuck on credit: back-pressured, well short of its records.
	waitFor(t, 10*time.Second, "producer 0 back-pressured", func() bool { return parts[0].Metrics().BackPressuredNanos > 0 })
	if m := parts[0].Metrics(); m.Records >= n {
		t.Fatalf("paused consumer did not back-pressure its producer: %+v", m)
	}
	if a.Connections.Metrics().ServerConnections != 1 {
		t.Fatalf("want both channels on one connection: %+v", a.Connections.Metrics())
	}
	// The paused consumer's receive buffers fill up; so do the stuck producer's buffers.
	waitFor(t, 10*time.Second, "consumer 0's buffers in use", func() bool {
		m := gates[0].Metrics()
		return m.PoolUsed > 0 && m.PoolUsed <= m.PoolSize
	})
	if m := parts[0].Metrics(); m.PoolUsed == 0 || m.PoolUsed > m.PoolSize {
		t.Fatalf("stuck producer's pool usage %d of %d", m.PoolUsed, m.PoolSize)
	}
	// Resume consumer 0: everything arrives, in order, exactly once.
	if _, err := consume(ctx, gates[0], 0, n, 1, testCodecs()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Every data byte written was read.
	for i := range 2 {
		w, r := parts[i].Metrics(), gates[i].Metrics()
		if w.Bytes == 0 || w.Bytes != r.Bytes || w.Buffers != r.Buffers {
			t.Fatalf("producer %d wrote %d bytes in %d buffers, its consumer read %d in %d", i, w.Bytes, w.Buffers, r.Bytes, r.Buffers)
		}
	}
}

// TestRemoteBlockedChannelOnOneGate: one gate with two remote channels on one connection; the
// blocked channel does not stop the other.
func TestRemoteBlockedChannelOnOneGate(t *testing.T) {
	a := newEnv(t, smallBufferConfig(true))
	b := newEnv(t, smallBufferConfig(true))
	ctx := testCtx(t, 60*time.Second)
	const n = 20_000
	errc := make(chan error, 2)
	for i := range 2 {
		part, _ := a.NewResultPartition(pid(i, 0), 1)
		go func() { errc <- produce(ctx, part, i, n, 1, DefaultRecordWriterConfig(), testCodecs()) }()
	}
	gate, err := b.NewInputGate([]InputChannelSpec{
		{Partition: pid(0, 0), ProducerAddr: a.Addr()},
		{Partition: pid(1, 0), ProducerAddr: a.Addr()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	gate.BlockChannel(0)
	const recBytes = lengthPrefixSize + 20
	count := [2]int{} // bytes per channel
	for count[1] < n*recBytes {
		boe, err := gate.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if boe.Channel == 0 {
			t.Fatal("element from blocked channel")
		}
		if !boe.IsEvent() {
			count[1] += boe.Buffer.Len()
			boe.Buffer.Recycle()
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	gate.ResumeChannel(0)
	for {
		boe, err := gate.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !boe.IsEvent() {
			count[boe.Channel] += boe.Buffer.Len()
			boe.Buffer.Recycle()
		}
	}
	if count != [2]int{n * recBytes, n * recBytes} {
		t.Fatalf("bytes per channel %v, want %d each", count, n*recBytes)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestBufferTimeoutRemote(t *testing.T) {
	a := newEnv(t, testConfig(true))
	b := newEnv(t, testConfig(true))
	ctx := testCtx(t, 30*time.Second)
	part, _ := a.NewResultPartition(pid(0, 0), 1)
	w := NewRecordWriter(part, Codec[int64](Int64Codec{}), RecordWriterConfig{BufferTimeout: 20 * time.Millisecond})
	defer w.Close()
	gate, _ := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	defer gate.Close()
	rd := NewRecordReader(gate, Codec[int64](Int64Codec{}), 0)
	defer rd.Close()
	for i := range int64(5) {
		if err := w.Emit(ctx, 0, i); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second) // generous: expect ~20 ms
		var v int64
		_, err := rd.Next(rctx, &v)
		cancel()
		if err != nil || v != i {
			t.Fatalf("record %d: got %d, %v", i, v, err)
		}
	}
	part.Release(nil)
}

func TestRemotePartitionRequestedBeforeRegistration(t *testing.T) {
	a := newEnv(t, testConfig(true))
	b := newEnv(t, testConfig(true))
	ctx := testCtx(t, 30*time.Second)
	gate, _ := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	defer gate.Close()
	if err := gate.RequestPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	rc := gate.Channel(0).(*RemoteInputChannel)
	waitFor(t, 10*time.Second, "a not-found answer and a scheduled retry", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.mu.retry != nil
	})
	part, _ := a.NewResultPartition(pid(0, 0), 1)
	go produce(ctx, part, 0, 1000, 1, DefaultRecordWriterConfig(), testCodecs())
	if _, err := consume(ctx, gate, 0, 1000, 1, testCodecs()); err != nil {
		t.Fatal(err)
	}
}

func TestRemotePartitionNotFoundGivesUp(t *testing.T) {
	cfg := testConfig(true)
	cfg.PartitionRequestTimeout = 50 * time.Millisecond
	a := newEnv(t, cfg)
	b := newEnv(t, cfg)
	ctx := testCtx(t, 30*time.Second)
	gate, _ := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	defer gate.Close()
	_, err := gate.Next(ctx)
	mustErrIs(t, err, ErrPartitionNotFound)
	mustErrIs(t, err, ErrRemote)
}

func TestRemoteReleasedProducerFailsConsumer(t *testing.T) {
	a := newEnv(t, testConfig(true))
	b := newEnv(t, testConfig(true))
	ctx := testCtx(t, 30*time.Second)
	part, _ := a.NewResultPartition(pid(0, 0), 1)
	gate, _ := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	defer gate.Close()
	if err := gate.RequestPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "server reader", func() bool { return serverReaders(a) == 1 })
	part.Release(errors.New("boom"))
	_, err := gate.Next(ctx)
	mustErrIs(t, err, ErrPartitionReleased)
	if !strings.Contains(err.Error(), "boom") {
		t.Fatalf("cause missing: %v", err)
	}
}

func TestRemoteGateCloseCancelsRequest(t *testing.T) {
	a := newEnv(t, testConfig(true))
	b := newEnv(t, testConfig(true))
	ctx := testCtx(t, 30*time.Second)
	part, _ := a.NewResultPartition(pid(0, 0), 1)
	gate, _ := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	if err := gate.RequestPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "server reader", func() bool { return serverReaders(a) == 1 })
	gate.Close()
	waitFor(t, 10*time.Second, "cancelled reader", func() bool { return serverReaders(a) == 0 })
	// The subpartition can be requested again by a new consumer.
	gate2, _ := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	go produce(ctx, part, 0, 100, 1, DefaultRecordWriterConfig(), testCodecs())
	if _, err := consume(ctx, gate2, 0, 100, 1, testCodecs()); err != nil {
		t.Fatal(err)
	}
	gate2.Close()
	if m := b.Buffers.Metrics(); m.Reserved != 0 {
		t.Fatalf("gate buffers still reserved: %+v", m)
	}
}

// serverReaders counts the active subpartition readers of env's server connections.
func serverReaders(env *Environment) int {
	m := env.Connections
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for s := range m.mu.servers {
		s.mu.Lock()
		n += len(s.mu.readers)
		s.mu.Unlock()
	}
	return n
}

// fakeServer accepts one connection, reads the first PartitionRequest and runs script on it.
func fakeServer(t *testing.T, script func(nc net.Conn, req partitionRequest)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		fr := frameReader{r: bufio.NewReader(nc), maxData: DefaultBufferSize}
		typ, n, err := fr.readHeader()
		if err != nil || typ != msgPartitionRequest {
			t.Errorf("fake server: %v %v", typ, err)
			return
		}
		p, _ := fr.readPayload(typ, n)
		req, err := decodePartitionRequest(p)
		if err != nil {
			t.Errorf("fake server: %v", err)
			return
		}
		script(nc, req)
		// Wait for the client to go away.
		io.Copy(io.Discard, nc)
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func TestRemoteBadServerInput(t *testing.T) {
	validData := func(ch uint64) []byte {
		f := appendBufferResponseHeader(nil, bufferResponseHeader{channel: ch, seq: 0, dataType: dataTypeBuffer, size: 8})
		return append(f, 0, 0, 0, 4, 1, 2, 3, 4)
	}
	cases := []struct {
		name      string
		write     func(req partitionRequest) []byte
		want      error
		noConsume bool // wait for the failure before reading (the test needs the credit unused)
	}{
		{"garbage", func(partitionRequest) []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }, ErrMalformedFrame, false},
		{"bad version", func(partitionRequest) []byte {
			f := appendAddCredit(nil, addCredit{channel: 1, credit: 1})
			f[2] = 9
			return f
		}, ErrMalformedFrame, false},
		{"oversized frame", func(partitionRequest) []byte {
			return appendHeader(nil, msgBufferResponse, 1<<30)
		}, ErrMalformedFrame, false},
		{"closed mid-buffer", func(req partitionRequest) []byte {
			f := validData(req.channel)
			return f[:len(f)-3]
		}, ErrConnectionClosed, false},
		{"closed mid-header", func(req partitionRequest) []byte { return validData(req.channel)[:5] }, ErrConnectionClosed, false},
		{"closed cleanly", func(req partitionRequest) []byte { return nil }, ErrConnectionClosed, false},
		{"unknown channel", func(req partitionRequest) []byte { return validData(req.channel + 1000) }, ErrProtocol, false},
		{"buffer without credit", func(req partitionRequest) []byte {
			var f []byte
			// More buffers than any credit the client can have granted
			// (exclusive and floating buffers together), so the test does
			// not depend on whether floating credit was announced yet.
			for i := range 64 {
				b := appendBufferResponseHeader(nil, bufferResponseHeader{channel: req.channel, seq: uint32(i), dataType: dataTypeBuffer, size: 8})
				f = append(f, append(b, 0, 0, 0, 4, 1, 2, 3, 4)...)
			}
			return f
		}, ErrProtocol, true},
		{"sequence gap", func(req partitionRequest) []byte {
			b := appendBufferResponseHeader(nil, bufferResponseHeader{channel: req.channel, seq: 5, dataType: dataTypeBuffer, size: 8})
			return append(b, 0, 0, 0, 4, 1, 2, 3, 4)
		}, ErrProtocol, false},
		{"request frame from server", func(req partitionRequest) []byte { return appendCancel(nil, req.channel) }, ErrProtocol, false},
		{"fatal error response", func(req partitionRequest) []byte {
			return appendErrorResponse(nil, errorResponse{message: "server exploding"})
		}, ErrRemote, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, func(nc net.Conn, req partitionRequest) {
				nc.Write(tc.write(req))
				if tc.want == ErrConnectionClosed {
					nc.Close()
				}
			})
			b := newEnv(t, testConfig(true))
			gate, err := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: addr}})
			if err != nil {
				t.Fatal(err)
			}
			defer gate.Close()
			ctx := testCtx(t, 30*time.Second)
			if tc.noConsume {
				if err := gate.RequestPartitions(ctx); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "connection failure", func() bool {
					rc := gate.Channel(0).(*RemoteInputChannel)
					rc.mu.Lock()
					defer rc.mu.Unlock()
					return rc.mu.err != nil
				})
			}
			var nextErr error
			for nextErr == nil {
				var boe BufferOrEvent
				boe, nextErr = gate.Next(ctx)
				if boe.Buffer != nil {
					boe.Buffer.Recycle()
				}
			}
			mustErrIs(t, nextErr, tc.want)
			if !strings.Contains(nextErr.Error(), addr) {
				t.Fatalf("error does not name the remote address %s: %v", addr, nextErr)
			}
			if errors.Is(nextErr, context.DeadlineExceeded) {
				t.Fatal("hung")
			}
			// The failed connection is forgotten: nothing left open.
			waitFor(t, 10*time.Second, "connection dropped", func() bool { return b.Connections.Metrics().ClientConnections == 0 })
		})
	}
}

func TestServerRejectsBadClientInput(t *testing.T) {
	a := newEnv(t, testConfig(true))
	part, _ := a.NewResultPartition(pid(0, 0), 1)
	defer part.Release(nil)
	cases := []struct {
		name  string
		frame []byte
	}{
		{"garbage", []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08")},
		{"unknown type", appendHeader(nil, msgType(77), 0)},
		{"truncated payload", appendHeader(nil, msgAddCredit, 3)},
		{"credit for unknown channel", appendAddCredit(nil, addCredit{channel: 42, credit: 1})},
		{"buffer from client", appendBufferResponseHeader(nil, bufferResponseHeader{channel: 1, dataType: dataTypeBuffer, size: 0})},
		{"partition request trailing bytes", func() []byte {
			f, _ := appendPartitionRequest(nil, partitionRequest{channel: 1, partition: pid(0, 0)})
			f[7]++ // length one more than the payload
			return append(f, 0)
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", a.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			nc.Write(tc.frame)
			if tc.name == "truncated payload" {
				// A frame cut short is only detectable when the stream ends.
				nc.(*net.TCPConn).CloseWrite()
			}
			fr := frameReader{r: bufio.NewReader(nc), maxData: DefaultBufferSize}
			typ, n, err := fr.readHeader()
			if err != nil {
				if tc.name == "truncated payload" && errors.Is(err, ErrConnectionClosed) {
					return
				}
				t.Fatalf("reading server answer: %v", err)
			}
			if typ != msgErrorResponse {
				t.Fatalf("server answered %s", typ)
			}
			p, _ := fr.readPayload(typ, n)
			m, err := decodeErrorResponse(p)
			if err != nil || m.channel != 0 || m.code != errCodeProtocol {
				t.Fatalf("answer %+v, %v", m, err)
			}
			if _, _, err := fr.readHeader(); !errors.Is(err, ErrConnectionClosed) {
				t.Fatalf("server did not close: %v", err)
			}
		})
	}
	// The server still serves well-behaved consumers.
	b := newEnv(t, testConfig(true))
	ctx := testCtx(t, 30*time.Second)
	gate, _ := b.NewInputGate([]InputChannelSpec{{Partition: pid(0, 0), ProducerAddr: a.Addr()}})
	defer gate.Close()
	go produce(ctx, part, 0, 100, 1, DefaultRecordWriterConfig(), testCodecs())
	if _, err := consume(ctx, gate, 0, 100, 1, testCodecs()); err != nil {
		t.Fatal(err)
	}
}

// TestServerConsumerVanishesMidStream: a consumer connection that dies while buffers flow releases
// its subpartition reader on the producer side; the producer is not left hanging on the socket.
func TestServerConsumerVanishesMidStream(t *testing.T) {
	a := newEnv(t, testConfig(true))
	ctx := testCtx(t, 30*time.Second)
	part, _ := a.NewResultPartition(pid(0, 0), 1)
	defer part.Release(nil)
	nc, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := appendPartitionRequest(nil, partitionRequest{channel: 1, credit: 2, partition: pid(0, 0)})
	nc.Write(req)
	w := NewRecordWriter(part, Codec[int64](Int64Codec{}), RecordWriterConfig{BufferTimeout: 0})
	defer w.Close()
	if err := w.Emit(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	fr := frameReader{r: bufio.NewReader(nc), maxData: DefaultBufferSize}
	typ, _, err := fr.readHeader()
	if err != nil || typ != msgBufferResponse {
		t.Fatalf("first frame %s, %v", typ, err)
	}
	nc.Close() // in the middle of the frame
	waitFor(t, 10*time.Second, "reader released", func() bool {
		return serverReaders(a) == 0 && a.Connections.Metrics().ServerConnections == 0
	})
}
