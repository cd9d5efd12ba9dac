package flink

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flinkgo/flink/state"
)

// TwoPhaseCommitSink writes records in transactions that become visible
// only when a checkpoint covering them completes, as Flink's
// TwoPhaseCommitSinkFunction: with a replayable source this makes a job
// exactly once end to end. One instance runs per subtask, called from the
// subtask's goroutine.
//
// A transaction begins with the first record after the previous one was
// pre-committed. When a checkpoint is taken the current transaction is
// pre-committed (flushed, no more writes) and remembered in the
// checkpoint; when the checkpoint completes it is committed. After a
// failure the job restores the latest completed checkpoint: the
// transactions it remembers are committed (again: Commit must be
// idempotent), the one in progress at that checkpoint is aborted, and the
// records after the checkpoint are replayed into new transactions.
//
// TXN describes a transaction. It is stored in checkpoints, so it must
// survive msgpack (exported fields) and name what commit and abort need
// (a file name, a transaction id), not live handles: another subtask,
// in another process, may commit it after a restore.
type TwoPhaseCommitSink[T, TXN any] interface {
	// Open prepares the sink for the subtask described by rc.
	Open(rc *RuntimeContext) error
	// BeginTransaction starts a transaction.
	BeginTransaction() (TXN, error)
	// Write adds a record to the current transaction.
	Write(txn TXN, v T) error
	// PreCommit makes txn durable but not visible; it gets no more writes.
	PreCommit(txn TXN) error
	// Commit makes a pre-committed transaction visible. It may be called
	// again for a committed transaction after a recovery: that must
	// succeed and change nothing.
	Commit(txn TXN) error
	// Abort discards a transaction. It may be called for a transaction that
	// is already gone.
	Abort(txn TXN) error
	// Close releases the sink's resources.
	Close() error
}

// LingeringTransactionAborter is an optional interface of a
// TwoPhaseCommitSink: it aborts the transactions that earlier attempts of
// the job left behind and that no restore commits (pre-committed for a
// checkpoint that never completed, or in progress in a process that died).
// It is called once per attempt and subtask, after the attempt's first
// checkpoint completed (without checkpointing: when the input ended): by
// then every subtask of the attempt has committed what its restore held,
// and no earlier attempt runs. It must abort only transactions of earlier
// attempts of the same job and operator, and of subtask indexes i with
// i % Parallelism() == SubtaskIndex().
type LingeringTransactionAborter interface {
	AbortLingering() error
}

// pendingTxn is a pre-committed transaction waiting for its checkpoint.
type pendingTxn[TXN any] struct {
	Checkpoint int64 `msgpack:"c"`
	Txn        TXN   `msgpack:"t"`
}

// SinkToTransactional adds a two-phase-commit sink; newSink is called once
// per subtask (and again on restart). Without checkpointing, each
// subtask's records are committed when its input ends.
func SinkToTransactional[T, TXN any](s *DataStream[T], name string, newSink func() TwoPhaseCommitSink[T, TXN]) *DataStreamSink {
	t := s.env.add(&transformation{
		kind:   kindSink,
		opType: "TwoPhaseCommitSink",
		name:   name,
		inputs: append([]input(nil), s.ins...),
		build: func(oc *opContext, _ any) (any, error) {
			return newTwoPhaseOp(oc, newSink())
		},
	})
	return &DataStreamSink{t: t}
}

type twoPhaseOp[T, TXN any] struct {
	oc         *opContext
	sink       TwoPhaseCommitSink[T, TXN]
	current    TXN
	hasCurrent bool
	pending    []pendingTxn[TXN]
	lingering  bool // AbortLingering ran in this attempt

	pendingState state.ListState[pendingTxn[TXN]]
	currentState state.ListState[TXN]
}

func newTwoPhaseOp[T, TXN any](oc *opContext, sink TwoPhaseCommitSink[T, TXN]) (_ *twoPhaseOp[T, TXN], err error) {
	defer oc.recoverInto(&err)
	o := &twoPhaseOp[T, TXN]{oc: oc, sink: sink}
	b, err := operatorBackend(oc, o.snapshot)
	if err != nil {
		return nil, oc.fail(err)
	}
	if o.pendingState, err = state.GetOperatorListState(b, state.ListStateDescriptor[pendingTxn[TXN]]{Name: "pending-transactions"}); err != nil {
		return nil, oc.fail(err)
	}
	if o.currentState, err = state.GetOperatorListState(b, state.ListStateDescriptor[TXN]{Name: "current-transaction"}); err != nil {
		return nil, oc.fail(err)
	}
	if err := sink.Open(oc.rc); err != nil {
		return nil, oc.fail(fmt.Errorf("opening sink: %w", err))
	}
	oc.task.addCloser(o.close)
	if oc.restore != nil {
		// The restored checkpoint completed: what it pre-committed is
		// committed; what was in progress when it was taken is aborted.
		pending, err := o.pendingState.Get()
		if err != nil {
			return nil, oc.fail(err)
		}
		for _, p := range pending {
			if err := sink.Commit(p.Txn); err != nil {
				return nil, oc.fail(fmt.Errorf("committing transaction of checkpoint %d on recovery: %w", p.Checkpoint, err))
			}
		}
		current, err := o.currentState.Get()
		if err != nil {
			return nil, oc.fail(err)
		}
		for _, txn := range current {
			if err := sink.Abort(txn); err != nil {
				return nil, oc.fail(fmt.Errorf("aborting transaction on recovery: %w", err))
			}
		}
	}
	oc.task.addListener(o)
	return o, nil
}

func (o *twoPhaseOp[T, TXN]) push(b []T, _ []int64) (err error) {
	defer o.oc.recoverInto(&err)
	o.oc.metrics.RecordsIn.Add(int64(len(b)))
	if !o.hasCurrent {
		if o.current, err = o.sink.BeginTransaction(); err != nil {
			return o.oc.fail(fmt.Errorf("beginning a transaction: %w", err))
		}
		o.hasCurrent = true
	}
	for _, v := range b {
		if err := o.sink.Write(o.current, v); err != nil {
			return o.oc.fail(err)
		}
	}
	return nil
}

// snapshot pre-commits the current transaction for checkpoint id and
// records the pending ones; called by the chain's owner.
func (o *twoPhaseOp[T, TXN]) snapshot(id int64) (err error) {
	defer o.oc.recoverInto(&err)
	if o.hasCurrent {
		if err := o.sink.PreCommit(o.current); err != nil {
			return fmt.Errorf("pre-committing: %w", err)
		}
		o.pending = append(o.pending, pendingTxn[TXN]{Checkpoint: id, Txn: o.current})
		var zero TXN
		o.current, o.hasCurrent = zero, false
	}
	if err := o.pendingState.Update(o.pending); err != nil {
		return err
	}
	return o.currentState.Clear()
}

// notifyCheckpointComplete commits the transactions the checkpoint covers.
func (o *twoPhaseOp[T, TXN]) notifyCheckpointComplete(id int64) (err error) {
	defer o.oc.recoverInto(&err)
	n := 0
	for _, p := range o.pending {
		if p.Checkpoint > id {
			break
		}
		if err := o.sink.Commit(p.Txn); err != nil {
			o.pending = o.pending[n:]
			return o.oc.fail(fmt.Errorf("committing transaction of checkpoint %d: %w", p.Checkpoint, err))
		}
		n++
	}
	o.pending = o.pending[n:]
	o.abortLingering()
	return nil
}

// abortLingering lets the sink abort what earlier attempts left, once.
func (o *twoPhaseOp[T, TXN]) abortLingering() {
	a, ok := o.sink.(LingeringTransactionAborter)
	if o.lingering || !ok {
		return
	}
	o.lingering = true
	if err := a.AbortLingering(); err != nil {
		// Left-over transactions are invisible: not worth a failover.
		o.oc.task.log.Warn("aborting transactions of earlier attempts failed", "operator", o.oc.rc.opName, "err", err)
	}
}

// notifyCheckpointAborted keeps the transactions: a later checkpoint
// commits them.
func (o *twoPhaseOp[T, TXN]) notifyCheckpointAborted(int64) {}

// endInput commits everything when the job takes no checkpoints; with
// checkpoints, the final checkpoint (taken before the input ended) commits.
func (o *twoPhaseOp[T, TXN]) watermark(int64) error { return nil }

func (o *twoPhaseOp[T, TXN]) endInput() (err error) {
	defer o.oc.recoverInto(&err)
	if o.oc.task.checkpointing {
		return nil
	}
	if o.hasCurrent {
		if err := o.sink.PreCommit(o.current); err != nil {
			return o.oc.fail(fmt.Errorf("pre-committing: %w", err))
		}
		o.pending = append(o.pending, pendingTxn[TXN]{Txn: o.current})
		var zero TXN
		o.current, o.hasCurrent = zero, false
	}
	for len(o.pending) > 0 {
		if err := o.sink.Commit(o.pending[0].Txn); err != nil {
			return o.oc.fail(fmt.Errorf("committing: %w", err))
		}
		o.pending = o.pending[1:]
	}
	o.abortLingering()
	return nil
}

// close aborts the transaction in progress; pre-committed ones stay for
// the recovery to commit.
func (o *twoPhaseOp[T, TXN]) close() error {
	var err error
	if o.hasCurrent {
		err = o.sink.Abort(o.current)
		o.hasCurrent = false
	}
	return errors.Join(err, o.sink.Close())
}

// FileTransaction is a transaction of the exactly-once file sink: a hidden
// in-progress file, renamed to its final name on commit.
type FileTransaction struct {
	InProgress string `msgpack:"tmp"`
	Final      string `msgpack:"final"`
}

// WriteFilesExactlyOnce writes each record as a line, formatted by format,
// into part files in dir, exactly once: records go into hidden
// in-progress files (".part-*.inprogress") that are renamed to
// "part-<subtask>-<id>-<n>" when the checkpoint covering them completes
// (when the input ends, without checkpointing). Readers should ignore
// files starting with '.'. The directory is created if needed.
func WriteFilesExactlyOnce[T any](s *DataStream[T], dir string, format func(T) string) *DataStreamSink {
	return SinkToTransactional(s, "FileSink", func() TwoPhaseCommitSink[T, FileTransaction] {
		return &fileSink[T]{dir: dir, format: format}
	})
}

type fileSink[T any] struct {
	dir    string
	format func(T) string
	rc     *RuntimeContext
	owner  string // the job and operator, hashed: whose in-progress files are whose
	prefix string
	n      int
	f      *os.File
	w      *bufio.Writer
	cur    string
}

func (s *fileSink[T]) Open(rc *RuntimeContext) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	s.prefix = fmt.Sprintf("part-%d-%s", rc.SubtaskIndex(), randomHex(6))
	sum := sha256.Sum256([]byte(string(rc.JobID()) + "/" + rc.OperatorID()))
	s.rc, s.owner = rc, hex.EncodeToString(sum[:8])
	return nil
}

// AbortLingering implements LingeringTransactionAborter: it removes the
// in-progress files of earlier attempts of this job's sink operator that
// belong to this subtask. An in-progress file is named
// ".<final>.<owner>.<attempt>.inprogress"; files of other jobs or sinks
// sharing the directory, and of this attempt, stay.
func (s *fileSink[T]) AbortLingering() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		f := strings.Split(e.Name(), ".")
		if len(f) != 5 || f[0] != "" || f[2] != s.owner || f[4] != "inprogress" {
			continue
		}
		attempt, err1 := strconv.Atoi(f[3])
		sub, _, _ := strings.Cut(strings.TrimPrefix(f[1], "part-"), "-")
		subtask, err2 := strconv.Atoi(sub)
		if err1 != nil || err2 != nil || attempt >= s.rc.Attempt() || subtask%s.rc.Parallelism() != s.rc.SubtaskIndex() {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *fileSink[T]) BeginTransaction() (FileTransaction, error) {
	s.n++
	name := fmt.Sprintf("%s-%d", s.prefix, s.n)
	txn := FileTransaction{InProgress: filepath.Join(s.dir, fmt.Sprintf(".%s.%s.%d.inprogress", name, s.owner, s.rc.Attempt())),
		Final: filepath.Join(s.dir, name)}
	f, err := os.OpenFile(txn.InProgress, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return txn, err
	}
	s.f, s.w, s.cur = f, bufio.NewWriterSize(f, 64<<10), txn.InProgress
	return txn, nil
}

func (s *fileSink[T]) Write(txn FileTransaction, v T) error {
	if txn.InProgress != s.cur || s.w == nil {
		return fmt.Errorf("flink: file sink: write to %s, which is not the open transaction", txn.InProgress)
	}
	s.w.WriteString(s.format(v))
	return s.w.WriteByte('\n')
}

func (s *fileSink[T]) PreCommit(txn FileTransaction) error {
	if txn.InProgress != s.cur || s.f == nil {
		return fmt.Errorf("flink: file sink: pre-commit of %s, which is not the open transaction", txn.InProgress)
	}
	err := s.w.Flush()
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f, s.w, s.cur = nil, nil, ""
	return err
}

func (s *fileSink[T]) Commit(txn FileTransaction) error {
	err := os.Rename(txn.InProgress, txn.Final)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(txn.Final); serr == nil {
			return nil // committed before
		}
		return fmt.Errorf("flink: file sink: transaction lost: neither %s nor %s exists", txn.InProgress, txn.Final)
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(txn.Final))
}

func (s *fileSink[T]) Abort(txn FileTransaction) error {
	if txn.InProgress == s.cur && s.f != nil {
		s.f.Close()
		s.f, s.w, s.cur = nil, nil, ""
	}
	if err := os.Remove(txn.InProgress); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *fileSink[T]) Close() error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
