package ha

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func fullMeta() NodeMeta {
	return NodeMeta{
		NodeID:      "taskmanager-7f3c",
		Roles:       RoleJobManager | RoleTaskManager,
		RPCAddr:     "10.20.30.40:6123",
		DataAddr:    "10.20.30.40:6121",
		RESTAddr:    "10.20.30.40:8081",
		Slots:       16,
		Fingerprint: strings.Repeat("ab", 32), // a hex SHA-256
		Version:     "v1.4.2-rc.1+abcdef0",
	}
}

func TestNodeMetaRoundTrip(t *testing.T) {
	for _, m := range []NodeMeta{
		{NodeID: "n"},
		{NodeID: "jm", Roles: RoleJobManager, RPCAddr: "127.0.0.1:1"},
		fullMeta(),
	} {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", m, err)
		}
		if len(b) > MetaMaxSize {
			t.Fatalf("Encode(%+v) = %d bytes, limit %d", m, len(b), MetaMaxSize)
		}
		got, err := DecodeNodeMeta(b)
		if err != nil {
			t.Fatalf("DecodeNodeMeta: %v", err)
		}
		if got != m {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
	b, _ := fullMeta().Encode()
	t.Logf("full meta encodes to %d of %d bytes", len(b), MetaMaxSize)
}

func TestNodeMetaEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		meta NodeMeta
		want error
	}{
		{"empty id", NodeMeta{Slots: 1}, ErrInvalidMeta},
		{"negative slots", NodeMeta{NodeID: "n", Slots: -1}, ErrInvalidMeta},
		{"unknown role", NodeMeta{NodeID: "n", Roles: 0x80}, ErrInvalidMeta},
		{"too large", NodeMeta{NodeID: "n", Version: strings.Repeat("x", MetaMaxSize)}, ErrMetaTooLarge},
		{"just too large", NodeMeta{NodeID: "n", Fingerprint: strings.Repeat("f", 500)}, ErrMetaTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.meta.Encode()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Encode() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeNodeMetaMalformed(t *testing.T) {
	valid, err := NodeMeta{NodeID: "n", Slots: 2}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	body := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{metaFormatV1}, b...)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"format byte only", []byte{metaFormatV1}},
		{"wrong format byte", append([]byte{0x02}, valid[1:]...)},
		{"foreign meta", []byte(`{"role":"server"}`)},
		{"truncated", valid[:len(valid)-1]},
		{"trailing bytes", append(bytes.Clone(valid), 0xc0)},
		{"not a map", body([]int{1, 2, 3})},
		{"wrong field type", body(map[string]any{"id": 7})},
		{"missing id", body(map[string]any{"s": 3})},
		{"negative slots", body(map[string]any{"id": "n", "s": -4})},
		{"unknown roles", body(map[string]any{"id": "n", "r": 0xf0})},
		{"too long", append(bytes.Clone(valid), make([]byte, MetaMaxSize)...)},
		{"huge string length", []byte{metaFormatV1, 0x81, 0xa2, 'i', 'd', 0xdb, 0x7f, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeNodeMeta(tt.in)
			if !errors.Is(err, ErrMalformedMeta) {
				t.Fatalf("DecodeNodeMeta() = %+v, %v; want ErrMalformedMeta", m, err)
			}
			if m != (NodeMeta{}) {
				t.Fatalf("DecodeNodeMeta() returned %+v with an error; want zero", m)
			}
		})
	}
}

func TestDecodeNodeMetaIgnoresUnknownFields(t *testing.T) {
	b, err := msgpack.Marshal(map[string]any{"id": "n", "s": 3, "future": []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeNodeMeta(append([]byte{metaFormatV1}, b...))
	if err != nil || m != (NodeMeta{NodeID: "n", Slots: 3}) {
		t.Fatalf("DecodeNodeMeta() = %+v, %v", m, err)
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		roles Roles
		s     string
	}{
		{0, "none"},
		{RoleJobManager, "jobmanager"},
		{RoleTaskManager, "taskmanager"},
		{RoleJobManager | RoleTaskManager, "jobmanager,taskmanager"},
	}
	for _, tt := range tests {
		if got := tt.roles.String(); got != tt.s {
			t.Errorf("%d.String() = %q, want %q", tt.roles, got, tt.s)
		}
		if got, err := ParseRoles(tt.s); err != nil || got != tt.roles {
			t.Errorf("ParseRoles(%q) = %v, %v; want %v", tt.s, got, err, tt.roles)
		}
	}
	if got := Roles(0x81).String(); got != "jobmanager,unknown(0x80)" {
		t.Errorf("Roles(0x81).String() = %q", got)
	}
	if _, err := ParseRoles("jobmanager,worker"); err == nil || !strings.Contains(err.Error(), `"worker"`) {
		t.Errorf("ParseRoles(worker) error = %v, want one naming the role", err)
	}
	if !(RoleJobManager | RoleTaskManager).Has(RoleTaskManager) || RoleJobManager.Has(RoleTaskManager) {
		t.Error("Has is wrong")
	}
}

func TestCheckCompatible(t *testing.T) {
	local := NodeMeta{NodeID: "jm-0", Fingerprint: "aaaa", Version: "v1"}
	if err := CheckCompatible(local, NodeMeta{NodeID: "tm-1", Fingerprint: "aaaa"}); err != nil {
		t.Fatalf("same fingerprint: %v", err)
	}
	err := CheckCompatible(local, NodeMeta{NodeID: "tm-2", Fingerprint: "bbbb", Version: "v2"})
	if !errors.Is(err, ErrIncompatibleBinary) {
		t.Fatalf("different fingerprint: error = %v, want ErrIncompatibleBinary", err)
	}
	for _, want := range []string{"jm-0", "tm-2", "aaaa", "bbbb", "v1", "v2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// FuzzDecodeNodeMeta checks that no input makes the decoder panic, that
// errors wrap ErrMalformedMeta, and that what decodes re-encodes to
// metadata that decodes to the same value.
func FuzzDecodeNodeMeta(f *testing.F) {
	for _, m := range []NodeMeta{{NodeID: "n"}, fullMeta()} {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{metaFormatV1, 0x81, 0xa2, 'i', 'd', 0xdb, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeNodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedMeta) {
				t.Fatalf("error %v does not wrap ErrMalformedMeta", err)
			}
			return
		}
		again, err := m.Encode()
		if errors.Is(err, ErrMetaTooLarge) {
			return // a denser input encoding than ours
		}
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", m, err)
		}
		m2, err := DecodeNodeMeta(again)
		if err != nil || m2 != m {
			t.Fatalf("re-decode = %+v, %v; want %+v", m2, err, m)
		}
	})
}

func ExampleCheckCompatible() {
	local := NodeMeta{NodeID: "jm-0", Fingerprint: "3f9a", Version: "v1.2.0"}
	remote := NodeMeta{NodeID: "tm-4", Fingerprint: "77c1", Version: "v1.3.0"}
	err := CheckCompatible(local, remote)
	fmt.Println(errors.Is(err, ErrIncompatibleBinary))
	fmt.Println(err)
	// Output:
	// true
	// ha: incompatible binary: node "tm-4" (version "v1.3.0") has job registry fingerprint "77c1", local node "jm-0" (version "v1.2.0") has "3f9a"
}

func ExampleNodeMeta_Encode() {
	meta := NodeMeta{NodeID: "tm-1", Roles: RoleTaskManager, DataAddr: "10.0.0.5:6121", Slots: 4}
	b, err := meta.Encode()
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := DecodeNodeMeta(b)
	fmt.Println(len(b) <= MetaMaxSize, got.Roles, got.Slots, err)
	// Output: true taskmanager 4 <nil>
}
