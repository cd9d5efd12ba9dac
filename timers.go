package flink

import (
	"container/heap"
	"fmt"
	"slices"

	"github.com/flinkgo/flink/state"
	"github.com/flinkgo/flink/window"
)

// TimeDomain says which clock a timer or window follows.
type TimeDomain = window.Domain

const (
	// EventTime timers fire when the watermark reaches them.
	EventTime = window.EventTime
	// ProcessingTime timers fire when the wall clock reaches them.
	ProcessingTime = window.ProcessingTime
)

// TimerService gives a keyed function the current times and timers for
// the current key: Flink's TimerService. Times are Unix milliseconds.
// Registering a timer that exists (same key, time and domain) does
// nothing; timers are part of checkpoints.
type TimerService interface {
	// CurrentProcessingTime returns the wall clock.
	CurrentProcessingTime() int64
	// CurrentWatermark returns the operator's event-time watermark.
	CurrentWatermark() int64
	// RegisterEventTimeTimer asks for OnTimer(t) once the watermark reaches t.
	RegisterEventTimeTimer(t int64)
	// RegisterProcessingTimeTimer asks for OnTimer(t) once the wall clock
	// reaches t.
	RegisterProcessingTimeTimer(t int64)
	// DeleteEventTimeTimer removes an event-time timer, if registered.
	DeleteEventTimeTimer(t int64)
	// DeleteProcessingTimeTimer removes a processing-time timer, if
	// registered.
	DeleteProcessingTimeTimer(t int64)
}

// timerID is a timer as stored in keyed state, under its key.
type timerID[N comparable] struct {
	Domain TimeDomain
	TS     int64
	NS     N
}

// timerKey identifies a timer in memory.
type timerKey[K, N comparable] struct {
	id  timerID[N]
	key K
}

type timerEntry[K, N comparable] struct {
	ts  int64
	seq uint64
	key timerKey[K, N]
}

type timerHeap[K, N comparable] []timerEntry[K, N]

func (h timerHeap[K, N]) Len() int { return len(h) }
func (h timerHeap[K, N]) Less(i, j int) bool {
	if h[i].ts != h[j].ts {
		return h[i].ts < h[j].ts
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap[K, N]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap[K, N]) Push(x any)   { *h = append(*h, x.(timerEntry[K, N])) }
func (h *timerHeap[K, N]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// keyedTimers is an operator's timers, per key and namespace (the window,
// for window operators): Flink's InternalTimerService. Timers live in two
// priority queues (one per domain) and, per key, in a short list of the
// live ones. Before each checkpoint the keys whose timers changed are
// written to the operator's keyed state, so that checkpoints include the
// timers and a restore, at any parallelism, finds them in the key groups
// it owns. Deleted timers leave their queue entry behind; it is skipped
// when it comes up.
type keyedTimers[K, N comparable] struct {
	t       *task
	backend *state.HeapKeyedBackend[K]
	stored  state.MapState[timerID[N], bool]
	live    map[K][]timerID[N]
	dirty   map[K]struct{} // keys whose timers changed since the last sync
	queues  [2]timerHeap[K, N]
	seq     uint64
	wm      int64
	// scheduled is the earliest time the processing-time service will call
	// back at; 0 when nothing is scheduled.
	scheduled int64
	onProc    func(now int64) error
	err       error // first failure of a call without an error result
}

// timersState names the keyed state holding an operator's timers.
const timersState = "_timers"

func newKeyedTimers[K, N comparable](oc *opContext, b *state.HeapKeyedBackend[K]) (*keyedTimers[K, N], error) {
	stored, err := state.GetMapState(b, state.MapStateDescriptor[timerID[N], bool]{Name: timersState})
	if err != nil {
		return nil, err
	}
	kt := &keyedTimers[K, N]{t: oc.task, backend: b, stored: stored, live: make(map[K][]timerID[N]),
		dirty: make(map[K]struct{}), wm: MinWatermark}
	keys, err := b.Keys(timersState)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := b.SetCurrentKey(k); err != nil {
			return nil, err
		}
		all, err := stored.All()
		if err != nil {
			return nil, err
		}
		for id := range all {
			kt.add(k, id)
		}
	}
	oc.beforeKeyedSnapshot = append(oc.beforeKeyedSnapshot, kt.sync)
	return kt, nil
}

// sync writes the timers of the keys that changed into keyed state; it
// runs by the chain's owner before the keyed state is frozen.
func (kt *keyedTimers[K, N]) sync() error {
	for k := range kt.dirty {
		if err := kt.backend.SetCurrentKey(k); err != nil {
			return err
		}
		if err := kt.stored.Clear(); err != nil {
			return err
		}
		for _, id := range kt.live[k] {
			if err := kt.stored.Put(id, true); err != nil {
				return err
			}
		}
	}
	clear(kt.dirty)
	return nil
}

// start schedules the processing-time timers restored from a checkpoint;
// onProc fires due processing-time timers.
func (kt *keyedTimers[K, N]) start(onProc func(now int64) error) {
	kt.onProc = onProc
	kt.schedule()
}

func (kt *keyedTimers[K, N]) add(key K, id timerID[N]) {
	kt.live[key] = append(kt.live[key], id)
	kt.seq++
	heap.Push(&kt.queues[id.Domain], timerEntry[K, N]{ts: id.TS, seq: kt.seq, key: timerKey[K, N]{id: id, key: key}})
}

// register adds a timer for the current key.
func (kt *keyedTimers[K, N]) register(d TimeDomain, ts int64, ns N) {
	key, ok := kt.backend.CurrentKey()
	if !ok {
		kt.setErr(fmt.Errorf("flink: timer registered outside a keyed context"))
		return
	}
	id := timerID[N]{Domain: d, TS: ts, NS: ns}
	// The newest timers are last, and a key's records mostly hit its newest
	// windows: search from the end.
	ids := kt.live[key]
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] == id {
			return
		}
	}
	kt.add(key, id)
	kt.dirty[key] = struct{}{}
	if d == ProcessingTime {
		kt.schedule()
	}
}

// unlink removes id from key's live timers and reports whether it was
// there.
func (kt *keyedTimers[K, N]) unlink(key K, id timerID[N]) bool {
	ids := kt.live[key]
	i := slices.Index(ids, id)
	if i < 0 {
		return false
	}
	if len(ids) == 1 {
		delete(kt.live, key)
	} else {
		kt.live[key] = slices.Delete(ids, i, i+1)
	}
	kt.dirty[key] = struct{}{}
	return true
}

// remove deletes a timer of the current key, if registered.
func (kt *keyedTimers[K, N]) remove(d TimeDomain, ts int64, ns N) {
	if key, ok := kt.backend.CurrentKey(); ok {
		kt.unlink(key, timerID[N]{Domain: d, TS: ts, NS: ns})
	}
}

func (kt *keyedTimers[K, N]) setErr(err error) {
	if err != nil && kt.err == nil {
		kt.err = err
	}
}

// takeErr returns and clears the first failure of a registration.
func (kt *keyedTimers[K, N]) takeErr() error {
	err := kt.err
	kt.err = nil
	return err
}

// next pops the earliest live timer of domain d due at or before t, with
// its key made current; ok is false when none is.
func (kt *keyedTimers[K, N]) next(d TimeDomain, t int64) (timerKey[K, N], bool, error) {
	q := &kt.queues[d]
	for q.Len() > 0 && (*q)[0].ts <= t {
		e := heap.Pop(q).(timerEntry[K, N])
		if !kt.unlink(e.key.key, e.key.id) {
			continue // deleted, or fired already
		}
		if err := kt.backend.SetCurrentKey(e.key.key); err != nil {
			return e.key, false, err
		}
		return e.key, true, nil
	}
	return timerKey[K, N]{}, false, nil
}

// advance moves the watermark to wm and fires the event-time timers it
// passes, in time order, with fire.
func (kt *keyedTimers[K, N]) advance(wm int64, fire func(k timerKey[K, N]) error) error {
	kt.wm = wm
	for {
		k, ok, err := kt.next(EventTime, wm)
		if err != nil || !ok {
			return err
		}
		if err := fire(k); err != nil {
			return err
		}
	}
}

// fireProcessing fires the processing-time timers due at now, then
// schedules the next call.
func (kt *keyedTimers[K, N]) fireProcessing(now int64, fire func(k timerKey[K, N]) error) error {
	for {
		k, ok, err := kt.next(ProcessingTime, now)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := fire(k); err != nil {
			return err
		}
	}
	kt.schedule()
	return nil
}

// schedule asks the task's processing-time service to call back for the
// earliest processing-time timer, unless an earlier call is scheduled.
func (kt *keyedTimers[K, N]) schedule() {
	q := kt.queues[ProcessingTime]
	if kt.onProc == nil || q.Len() == 0 {
		return
	}
	at := q[0].ts
	if kt.scheduled != 0 && kt.scheduled <= at {
		return
	}
	kt.scheduled = at
	kt.t.timers.register(at, func(now int64) error {
		if kt.scheduled == at {
			kt.scheduled = 0
		}
		return kt.onProc(now)
	})
}
