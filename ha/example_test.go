package ha

import (
	"context"
	"fmt"
	"time"
)

// Two nodes of one binary on loopback: a JobManager and a TaskManager that
// joins it and sees both nodes' metadata.
func ExampleNewMembership() {
	cfg := LocalMembershipConfig()
	cfg.Meta = NodeMeta{NodeID: "jm-0", Roles: RoleJobManager, Fingerprint: "3f9a"}
	jm, err := NewMembership(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer jm.Close()

	cfg.Meta = NodeMeta{NodeID: "tm-0", Roles: RoleTaskManager, Slots: 4, Fingerprint: "3f9a"}
	tm, err := NewMembership(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tm.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := tm.Join(ctx, []string{jm.LocalAddr().String()}); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range tm.Members() { // the join's state exchange is done
		fmt.Println(m.Name, m.State, m.Meta.Roles, m.Meta.Slots)
	}
	// Output:
	// jm-0 alive jobmanager 0
	// tm-0 alive taskmanager 4
}
