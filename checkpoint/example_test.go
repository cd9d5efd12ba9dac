package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"syscall"

	"github.com/flinkgo/flink/checkpoint"
	"github.com/flinkgo/flink/state"
)

// A subtask writes its keyed state, the coordinator writes the metadata and
// adds the checkpoint to the store, and a restore reads one key group back.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "checkpoints")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	storage, err := checkpoint.NewFileStorage(checkpoint.FileStorageConfig{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	store, err := checkpoint.OpenStore(ctx, storage, "job-1", checkpoint.DefaultStoreConfig())
	if err != nil {
		log.Fatal(err)
	}

	for id := int64(1); id <= 3; id++ {
		loc := checkpoint.CheckpointLocation("job-1", id)

		// Subtask: key groups 0 and 1, noting where each starts.
		w, err := storage.CreateStream(ctx, loc, "counter-0-keyed")
		if err != nil {
			log.Fatal(err)
		}
		var offsets []int64
		for kg := range 2 {
			offsets = append(offsets, w.Pos())
			fmt.Fprintf(w, "kg%d@%d;", kg, id)
		}
		handle, err := w.Close()
		if err != nil {
			log.Fatal(err)
		}

		// Coordinator: all subtasks acknowledged.
		m := &checkpoint.Metadata{
			JobID: "job-1", CheckpointID: id,
			Operators: []checkpoint.OperatorState{{
				OperatorID: "counter", Parallelism: 1, MaxParallelism: 2,
				Subtasks: []checkpoint.SubtaskState{{Keyed: []checkpoint.KeyedStateHandle{{
					Stream: handle, KeyGroups: state.KeyGroupRange{Start: 0, End: 1}, Offsets: offsets,
				}}}},
			}},
		}
		if err := storage.WriteMetadata(ctx, loc, m); err != nil {
			log.Fatal(err)
		}
		if err := store.Add(ctx, m); err != nil {
			log.Fatal(err)
		}
	}
	ids, _ := storage.ListCheckpoints(ctx, "job-1")
	fmt.Println("completed checkpoints in storage:", ids)

	// Restore: read only key group 1 of the latest checkpoint.
	latest, _ := store.Latest()
	h := latest.Metadata.Operators[0].Subtasks[0].Keyed[0]
	r, err := storage.OpenStream(ctx, h.Stream)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	kg1, _ := io.ReadAll(io.NewSectionReader(r, h.Offsets[1], h.Stream.Size-h.Offsets[1]))
	fmt.Printf("checkpoint %d, key group 1: %s\n", latest.ID, kg1)
	// Output:
	// completed checkpoints in storage: [3]
	// checkpoint 3, key group 1: kg1@3;
}

// MemStorage injects faults for tests: here the disk fills up while the
// metadata is written, and the checkpoint does not become visible.
func ExampleMemStorage() {
	ctx := context.Background()
	s := checkpoint.NewMemStorage()
	s.SetCapacity(10)
	loc := checkpoint.CheckpointLocation("job-1", 1)
	err := s.WriteMetadata(ctx, loc, &checkpoint.Metadata{JobID: "job-1", CheckpointID: 1})
	fmt.Println("no space:", errors.Is(err, checkpoint.ErrNoSpace), errors.Is(err, syscall.ENOSPC))
	ids, _ := s.ListCheckpoints(ctx, "job-1")
	fmt.Println("completed:", ids)
	// Output:
	// no space: true true
	// completed: []
}
