//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package ha

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive, non-blocking flock on dir/LOCK, so that
// two nodes never share a data directory (bbolt, under raft-wal, would
// block forever on its own lock instead). The returned func releases it.
func lockDataDir(dir string) (unlock func() error, err error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ha: raft data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by another node", ErrDataDirLocked, path)
		}
		return nil, fmt.Errorf("ha: raft data dir lock %s: %w", path, err)
	}
	return f.Close, nil // closing the file releases the lock
}
