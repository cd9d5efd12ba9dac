package flink

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flinkgo/flink/network"
)

// FuzzStampedRecord feeds arbitrary bytes to the decoder of records with
// timestamps, as they arrive from the network: it must fail cleanly or
// decode a record that encodes back to the same bytes' meaning.
func FuzzStampedRecord(f *testing.F) {
	c := stampedCodec[tev]{network.NewMsgpackCodec[tev]()}
	for _, v := range []stamped[tev]{{ts: noTimestamp, v: tev{Key: 1}}, {ts: 42, v: tev{Key: -3, TS: 7, V: 9}}} {
		b, err := c.Encode(nil, &v)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{7})
	f.Fuzz(func(t *testing.T, data []byte) {
		var v stamped[tev]
		if err := c.Decode(data, &v); err != nil {
			return
		}
		b, err := c.Encode(nil, &v)
		require.NoError(t, err)
		var w stamped[tev]
		require.NoError(t, c.Decode(b, &w))
		require.Equal(t, v, w)
	})
}

// FuzzTimeEvents feeds arbitrary payloads to the decoders of in-band
// watermark, watermark status and checkpoint barrier events.
func FuzzTimeEvents(f *testing.F) {
	f.Add(encodeWatermark(12345))
	f.Add([]byte{byte(evIdle)})
	b, err := encodeBarrier(CheckpointBarrier{ID: 3})
	require.NoError(f, err)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		if wm, err := decodeWatermark(data); err == nil {
			require.Equal(t, data, encodeWatermark(wm))
		}
		if ev, err := decodeWatermarkStatus(data); err == nil {
			require.Contains(t, []timeEvent{evIdle, evActive}, ev)
		}
		if b, err := decodeBarrier(data); err == nil {
			require.GreaterOrEqual(t, b.ID, int64(1))
		}
	})
}
