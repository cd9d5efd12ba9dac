package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeCounts writes the running counts of the records [0, end) keyed
// i % keys into dir as one committed file, minus drop and plus extra lines.
func writeCounts(t *testing.T, dir string, end, keys int64, drop map[string]bool, extra ...string) {
	t.Helper()
	var b strings.Builder
	counts := make([]int64, keys)
	for i := range end {
		k := i % keys
		counts[k]++
		if l := fmt.Sprintf("%d,%d", k, counts[k]); !drop[l] {
			b.WriteString(l + "\n")
		}
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "part-0-x-1"), []byte(b.String()), 0o644))
}

// TestCheckOutput: the exactness check finds every kind of wrong output.
func TestCheckOutput(t *testing.T) {
	for name, tc := range map[string]struct {
		drop                      map[string]bool
		extra                     []string
		missing, dups, unexpected int
		inProgress                bool
	}{
		"exact":                  {},
		"a lost line":            {drop: map[string]bool{"3,2": true}, missing: 1},
		"a duplicated line":      {extra: []string{"4,1"}, dups: 1},
		"a record counted twice": {extra: []string{"6,3"}, unexpected: 1}, // key 6 has 2 records
		"garbage":                {extra: []string{"x"}, unexpected: 1},
		"a key out of range":     {extra: []string{"10,1"}, unexpected: 1},
		"in-progress files":      {inProgress: true},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// 25 records over 10 keys: keys 0-4 have 3, keys 5-9 have 2.
			writeCounts(t, dir, 25, 10, tc.drop, tc.extra...)
			if tc.inProgress {
				require.NoError(t, os.WriteFile(filepath.Join(dir, ".part-1-y-2.inprogress"), []byte("1,9\n"), 0o644))
			}
			e, err := checkOutput(dir, 25, 10)
			require.NoError(t, err)
			require.Equal(t, tc.missing, e.Missing, e.String())
			require.Equal(t, tc.dups, e.Duplicated, e.String())
			require.Equal(t, tc.unexpected, e.Unexpected, e.String())
			require.Equal(t, tc.missing+tc.dups+tc.unexpected == 0, e.exact())
			if tc.inProgress {
				require.Equal(t, 1, e.InProgress)
			}
		})
	}
	e, err := checkOutput(filepath.Join(t.TempDir(), "none"), 5, 2)
	require.NoError(t, err)
	require.Equal(t, 5, e.Missing, "no output directory: everything is lost")
}

func TestMedian(t *testing.T) {
	require.Equal(t, 2*time.Second, median([]time.Duration{time.Second, 2 * time.Second, 9 * time.Second}))
	require.Equal(t, 1500*time.Millisecond, median([]time.Duration{time.Second, 2 * time.Second}))
}
