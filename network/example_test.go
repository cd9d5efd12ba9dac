package network_test

import (
	"context"
	"fmt"
	"io"

	"github.com/flinkgo/flink/network"
)

// A producer and a consumer in one process exchange records through a local channel.
func Example() {
	ctx := context.Background()
	env, err := network.NewEnvironment(network.LocalConfig())
	if err != nil {
		panic(err)
	}
	defer env.Close()

	id := network.ResultPartitionID{JobID: "wordcount", ProducerID: "source-0", Partition: 0}
	part, err := env.NewResultPartition(id, 1)
	if err != nil {
		panic(err)
	}
	codecs := network.NewCodecs()
	w := network.NewRecordWriter(part, network.CodecFor[string](codecs), network.DefaultRecordWriterConfig())
	for _, word := range []string{"to", "be", "or", "not"} {
		if err := w.Emit(ctx, 0, word); err != nil {
			panic(err)
		}
	}
	w.BroadcastEvent(network.Event{Kind: network.EventWatermark, Payload: []byte{42}})
	w.Close()
	part.Finish()

	gate, err := env.NewInputGate([]network.InputChannelSpec{{Partition: id, Subpartition: 0}})
	if err != nil {
		panic(err)
	}
	defer gate.Close()
	r := network.NewRecordReader(gate, network.CodecFor[string](codecs), 0)
	defer r.Close()
	for {
		var word string
		res, err := r.Next(ctx, &word)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		if res.IsEvent {
			fmt.Println("event:", res.Event.Kind)
			continue
		}
		fmt.Println("record:", word)
	}
	// Output:
	// record: to
	// record: be
	// record: or
	// record: not
	// event: Watermark
	// event: EndOfPartition
}

// A type registers a faster codec than msgpack in a registry (not a global).
func ExampleRegister() {
	codecs := network.NewCodecs()
	network.Register(codecs, func() network.Codec[temperature] { return tempCodec{} })
	c := network.CodecFor[temperature](codecs)
	b, _ := c.Encode(nil, &temperature{Celsius: 21})
	fmt.Println(len(b), "bytes")
	// Output: 1 bytes
}

type temperature struct{ Celsius int8 }

// tempCodec encodes a temperature in one byte.
type tempCodec struct{}

func (tempCodec) Encode(dst []byte, v *temperature) ([]byte, error) {
	return append(dst, byte(v.Celsius)), nil
}

func (tempCodec) Decode(src []byte, v *temperature) error {
	if len(src) != 1 {
		return fmt.Errorf("temperature of %d bytes, want 1", len(src))
	}
	v.Celsius = int8(src[0])
	return nil
}
