package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// Probe makes a request to the server over a new connection, as a client
// would, and reports whether any HTTP answer came back within d. It covers
// what an engine check cannot: the listening socket, fasthttp's accept
// loop and its workers. A refusal for lack of connections (503) counts as
// an answer: the server is alive, only full. It sends a CORS preflight,
// which touches neither the engine nor the store.
func (s *Server) Probe(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	addr := probeAddr(s.ln.Addr())
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if aerr := s.ln.acceptErr(); aerr != nil {
			return fmt.Errorf("http self-check: %w (%w)", err, aerr)
		}
		return fmt.Errorf("http self-check: %w", err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if _, err := fmt.Fprintf(c, "OPTIONS /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return fmt.Errorf("http self-check: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		if aerr := s.ln.acceptErr(); aerr != nil {
			return fmt.Errorf("http self-check: no answer from %s: %w", addr, aerr)
		}
		return fmt.Errorf("http self-check: no answer from %s within %v: %w", addr, d, err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 ") {
		return fmt.Errorf("http self-check: %s answered %q", addr, line)
	}
	return nil
}

// probeAddr is the address to dial to reach a listener bound to a: the
// loopback address of its family when it listens on every address.
func probeAddr(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := t.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(t.Port))
}
