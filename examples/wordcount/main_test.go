package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBuiltInText(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, nil))
	want := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		for _, w := range tokenize(line) {
			want[w]++
		}
	}
	var expected strings.Builder
	for _, w := range slices.Sorted(maps.Keys(want)) {
		fmt.Fprintln(&expected, w, want[w])
	}
	assert.Equal(t, expected.String(), out.String())
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "in.txt")
	var b strings.Builder
	for range 10000 {
		b.WriteString("alpha beta beta\nGamma, gamma; gamma!\n")
	}
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o644))
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, []string{p}))
	assert.Equal(t, "alpha 10000\nbeta 20000\ngamma 30000\n", out.String())
}

func TestMissingFile(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, []string{filepath.Join(t.TempDir(), "nope")})
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestTokenizeLikeFlink(t *testing.T) {
	for line, want := range map[string][]string{
		"w0 w1":                    {"w0", "w1"},
		"To be, or not to be":      {"to", "be", "or", "not", "to", "be"},
		"Devoutly to be wish'd.":   {"devoutly", "to", "be", "wish", "d"},
		"die—to sleep;":            {"die", "to", "sleep"},
		"snake_case 42 x-1":        {"snake_case", "42", "x", "1"},
		"Café naïve":               {"café", "naïve"},
		"  ,;  ":                   {},
		"ERROR 2026-12-05 disk-17": {"error", "2026", "12", "05", "disk", "17"},
	} {
		assert.Equal(t, want, tokenize(line), "%q", line)
	}
}
