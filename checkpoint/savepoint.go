package checkpoint

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Savepoint directories, as in Flink's
// AbstractFsCheckpointStorageAccess.initializeLocationForSavepoint: each
// savepoint gets a fresh directory inside its target, named
// "savepoint-<first 6 characters of the job id>-<12 random hex digits>",
// created exclusively so that no savepoint ever writes into another's.
const (
	savepointDirPrefix = "savepoint-"
	// savepointNameAttempts is how many random names InitSavepointLocation
	// tries before giving up (Flink tries 10).
	savepointNameAttempts = 10
	// savepointRandomBytes is the number of random bytes in a name: 12
	// hex digits.
	savepointRandomBytes = 6
)

// savepointName returns a fresh savepoint directory name for job, reading
// its randomness from r.
func savepointName(r io.Reader, job string) (string, error) {
	var b [savepointRandomBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("checkpoint: random savepoint name: %w", err)
	}
	return savepointDirPrefix + job[:min(6, len(job))] + "-" + hex.EncodeToString(b[:]), nil
}

// errOutsideRoots is the one error for a savepoint target or path that is
// malformed or lies outside the storage's savepoint roots. It is decided
// from the path's text and from what lies inside the roots only, and says
// the same for every such path: nothing outside the roots is looked at, so
// the error cannot tell whether something exists there.
func errOutsideRoots(p string) error {
	return fmt.Errorf("%w: savepoint path %q is not a clean path inside the allowed savepoint directories", ErrInvalidName, p)
}

// errNoFreshName reports that every attempt at a fresh savepoint directory
// in dir found one that exists.
func errNoFreshName(dir string) error {
	return fmt.Errorf("%w: no fresh savepoint directory in %s after %d attempts", ErrExists, dir, savepointNameAttempts)
}

// within returns the part of p below root (empty when p is root itself),
// or false if p is not root nor below it. Both are clean paths with
// separator sep; an empty root holds everything (the root of a bucket).
func within(root, p, sep string) (string, bool) {
	if root == "" || p == root {
		if root == "" {
			return p, true
		}
		return "", true
	}
	prefix := root
	if !strings.HasSuffix(prefix, sep) {
		prefix += sep
	}
	return strings.CutPrefix(p, prefix)
}
