package security

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzServerHandshake feeds arbitrary bytes to a member's server side of
// the mutual TLS handshake, as a stranger on any port can: it must refuse
// them with an error, without a panic or a hang, and never admit a peer.
func FuzzServerHandshake(f *testing.F) {
	dir := f.TempDir()
	if err := GenerateDevCerts(dir, DevCertsConfig{Nodes: []string{"node"}}); err != nil {
		f.Fatal(err)
	}
	m, err := Load(FromDir(dir, "node"))
	if err != nil {
		f.Fatal(err)
	}
	// Seeds: a real ClientHello of a member, plaintext, and nothing.
	f.Add(clientHello(f, m))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tc, _, err := ServerHandshake(context.Background(), &scriptedConn{r: bytes.NewReader(data)}, m.Internal, time.Second)
		if err == nil {
			tc.Close()
			t.Fatalf("a handshake of %d arbitrary bytes was admitted", len(data))
		}
	})
}

// scriptedConn is a peer that sends fixed bytes, then EOF, and ignores
// what it is sent.
type scriptedConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (c *scriptedConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptedConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *scriptedConn) Close() error                     { return nil }
func (c *scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// clientHello returns the first flight of a member's client handshake.
func clientHello(f *testing.F, m *Material) []byte {
	c := &scriptedConn{r: bytes.NewReader(nil)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ClientHandshake(ctx, c, m.Internal) // fails at EOF, after writing its hello
	b, _ := io.ReadAll(&c.w)
	return b
}
