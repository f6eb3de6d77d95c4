package httpapi

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"possync/appliance"
	"possync/appliance/engine"
)

// A client outside security.allowed_networks is refused by the listener,
// before fasthttp sees the connection: fasthttp reads the first bytes of a
// request's body (up to 8 KiB) before it calls the handler, so a refusal
// there would wait for a body the client may never send (holding a
// connection for http.read_timeout). Here the request head is read (at
// most headLimit bytes, within http.header_timeout), for the log line
// only, and answered 403 with the JSON-RPC error naming the rule and the
// address; the body is never waited for.

// headLimit is the most of a refused request's head that is read.
const headLimit = 4096

// screen reports whether c comes from outside the allowed networks and,
// if so, answers it in the background. overTLS is the HTTPS listener's
// config (nil on plain HTTP).
func (s *Server) screen(c *conn, overTLS *tls.Config) bool {
	ip, ok := s.access.allowedAddr(c.RemoteAddr())
	if ok || fromItself(c.RemoteAddr(), c.LocalAddr()) {
		// A connection from this machine itself is screened per request
		// (check): only its /healthz is served outside allowed_networks.
		return false
	}
	go s.refuseNetwork(c, ip.String(), overTLS)
	return true
}

func (s *Server) refuseNetwork(c *conn, ip string, overTLS *tls.Config) {
	c.lingerOnClose()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.opts.HeaderTimeout))
	var rw io.ReadWriter = c
	if overTLS != nil {
		tc := tls.Server(c, overTLS)
		if err := tc.Handshake(); err != nil {
			s.noteNetworkRefusal(ip, "", "", "TLS handshake: "+err.Error())
			return
		}
		defer func() { _ = tc.CloseWrite() }()
		rw = tc
	}
	method, path := readRequestLine(rw)
	msg := "client address " + ip + " is not in security.allowed_networks (" + s.access.netsMsg + ")"
	s.noteNetworkRefusal(ip, method, path, msg)
	body := appendRPCError(nil, nil, appliance.EFORBIDDEN, msg)
	resp := fmt.Appendf(nil, "HTTP/1.1 403 Forbidden\r\nServer: possync\r\nConnection: close\r\n"+
		"Access-Control-Allow-Origin: *\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	_, _ = rw.Write(append(resp, body...))
}

// noteNetworkRefusal logs (once a minute per address), counts and records
// a refusal by network.
func (s *Server) noteNetworkRefusal(ip, method, path, msg string) {
	if s.limits.allow(ruleNetwork, ip) {
		s.log.Warn("refused request", "rule", ruleNetwork, "value", ip, "remote", ip,
			"method", method, "path", path, "err", msg)
	}
	s.metrics.refuse(ruleNetwork)
	s.metrics.count(routeOther, outcomeRefused)
	s.eng.Warn(engine.WarnRefused, ip, msg)
}

// readHead reads a request head up to its blank line, headLimit bytes or
// the connection's deadline, and returns its method and path ("" when the
// request line did not arrive).
func readRequestLine(r io.Reader) (method, path string) {
	buf := make([]byte, 0, 512)
	tmp := make([]byte, 512)
	for len(buf) < headLimit && !bytes.Contains(buf, []byte("\r\n\r\n")) {
		n, err := r.Read(tmp[:min(len(tmp), headLimit-len(buf))])
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	line, _, ok := bytes.Cut(buf, []byte("\r\n"))
	if !ok {
		return "", ""
	}
	f := bytes.Fields(line)
	if len(f) < 2 {
		return "", ""
	}
	p, _, _ := bytes.Cut(f[1], []byte("?"))
	return string(f[0][:min(len(f[0]), 16)]), string(p[:min(len(p), 200)])
}
