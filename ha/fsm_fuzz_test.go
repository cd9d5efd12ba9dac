package ha

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzDecodeCommand feeds arbitrary bytes to the command decoder, as they
// are and re-framed with a valid checksum (so that the msgpack body is
// reached): it must never panic, and whatever it accepts must encode back
// to an equivalent command and apply without panicking.
func FuzzDecodeCommand(f *testing.F) {
	spec := testJobSpec("job-1")
	for _, c := range []command{
		{Type: cmdSubmitJob, Token: fsmTok(1), Job: "job-1", Spec: &spec},
		{Type: cmdUpdateJobStatus, Token: fsmTok(2), Job: "job-1", Status: "RUNNING"},
		{Type: cmdRemoveJob, Token: fsmTok(3), Job: "job-1"},
		fsmCommit("job-1", 4, 17),
		{Type: cmdNextCheckpointID, Token: fsmTok(5), Job: "job-1"},
		{Type: cmdUpdateJobStatus, Token: fsmTok(6), Job: "job-1", Status: "FINISHED", EndTime: 1796461771663, Restarts: 3},
		{Type: cmdRecordRestarts, Token: fsmTok(7), Job: "job-1", Restarts: 2},
	} {
		b, err := encodeCommand(&c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-4]) // the body alone: the target re-frames it
	}
	f.Add([]byte{})
	f.Add([]byte{byte(cmdSubmitJob), 0x80})
	f.Add([]byte{0xff, 0xdf, 0xff, 0xff, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, frameCommand(data)} {
			c, err := decodeCommand(in)
			if err != nil {
				continue
			}
			out, err := encodeCommand(&c)
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", c, err)
			}
			c2, err := decodeCommand(out)
			if err != nil {
				t.Fatalf("re-encoded %+v does not decode: %v", c, err)
			}
			if out2, err := encodeCommand(&c2); err != nil || !bytes.Equal(out, out2) {
				t.Fatalf("round trip changed %+v to %+v (%v)", c, c2, err)
			}
			fsm := newJobStoreFSM()
			fsm.Apply(&raft.Log{Index: 1, Term: c.Token.Term, Type: raft.LogCommand, Data: in})
		}
	})
}

// FuzzDecodeSnapshot feeds arbitrary bytes to the snapshot decoder, as
// they are and wrapped in a valid header and checksum (so that the msgpack
// body is reached): it must never panic, and whatever it accepts must
// encode back to the same records.
func FuzzDecodeSnapshot(f *testing.F) {
	var empty, one, two bytes.Buffer
	a := JobRecord{JobSpec: testJobSpec("a"), Latest: CheckpointPointer{ID: 3, Location: "s3://bucket/a/chk-3"}, CheckpointCounter: 4, Restarts: 2, EndTime: 1796461779999, Revision: 9}
	a.StartTime = 1796461771663
	b := JobRecord{JobSpec: JobSpec{ID: "b", Name: "sessions", Status: "RUNNING"}, Revision: 10}
	for _, s := range []struct {
		buf  *bytes.Buffer
		jobs []JobRecord
	}{{&empty, nil}, {&one, []JobRecord{a}}, {&two, []JobRecord{a, b}}} {
		if err := encodeSnapshot(s.buf, s.jobs); err != nil {
			f.Fatal(err)
		}
		f.Add(s.buf.Bytes())
		f.Add(s.buf.Bytes()[snapshotHeaderLen : s.buf.Len()-4]) // the body alone
	}
	f.Add([]byte(snapshotMagic))
	f.Add([]byte{0x91, 0x80})
	f.Add([]byte{0xdd, 0x7f, 0xff, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, data []byte) {
		framed := append([]byte(snapshotMagic), snapshotVersion1)
		framed = binary.BigEndian.AppendUint32(framed, uint32(len(data)))
		framed = append(framed, data...)
		framed = binary.BigEndian.AppendUint32(framed, testCRC32C(framed))
		for _, in := range [][]byte{data, framed} {
			jobs, err := decodeSnapshot(bytes.NewReader(in))
			if err != nil {
				continue
			}
			var out bytes.Buffer
			if err := encodeSnapshot(&out, jobs); err != nil {
				t.Fatalf("decoded snapshot does not encode: %v", err)
			}
			jobs2, err := decodeSnapshot(&out)
			if err != nil {
				t.Fatalf("re-encoded snapshot does not decode: %v", err)
			}
			if len(jobs) != len(jobs2) {
				t.Fatalf("round trip changed %d jobs to %d", len(jobs), len(jobs2))
			}
			for i := range jobs {
				if jobs[i].ID != jobs2[i].ID || jobs[i].Latest != jobs2[i].Latest ||
					jobs[i].CheckpointCounter != jobs2[i].CheckpointCounter || jobs[i].Status != jobs2[i].Status ||
					jobs[i].StartTime != jobs2[i].StartTime || jobs[i].EndTime != jobs2[i].EndTime || jobs[i].Restarts != jobs2[i].Restarts {
					t.Fatalf("round trip changed %+v to %+v", jobs[i], jobs2[i])
				}
			}
		}
	})
}
