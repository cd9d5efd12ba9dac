package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzSeeds are valid and almost-valid metadata files.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, m := range []*Metadata{
		goldenMetadata(),
		testMetadata("j", 1, StreamHandle{}, StreamHandle{}),
		{JobID: "j", CheckpointID: 9, IsSavepoint: true},
		bigMetadata(2, 3),
	} {
		data, err := EncodeMetadata(m)
		require.NoError(t, err)
		seeds = append(seeds, data, data[:len(data)/2])
	}
	seeds = append(seeds, nil, []byte("FGCK"), frame(1, []byte{0x80}), frame(1, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}))
	return seeds
}

// FuzzDecodeMetadata feeds arbitrary files to the decoder: it must return
// an error or metadata that is valid and survives a round trip; never panic.
func FuzzDecodeMetadata(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
	})
}

// FuzzDecodeMetadataBody feeds arbitrary bodies behind a valid header and
// checksum, so the fuzzer explores the msgpack decoder and validation
// rather than the checksum.
func FuzzDecodeMetadataBody(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if len(s) > metadataHeaderSize {
			f.Add(s[metadataHeaderSize:])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, frame(MetadataVersion, body))
	})
}

func checkDecode(t *testing.T, data []byte) {
	m, err := DecodeMetadata(data)
	if err != nil {
		if m != nil {
			t.Fatalf("metadata and error %v", err)
		}
		if !isUnreadable(err) {
			t.Fatalf("error matches no codec sentinel: %v", err)
		}
		return
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("decoded invalid metadata: %v", err)
	}
	again, err := EncodeMetadata(m)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	m2, err := DecodeMetadata(again)
	if err != nil {
		t.Fatalf("decode re-encoded: %v", err)
	}
	if fmt.Sprint(m) != fmt.Sprint(m2) {
		t.Fatalf("round trip changed the metadata:\n%v\n%v", m, m2)
	}
}

// TestWriteFuzzCorpus writes the seeds to testdata/fuzz with -update, so
// plain `go test` runs them too.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	for i, s := range fuzzSeeds(t) {
		writeCorpusFile(t, "FuzzDecodeMetadata", i, s)
		if len(s) > metadataHeaderSize {
			writeCorpusFile(t, "FuzzDecodeMetadataBody", i, s[metadataHeaderSize:])
		}
	}
}

func writeCorpusFile(t *testing.T, target string, i int, data []byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644))
}
