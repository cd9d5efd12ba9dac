package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSessions(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(context.Background(), &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var sessions, late int
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "late view"):
			late++
		default:
			sessions++
		}
	}
	// Each of the three users has two sessions, split by the break.
	assert.Equal(t, 6, sessions, "%s", out.String())
	assert.Equal(t, 1, late, "%s", out.String())
	for _, u := range []string{"ada", "bob", "cy"} {
		assert.Equal(t, 2, strings.Count(out.String(), "\n"+u+" ")+boolInt(strings.HasPrefix(out.String(), u+" ")), u)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
