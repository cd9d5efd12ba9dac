package ha

import "errors"

// Errors of RaftNode.
var (
	// ErrInvalidRaftConfig is wrapped by RaftConfig.Validate's errors.
	ErrInvalidRaftConfig = errors.New("ha: invalid raft config")

	// ErrRaftClosed is returned by the methods of a RaftNode after
	// Shutdown.
	ErrRaftClosed = errors.New("ha: raft node shut down")

	// ErrNotLeader is wrapped when an operation that needs the leader runs
	// on another node. The command was not applied; the error names the
	// leader if one is known.
	ErrNotLeader = errors.New("ha: not the raft leader")

	// ErrOutcomeUnknown is wrapped when a command reached the log but its
	// outcome is unknown: leadership was lost, the node shut down, or the
	// context ended before it committed. A later leader may still apply
	// it, so a caller must not act as if it failed: a checkpoint whose
	// commit returned ErrOutcomeUnknown must not be discarded. Read the
	// store from the next leader to learn the outcome.
	ErrOutcomeUnknown = errors.New("ha: outcome unknown, the command may still be applied")

	// ErrNoQuorum is wrapped by RaftNode.Health when the group cannot
	// commit anything that this node proposes or forwards: it knows no
	// leader, or it leads without contact with a quorum. Checkpoint
	// commits and job changes stop until a quorum is back.
	ErrNoQuorum = errors.New("ha: no raft quorum")

	// ErrCorruptLog is wrapped when the Raft log or its metadata on disk
	// cannot be opened or fails verification at start. The error names
	// the file.
	ErrCorruptLog = errors.New("ha: corrupt raft log")

	// ErrDataDirLocked is wrapped when another RaftNode, in this or another
	// process, holds the data directory.
	ErrDataDirLocked = errors.New("ha: raft data dir in use")
)
