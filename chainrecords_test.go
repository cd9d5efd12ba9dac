package flink

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vertexRecords returns the read and write records of vertex v in the
// REST answer /jobs/:id, the figures the dashboard shows as "In · Out".
func vertexRecords(t *testing.T, d map[string]any, v int) (in, out float64) {
	t.Helper()
	vs := d["vertices"].([]any)
	require.Greater(t, len(vs), v)
	m := vs[v].(map[string]any)["metrics"].(map[string]any)
	return m["read-records"].(float64), m["write-records"].(float64)
}

// TestRESTChainedVertexRecords: a vertex whose chain starts with a source
// reads the records its source emits, and one whose chain ends in a sink
// writes the records its sink receives, as Flink's source and sink
// operators count their external input and output. A running source→sink
// chain (the dashboard's ticker) no longer shows "In 0 · Out 0".
func TestRESTChainedVertexRecords(t *testing.T) {
	f := newRESTFixture(t, restTestRegistry())

	// Generate → double → discard, one chained vertex.
	id := f.submit(t, `{"name": "count", "args": ["100"], "parallelism": 2}`)
	res := f.await(t, id)
	require.Equal(t, JobFinished, res.Status)
	d := f.get(t, "/jobs/"+string(id))
	require.Len(t, d["vertices"].([]any), 1)
	in, out := vertexRecords(t, d, 0)
	assert.EqualValues(t, 100, in, "records read by the source head")
	assert.EqualValues(t, 100, out, "records written by the sink tail")
	require.Len(t, res.Vertices, 1)
	assert.EqualValues(t, 100, res.Vertices[0].RecordsIn)
	assert.EqualValues(t, 100, res.Vertices[0].RecordsOut)

	// A running source → sink chain shows its progress.
	id = f.submit(t, `{"name": "forever", "parallelism": 1}`)
	path := "/jobs/" + string(id)
	require.Eventually(t, func() bool {
		d := f.get(t, path)
		if d["state"] != "RUNNING" {
			return false
		}
		in, out := vertexRecords(t, d, 0)
		return in > 0 && out > 0
	}, 30*time.Second, 20*time.Millisecond, "a running source→sink vertex shows records in and out")
	status, _, _ := f.do(t, http.MethodPatch, path+"?mode=cancel", "")
	require.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, JobCanceled, f.await(t, id).Status)
}
