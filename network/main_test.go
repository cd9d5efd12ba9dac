package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv selects a child-process role when the test binary re-executes itself.
const childEnv = "FLINKGO_NETWORK_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	goleak.VerifyTestMain(m)
}

// testRecord is the small record of the shuffle tests.
type testRecord struct {
	Producer int32
	Seq      int64
	Key      uint64
}

// testRecordCodec is a fixed-size codec for testRecord (20 bytes).
type testRecordCodec struct{}

func (testRecordCodec) Encode(dst []byte, v *testRecord) ([]byte, error) {
	dst = binary.BigEndian.AppendUint32(dst, uint32(v.Producer))
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.Seq))
	return binary.BigEndian.AppendUint64(dst, v.Key), nil
}

func (testRecordCodec) Decode(src []byte, v *testRecord) error {
	if len(src) != 20 {
		return fmt.Errorf("%w: testRecord of %d bytes", ErrCorruptRecord, len(src))
	}
	v.Producer = int32(binary.BigEndian.Uint32(src))
	v.Seq = int64(binary.BigEndian.Uint64(src[4:]))
	v.Key = binary.BigEndian.Uint64(src[12:])
	return nil
}

// testCodecs returns a registry with the test record's codec.
func testCodecs() *Codecs {
	c := NewCodecs()
	Register(c, func() Codec[testRecord] { return testRecordCodec{} })
	return c
}

// newEnv returns an environment closed at the end of the test.
func newEnv(t testing.TB, cfg Config) *Environment {
	t.Helper()
	env, err := NewEnvironment(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

// testConfig is a small configuration for tests; tcp selects a loopback listener.
func testConfig(tcp bool) Config {
	c := DefaultConfig()
	c.NumBuffers = 512
	c.PartitionRequestTimeout = 10 * time.Second
	if !tcp {
		c.ListenAddr = ""
	}
	return c
}

// testCtx returns a context that ends with the test's deadline (at most d).
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func pid(producer, partition int) ResultPartitionID {
	return ResultPartitionID{JobID: "job", ProducerID: fmt.Sprintf("producer-%d", producer), Partition: partition}
}

// mustErrIs fails unless errors.Is(err, target).
func mustErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
