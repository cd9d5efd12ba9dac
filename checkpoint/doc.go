// Package checkpoint stores checkpoints and savepoints: the state streams
// that subtasks write when a checkpoint barrier passes, the metadata that
// makes a checkpoint complete, and the retention of completed checkpoints.
// The checkpoint coordinator (triggering, barrier bookkeeping,
// acknowledgements) builds on it; it does no I/O except where it writes and
// reads storage, and a checkpoint's completion is split so that the I/O
// runs outside its owner's lock (BeginComplete, Finalize, EndComplete).
//
// # Storage
//
// A Storage holds the data. FileStorage (a directory, the default) lays it
// out as Apache Flink's FsCheckpointStorage does:
//
//	<dir>/<job-id>/chk-<n>/<stream>...   state streams of checkpoint n
//	<dir>/<job-id>/chk-<n>/_metadata     written last: checkpoint n is complete
//
// S3Storage does the same with object keys on S3-compatible storage, and
// MemStorage keeps everything in memory, with fault injection for tests of
// the packages that use it.
//
// A subtask writes its state into streams and sends the handles to the
// coordinator:
//
//	loc := checkpoint.CheckpointLocation(jobID, 7)
//	w, err := storage.CreateStream(ctx, loc, "op-3-subtask-0-keyed")
//	...write key groups, noting w.Pos() before each...
//	handle, err := w.Close() // or w.Abort(): nothing is left behind
//
// When every subtask has acknowledged, the coordinator writes the metadata.
// Until WriteMetadata returns, the checkpoint does not exist for readers:
// ListCheckpoints only lists checkpoints with complete metadata, and a crash
// or a full disk while writing leaves none.
//
//	err = storage.WriteMetadata(ctx, loc, &checkpoint.Metadata{...})
//
// A restore reads the metadata, then only the parts of streams it needs
// through StreamReader.ReadAt, using the key-group offsets in the handles.
//
// # Savepoints
//
// A savepoint is a checkpoint in a directory of its own inside a
// user-given target. Storage.InitSavepointLocation makes that directory,
// fresh and exclusively, named as in Flink:
//
//	<target>/savepoint-<first 6 characters of the job id>-<12 random hex digits>/
//
// so no savepoint ever overwrites another's files. It is self-contained:
// its streams are written into its directory and its metadata refers to
// them by relative paths, so it outlives the job and can be moved or copied
// as a whole; SavepointLocation(dir) reads it back. Savepoints are never
// deleted by a Store.
//
// Targets and savepoint paths must lie inside the storage's savepoint roots
// (FileStorageConfig.SavepointRoots, S3StorageConfig.SavepointRoots; by
// default the storage's own directory or prefix and its default savepoint
// directory, Flink's state.savepoints.dir). One that is malformed or
// outside them fails with ErrInvalidName, decided without looking at
// anything outside the roots, so the error does not tell whether the path
// exists.
//
// # Metadata format
//
// Metadata is msgpack behind a header: a magic number, a format version, the
// body's length and its CRC-32C (see EncodeMetadata). A reader refuses a
// file with the wrong magic or an unknown version, and detects truncation and
// corruption, with errors that say what was expected and what was found.
//
// # Retention
//
// A Store keeps a job's newest completed checkpoints (one by default, as
// Flink's state.checkpoints.num-retained) and deletes older ones; it
// recovers its list from storage when opened.
//
// # Errors
//
// Errors wrap the package's sentinels (ErrNotFound, ErrExists, ErrNoSpace,
// ErrCorrupt, ...); match them with errors.Is.
package checkpoint
