package httpapi

import (
	"crypto/tls"

	"github.com/valyala/fasthttp"
)

// pathCACert serves the local CA's certificate, for tills to install.
const pathCACert = "/ca.crt"

// tlsConfig returns the config HTTPS is served with: c's certificates,
// HTTP/1.1 only (fasthttp speaks no HTTP/2), TLS 1.2 at least.
func tlsConfig(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.NextProtos = []string{"http/1.1"}
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// caCert answers GET /ca.crt with the local CA's certificate (never its
// key), as application/x-x509-ca-cert so phones offer to install it.
func (s *Server) caCert(ctx *fasthttp.RequestCtx) {
	var pem []byte
	if s.opts.CACert != nil {
		pem = s.opts.CACert()
	}
	if len(pem) == 0 {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("no local CA: HTTPS is off or uses your own certificate (tls.cert_file)\n")
		return
	}
	ctx.SetContentType("application/x-x509-ca-cert")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="possync-ca.crt"`)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(pem)
}

// openConns is the connections open now, HTTP and HTTPS.
func (s *Server) openConns() int64 {
	n := s.ln.open.Load()
	if s.tlsLn != nil {
		n += s.tlsLn.open.Load()
	}
	return n
}

// refusedConns counts connections refused at the limit, HTTP and HTTPS.
func (s *Server) refusedConns() uint64 {
	n := s.ln.refused.Load()
	if s.tlsLn != nil {
		n += s.tlsLn.refused.Load()
	}
	return n
}

// idleClosed counts idle connections closed to make room, HTTP and HTTPS.
func (s *Server) idleClosed() uint64 {
	n := s.ln.idle.evicted.Load()
	if s.tlsLn != nil {
		n += s.tlsLn.idle.evicted.Load()
	}
	return n
}

// caCertPath is "/ca.crt" when the box has a local CA to hand out.
func (s *Server) caCertPath() string {
	if s.opts.CACert == nil || len(s.opts.CACert()) == 0 {
		return ""
	}
	return pathCACert
}

// pageOrigin is the scheme and host a request reached the box with, e.g.
// "https://192.168.1.50:8443", or "" without a Host header.
func pageOrigin(ctx *fasthttp.RequestCtx) string {
	host := string(ctx.Host())
	switch {
	case host == "":
		return ""
	case ctx.IsTLS():
		return "https://" + host
	}
	return "http://" + host
}
