package ha

import (
	"context"
	"fmt"
	"os"
	"time"
)

// A one-node group on loopback: the node bootstraps, is elected, and as
// leader records a job and its latest checkpoint with its fencing token.
// A real group lists three or five JobManager-capable nodes in Bootstrap.
func ExampleNewRaftNode() {
	dir, err := os.MkdirTemp("", "raft-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := LocalRaftConfig()
	cfg.NodeID = "jm-0"
	cfg.DataDir = dir
	cfg.Fingerprint = "3f9a"
	cfg.Bootstrap = []RaftPeer{{ID: "jm-0"}} // Addr empty: this node's own
	n, err := NewRaftNode(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, stop := n.WatchLeadership()
	defer stop()
	var tok FencingToken
	for tok.IsZero() {
		select {
		case ev := <-events:
			tok = ev.Token // set once this node leads with an up-to-date store
		case <-ctx.Done():
			fmt.Println("no leader:", ctx.Err())
			return
		}
	}

	job := JobSpec{ID: "wc-1", Name: "wordcount", Args: []string{"--input", "/data"}, Status: "CREATED"}
	if err := n.SubmitJob(ctx, tok, job); err != nil {
		fmt.Println(err)
		return
	}
	id, err := n.NextCheckpointID(ctx, tok, "wc-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	cp := CheckpointPointer{ID: id, Location: "file:///checkpoints/wc-1/chk-1"}
	if err := n.CommitCheckpoint(ctx, tok, "wc-1", cp); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.CommitCheckpoint(ctx, tok, "wc-1", cp)) // never twice

	latest, _ := n.LatestCheckpoint("wc-1")
	fmt.Println(tok.Leader, latest.ID, latest.Location)
	// Output:
	// ha: checkpoint not newer than the latest committed one: job "wc-1": checkpoint 1 at "file:///checkpoints/wc-1/chk-1", the latest committed is 1 at "file:///checkpoints/wc-1/chk-1"
	// jm-0 1 file:///checkpoints/wc-1/chk-1
}
