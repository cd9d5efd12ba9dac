package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The CLI links the REST client alone: none of the runtime (the root
// package), Raft, gossip, or the storage and metrics clients. A user who
// installs it gets a small binary, and its dependencies say what it does.
func TestCLIDependencies(t *testing.T) {
	deps := goListDeps(t, ".")
	require.Contains(t, deps, "github.com/flinkgo/flink/rest", "go list -deps lists the REST client")
	assert.NotContains(t, deps, "github.com/flinkgo/flink", "the CLI imports the root package")
	for _, forbidden := range []string{"github.com/hashicorp/raft", "github.com/hashicorp/memberlist",
		"github.com/minio/minio-go", "github.com/prometheus/client_golang"} {
		for _, d := range deps {
			assert.False(t, d == forbidden || strings.HasPrefix(d, forbidden+"/"), "the CLI links %s (through %s)", forbidden, d)
		}
	}
}

// goListDeps returns the packages pkg links (go list -deps, without
// tests). Without a go command the test is skipped.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, ee.Stderr)
	}
	require.NoError(t, err)
	return strings.Fields(string(out))
}
