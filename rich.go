package flink

import (
	"fmt"
	"reflect"
)

// RichFunction is the optional lifecycle of a user function, as Flink's
// RichFunction. A KeyedProcessFunction, KeyedCoProcessFunction,
// CoProcessFunction or KeyedBroadcastProcessFunction that implements it is
// opened in each subtask before its first record and closed when the
// subtask ends, finished, failed or cancelled.
//
// Each subtask, and each restart, gets its own instance of the function:
// a function held by pointer to a struct is copied (a shallow copy, as
// Flink deserializes one copy per subtask), so its fields are the
// subtask's own and need no lock. Maps, slices and pointers in the copy
// still point where the original's do: make them in Open. A function that
// is not a pointer to a struct (a func, a struct value) is shared.
type RichFunction interface {
	// Open is called once per instance, on the subtask's goroutine, after
	// the subtask's state is restored and before any record; rc describes
	// the subtask. An error fails the subtask.
	Open(rc *RuntimeContext) error
	// Close is called once after Open succeeded, on the subtask's
	// goroutine, when the subtask ends for any reason. Release what Open
	// acquired.
	Close() error
}

// perSubtask returns the instance of f a subtask uses: a shallow copy of
// the struct f points to, or f itself when it is not a pointer to a
// struct.
func perSubtask[F any](f F) F {
	v := reflect.ValueOf(f)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return f
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	g, ok := c.Interface().(F)
	if !ok {
		return f
	}
	return g
}

// openFunction opens f in the subtask of oc when f is a RichFunction, and
// has the task close it when the subtask ends.
func openFunction(oc *opContext, f any) error {
	r, ok := f.(RichFunction)
	if !ok {
		return nil
	}
	if err := r.Open(oc.rc); err != nil {
		return oc.fail(fmt.Errorf("opening %T: %w", f, err))
	}
	oc.task.addCloser(r.Close)
	return nil
}
