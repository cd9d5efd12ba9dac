package ha

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakDeadline bounds the wait for goroutines to end after the tests.
// memberlist's Shutdown does not wait for a probe already in flight: that
// goroutine ends by itself at the probe's deadline, ProbeInterval times
// memberlist's awareness multiplier (at most 8) after it started. Nothing is
// ignored: every goroutine must be gone within this deadline.
const leakDeadline = 10 * time.Second

// TestMain fails the package if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(leakDeadline)
		err := goleak.Find() // retries for a few hundred ms itself
		for err != nil && time.Now().Before(deadline) {
			err = goleak.Find()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines still running %v after the tests: %v\n", leakDeadline, err)
			code = 1
		}
	}
	os.Exit(code)
}
