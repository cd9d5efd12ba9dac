package state

import (
	"fmt"
	"time"
)

// Clock tells the backend the current processing time; TTL is measured with
// it. Inject a fake clock in tests. Now may be called from the task goroutine
// only, never concurrently by this package.
type Clock interface {
	Now() time.Time
}

// SystemClock is the Clock backed by time.Now.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// TTLUpdateType says which accesses refresh an entry's time to live.
type TTLUpdateType uint8

const (
	// OnCreateAndWrite refreshes the TTL when the entry is created or written
	// (Flink's default).
	OnCreateAndWrite TTLUpdateType = iota
	// OnReadAndWrite also refreshes it when the entry is read.
	OnReadAndWrite
)

// String returns the update type's name.
func (u TTLUpdateType) String() string {
	switch u {
	case OnCreateAndWrite:
		return "OnCreateAndWrite"
	case OnReadAndWrite:
		return "OnReadAndWrite"
	}
	return fmt.Sprintf("TTLUpdateType(%d)", uint8(u))
}

// TTLConfig is a processing-time time to live for keyed state, as Flink's
// StateTtlConfig. The zero value disables TTL.
//
// An entry expires TTL after its last refresh (see TTLUpdateType). Expired
// entries are never returned: reads treat them as absent and remove them,
// snapshots leave them out, restores drop them. Entries that are never read
// again stay in memory until the next restore or PurgeExpired call. List
// state has a TTL per element and map state one per map entry; the other
// kinds have one per key.
//
// Timestamps are kept in milliseconds, as Flink keeps them.
type TTLConfig struct {
	// TTL is the time to live; zero disables TTL. It is truncated to
	// milliseconds and must be zero or at least one millisecond.
	TTL time.Duration
	// UpdateType says which accesses refresh the TTL.
	UpdateType TTLUpdateType
}

// Enabled reports whether c sets a TTL.
func (c TTLConfig) Enabled() bool { return c.TTL != 0 }

func (c TTLConfig) validate() error {
	if c.TTL < 0 || (c.TTL > 0 && c.TTL < time.Millisecond) {
		return fmt.Errorf("TTL %v must be 0 (disabled) or at least 1ms", c.TTL)
	}
	if c.UpdateType > OnReadAndWrite {
		return fmt.Errorf("unknown TTL update type %d", c.UpdateType)
	}
	return nil
}

// ttlPolicy is a TTLConfig resolved for fast checks on the hot path.
type ttlPolicy struct {
	ms     int64 // 0: disabled
	onRead bool
}

func newTTLPolicy(c TTLConfig) ttlPolicy {
	return ttlPolicy{ms: c.TTL.Milliseconds(), onRead: c.UpdateType == OnReadAndWrite}
}

func (p ttlPolicy) enabled() bool { return p.ms != 0 }

// expired reports whether an entry last refreshed at ts is expired at now.
// With TTL disabled nothing expires.
func (p ttlPolicy) expired(ts, now int64) bool {
	return p.ms != 0 && ts+p.ms <= now
}
