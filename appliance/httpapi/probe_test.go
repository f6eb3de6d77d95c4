package httpapi

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"possync/appliance/engine"
	"possync/storage/memstore"
)

// openTestServer serves a memstore engine on 127.0.0.1:0.
func openTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	eng := engine.New(memstore.New(), engine.Options{Logger: slog.New(slog.DiscardHandler), PurgeInterval: -1})
	if err := eng.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	opts.Addr, opts.Logger = "127.0.0.1:0", slog.New(slog.DiscardHandler)
	s := New(eng, opts)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
		eng.Close()
	})
	return s
}

// Probe is answered by a serving server, also by one at its connection
// limit (the 503 refusal shows the accept loop works), and fails when
// nothing accepts on the listening socket (a stuck accept loop: the kernel
// completes the connection, nobody answers).
func TestProbe(t *testing.T) {
	s := openTestServer(t, Options{MaxConns: 16})
	if err := s.Probe(10 * time.Second); err != nil {
		t.Errorf("Probe() of a serving server = %v", err)
	}

	for range 16 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.ln.open.Load() < 16 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Probe(10 * time.Second); err != nil {
		t.Errorf("Probe() of a full server = %v, want nil (the refusal is an answer)", err)
	}
	if s.ln.refused.Load() == 0 {
		t.Errorf("the probe of a full server was not refused: open %d", s.ln.open.Load())
	}

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	stuck := &Server{ln: newListener(raw, 16, time.Second, slog.New(slog.DiscardHandler), newRateLog(time.Minute))}
	if err := stuck.Probe(300 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("Probe() with nothing accepting = %v, want no answer", err)
	}
}

// probeAddr dials loopback for a listener on every address.
func TestProbeAddr(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8079}, "127.0.0.1:8079"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8079}, "[::1]:8079"},
		{&net.TCPAddr{Port: 8079}, "127.0.0.1:8079"},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 50), Port: 8079}, "192.168.1.50:8079"},
	}
	for _, tt := range tests {
		if got := probeAddr(tt.addr); got != tt.want {
			t.Errorf("probeAddr(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
