package state

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps one of these (or
// ErrUnhashableKey from keygroup.go), so callers match with errors.Is; the
// wrapping message says what was expected and what was found.
var (
	// ErrNoCurrentKey is returned by keyed state accessed before the backend
	// has a current key (SetCurrentKey was never called, or failed).
	ErrNoCurrentKey = errors.New("state: no current key")

	// ErrKeyGroupOutOfRange is returned by SetCurrentKey for a key whose key
	// group is not owned by the backend: the record was routed to the wrong
	// subtask, or key groups were assigned with another max parallelism.
	ErrKeyGroupOutOfRange = errors.New("state: key group out of range")

	// ErrIncompatibleState is returned when a state name is requested with
	// another kind, type or TTL setting than it was registered with, or than
	// it has in a snapshot being restored.
	ErrIncompatibleState = errors.New("state: incompatible state")

	// ErrInvalidDescriptor is returned for a descriptor that cannot be used:
	// empty name, missing function, negative TTL.
	ErrInvalidDescriptor = errors.New("state: invalid descriptor")

	// ErrInvalidOptions is returned by Validate for unusable backend options.
	ErrInvalidOptions = errors.New("state: invalid options")

	// ErrCorruptSnapshot is returned when a snapshot stream fails a checksum,
	// is truncated, is structurally invalid, or does not match its handle.
	ErrCorruptSnapshot = errors.New("state: corrupt snapshot")

	// ErrSnapshotVersion is returned for a stream written in a format version
	// this code does not read.
	ErrSnapshotVersion = errors.New("state: unsupported snapshot version")

	// ErrRestore is returned when a restore cannot be applied to a backend:
	// states already registered, a key group restored twice, a different max
	// parallelism or key type.
	ErrRestore = errors.New("state: cannot restore")

	// ErrUnknownState is returned for a state name that is not registered.
	ErrUnknownState = errors.New("state: unknown state")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
}
