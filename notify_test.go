package flink

import (
	"context"
	"log/slog"
	"testing"
)

// nopListener is a checkpoint listener that does nothing.
type nopListener struct{}

func (nopListener) notifyCheckpointComplete(int64) error { return nil }
func (nopListener) notifyCheckpointAborted(int64)        {}

// A checkpoint notification can reach a new attempt of a subtask while its
// chain is still being built (the JobManager addresses the current attempt
// of a subtask named in a checkpoint of the previous one). It must not
// touch the listeners the build is registering: the race detector flagged
// exactly that in TestExactlyOnceUnderFailures.
func TestCheckpointNotificationDuringBuild(t *testing.T) {
	g := &JobGraph{Vertices: []*JobVertex{{Name: "sink", Parallelism: 1}}}
	tk := newTask(context.Background(), ExecutionAttemptID{}, g, nil, nil, slog.New(slog.DiscardHandler))
	built := make(chan struct{})
	go func() {
		defer close(built)
		for range 100 {
			tk.addListener(nopListener{}) // what build does
		}
	}()
	for i := range int64(100) {
		tk.notifyCheckpointAborted(i)
		tk.notifyCheckpointComplete(i)
	}
	<-built
}
