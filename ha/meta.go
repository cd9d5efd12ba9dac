package ha

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
)

// MetaMaxSize is the largest encoded NodeMeta that can be published, in
// bytes. It is memberlist's limit on node metadata, which travels in every
// alive message.
const MetaMaxSize = memberlist.MetaMaxSize

// metaFormatV1 is the first byte of every encoded NodeMeta. It lets a
// decoder tell this package's metadata apart from a foreign or future format
// before it looks at the msgpack body.
const metaFormatV1 byte = 0x01

// Roles is the set of runtime roles a node can host, as a bit set.
type Roles uint8

const (
	// RoleJobManager marks a node that can host a JobManager (and, when
	// elected leader, the Dispatcher and the ResourceManager).
	RoleJobManager Roles = 1 << iota
	// RoleTaskManager marks a node that offers task slots.
	RoleTaskManager

	// allRoles is the union of every known role.
	allRoles = RoleJobManager | RoleTaskManager
)

// roleNames maps each known role bit to its name, in bit order.
var roleNames = []struct {
	role Roles
	name string
}{
	{RoleJobManager, "jobmanager"},
	{RoleTaskManager, "taskmanager"},
}

// Has reports whether every role in r2 is in r.
func (r Roles) Has(r2 Roles) bool { return r&r2 == r2 }

// String returns the role names joined by commas ("jobmanager,taskmanager"),
// "none" for the empty set, and the unknown bits in hex if there are any.
func (r Roles) String() string {
	if r == 0 {
		return "none"
	}
	var names []string
	for _, rn := range roleNames {
		if r&rn.role != 0 {
			names = append(names, rn.name)
		}
	}
	if unknown := r &^ allRoles; unknown != 0 {
		names = append(names, fmt.Sprintf("unknown(%#x)", uint8(unknown)))
	}
	return strings.Join(names, ",")
}

// ParseRoles parses a comma-separated list of role names ("jobmanager",
// "taskmanager"), the form String produces for known roles. Surrounding
// spaces and empty items are ignored.
func ParseRoles(s string) (Roles, error) {
	var r Roles
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" || item == "none" {
			continue
		}
		found := false
		for _, rn := range roleNames {
			if rn.name == item {
				r |= rn.role
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("ha: unknown role %q: expected \"jobmanager\" or \"taskmanager\"", item)
		}
	}
	return r, nil
}

// NodeMeta is the metadata every node publishes to the membership pool. It
// is encoded with msgpack behind a one-byte format marker and must fit in
// MetaMaxSize bytes.
type NodeMeta struct {
	// NodeID identifies the node in the cluster. Required.
	NodeID string `msgpack:"id"`
	// Roles are the runtime roles the node hosts.
	Roles Roles `msgpack:"r,omitempty"`
	// RPCAddr is the host:port of the node's control-plane RPC endpoint.
	RPCAddr string `msgpack:"rpc,omitempty"`
	// DataAddr is the host:port of the node's network data plane, where
	// remote input channels connect.
	DataAddr string `msgpack:"data,omitempty"`
	// RESTAddr is the host:port of the node's REST API, if it serves one.
	RESTAddr string `msgpack:"rest,omitempty"`
	// RaftAddr is the host:port of the node's Raft transport, for a
	// JobManager node in HA mode: the leader adds it to the group.
	RaftAddr string `msgpack:"raft,omitempty"`
	// Slots is the number of task slots the node offers; zero for a node
	// without the TaskManager role.
	Slots int `msgpack:"s,omitempty"`
	// Fingerprint identifies the job registry compiled into the node's
	// binary. Nodes with different fingerprints must not share jobs; see
	// CheckCompatible.
	Fingerprint string `msgpack:"fp,omitempty"`
	// Version is the version of the node's binary, for humans and logs.
	Version string `msgpack:"v,omitempty"`
}

// Validate reports whether m is well formed: NodeID set, Slots not
// negative, and only known roles. It does not check the encoded size; see
// Encode.
func (m NodeMeta) Validate() error {
	if m.NodeID == "" {
		return fmt.Errorf("%w: empty NodeID", ErrInvalidMeta)
	}
	if m.Slots < 0 {
		return fmt.Errorf("%w: node %q: Slots = %d, expected >= 0", ErrInvalidMeta, m.NodeID, m.Slots)
	}
	if unknown := m.Roles &^ allRoles; unknown != 0 {
		return fmt.Errorf("%w: node %q: unknown role bits %#x", ErrInvalidMeta, m.NodeID, uint8(unknown))
	}
	return nil
}

// Encode validates m and returns its wire form: a format byte followed by a
// msgpack map. It fails with ErrMetaTooLarge when the result exceeds
// MetaMaxSize and with ErrInvalidMeta when Validate fails. The returned
// slice is newly allocated and owned by the caller.
func (m NodeMeta) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte(metaFormatV1)
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(&m); err != nil {
		return nil, fmt.Errorf("ha: encode meta of node %q: %w", m.NodeID, err)
	}
	if buf.Len() > MetaMaxSize {
		return nil, fmt.Errorf("%w: node %q: %d bytes, limit %d", ErrMetaTooLarge, m.NodeID, buf.Len(), MetaMaxSize)
	}
	return buf.Bytes(), nil
}

// DecodeNodeMeta parses metadata published by a peer. Malformed input (too
// long, wrong format byte, bad msgpack, trailing bytes, or a result that
// fails Validate) is reported as an error wrapping ErrMalformedMeta; it
// never panics. Unknown msgpack fields are ignored so that newer nodes can
// add fields. b is not retained.
func DecodeNodeMeta(b []byte) (NodeMeta, error) {
	var m NodeMeta
	switch {
	case len(b) == 0:
		return m, fmt.Errorf("%w: empty", ErrMalformedMeta)
	case len(b) > MetaMaxSize:
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedMeta, len(b), MetaMaxSize)
	case b[0] != metaFormatV1:
		return m, fmt.Errorf("%w: format byte %#x, expected %#x", ErrMalformedMeta, b[0], metaFormatV1)
	}
	r := bytes.NewReader(b[1:])
	dec := msgpack.NewDecoder(r)
	if err := dec.Decode(&m); err != nil {
		return NodeMeta{}, fmt.Errorf("%w: %w", ErrMalformedMeta, err)
	}
	if r.Len() != 0 {
		return NodeMeta{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformedMeta, r.Len())
	}
	if err := m.Validate(); err != nil {
		return NodeMeta{}, fmt.Errorf("%w: %w", ErrMalformedMeta, err)
	}
	return m, nil
}

// CheckCompatible reports whether a remote node runs the same job registry
// as the local one. When the fingerprints differ it returns an error
// wrapping ErrIncompatibleBinary that names both nodes and fingerprints;
// the cluster must not deploy work to, or accept work from, such a node.
func CheckCompatible(local, remote NodeMeta) error {
	if local.Fingerprint == remote.Fingerprint {
		return nil
	}
	return fmt.Errorf("%w: node %q (version %q) has job registry fingerprint %q, local node %q (version %q) has %q",
		ErrIncompatibleBinary, remote.NodeID, remote.Version, remote.Fingerprint,
		local.NodeID, local.Version, local.Fingerprint)
}
