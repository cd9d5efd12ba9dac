package security_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/flinkgo/flink/security"
)

// Write a development secret for a JobManager and a TaskManager, then load
// the TaskManager's: its id is its certificate's name, and its material
// carries the mutual TLS configuration and the gossip keyring.
func ExampleGenerateDevCerts() {
	dir, err := os.MkdirTemp("", "secret")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := security.GenerateDevCerts(dir, security.DevCertsConfig{Nodes: []string{"jm", "tm-1"}}); err != nil {
		panic(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, n := range names {
		fmt.Println(filepath.Base(n))
	}
	m, err := security.Load(security.FromDir(dir, "tm-1"))
	if err != nil {
		panic(err)
	}
	fmt.Println("identity:", m.Identity, "gossip keys:", len(m.GossipKeys), "tokens:", m.HasTokens())
	// Output:
	// ca-key.pem
	// ca.pem
	// client-key.pem
	// client.pem
	// gossip.keyring
	// jm-key.pem
	// jm.pem
	// rest.token
	// tm-1-key.pem
	// tm-1.pem
	// identity: tm-1 gossip keys: 1 tokens: true
}
