// Package ha holds the cluster machinery of library-style and session
// deployments: membership by gossip (hashicorp/memberlist), and a Raft
// group (hashicorp/raft, raft-wal log) for JobManager leader election and
// the replicated job store. The root package's Node uses both in HA mode
// (flink.NodeConfig.HA).
//
// # Raft
//
// A RaftNode keeps the job store: submitted jobs, and per job the pointer to
// its latest completed checkpoint and its checkpoint id counter (the
// checkpoint metadata itself stays in checkpoint storage, as Flink keeps
// only pointers in ZooKeeper). The leader's FencingToken (term and leader
// id) goes with every command; the state machine refuses a command whose
// token's term is not the term of its log entry, and a checkpoint pointer
// that is not newer than the current one, so a deposed leader commits
// nothing. NewRaftNode checks the log and snapshots at start and names the
// damaged file.
//
// # Membership
//
// Every process of a cluster runs the same binary and joins one memberlist
// pool, publishing a NodeMeta: its id, roles, RPC, data-plane, REST and
// Raft addresses, slot count and the fingerprint of its job registry.
//
//	cfg := ha.DefaultMembershipConfig()
//	cfg.Meta = ha.NodeMeta{
//		NodeID:      "tm-1",
//		Roles:       ha.RoleTaskManager,
//		RPCAddr:     "10.0.0.5:6123",
//		DataAddr:    "10.0.0.5:6121",
//		Slots:       4,
//		Fingerprint: registryFingerprint,
//	}
//	cfg.Join = []string{"jm-0.cluster:7946", "jm-1.cluster:7946"}
//	m, err := ha.NewMembership(cfg)
//	if err != nil { ... }
//	defer m.Close()
//	go func() {
//		for ev := range m.Events() { // join, update, leave, failed
//			...
//		}
//	}()
//	if _, err := m.Join(ctx, nil); err != nil { ... } // retries until ctx ends
//	...
//	m.Leave(ctx) // peers see EventLeave, not EventFailed
//
// The failure detector (SWIM with Lifeguard's refinements, as implemented by
// memberlist) is tuned by DefaultMembershipConfig to declare a killed node
// dead in about 2-3 s on a LAN; BenchmarkFailureDetection measures it.
// LocalMembershipConfig keeps that tuning on loopback for tests.
//
// A node whose fingerprint differs runs another build of the job registry
// and must not take part in jobs: CheckCompatible reports it with
// ErrIncompatibleBinary, and with RefuseIncompatible (the default) such
// nodes are not admitted to the pool at all. A peer whose metadata cannot
// be decoded is admitted but reported with Member.MetaErr.
package ha
