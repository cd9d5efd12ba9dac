package flink

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Importing the library links no optional heavy dependency: the Prometheus
// client comes with package metrics/prometheus, and only for programs that
// import it.
func TestRootDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("go list -deps .: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/flinkgo/flink/rest", "go list -deps lists the packages the root imports")
	for _, forbidden := range []string{"github.com/prometheus/client_golang", "github.com/flinkgo/flink/metrics/prometheus"} {
		for _, d := range deps {
			assert.False(t, d == forbidden || strings.HasPrefix(d, forbidden+"/"), "the root package links %s (through %s)", forbidden, d)
		}
	}
}
