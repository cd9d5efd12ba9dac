package flink

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childNodeEnv) != "" {
		os.Exit(runChildNode())
	}
	goleak.VerifyTestMain(m)
}
