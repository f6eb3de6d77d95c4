package config

import (
	"net"
	"strconv"
)

// TLS configures the built-in HTTPS listener, served next to plain HTTP.
type TLS struct {
	// Listen is host:port for HTTPS; "" turns HTTPS off.
	Listen string `toml:"listen"`
	// Auto makes possync keep a local CA and a server certificate for the
	// box's names and addresses in <storage.dir>/tls.
	Auto bool `toml:"auto"`
	// CertFile and KeyFile are an operator's own PEM key pair (instead of
	// Auto); CertFile may hold the chain after the leaf.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// DefaultTLS is HTTPS on :8443 with an automatic local CA.
func DefaultTLS() TLS { return TLS{Listen: ":8443", Auto: true} }

// validate returns the problems of the [tls] table; httpListen is
// http.listen, which HTTPS may not share.
func (t TLS) validate(httpListen string) Errors {
	var errs Errors
	bad := func(field string, v any, msg string) {
		errs = append(errs, &FieldError{Field: field, Value: v, Msg: msg})
	}
	if t.Listen == "" {
		return nil
	}
	if host, port, err := net.SplitHostPort(t.Listen); err != nil {
		bad("tls.listen", t.Listen, "must be host:port, e.g. \":8443\", or \"\" to turn HTTPS off")
	} else {
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("tls.listen", t.Listen, "port must be a number from 0 to 65535")
		} else if _, hport, err := net.SplitHostPort(httpListen); err == nil && hport == port && p != 0 {
			bad("tls.listen", t.Listen, "must not use the port of http.listen")
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			bad("tls.listen", t.Listen, "host must be empty, an IP address or localhost")
		}
	}
	switch {
	case t.Auto && (t.CertFile != "" || t.KeyFile != ""):
		bad("tls.auto", t.Auto, "must be false when tls.cert_file and tls.key_file are set (use one or the other)")
	case !t.Auto && t.CertFile == "" && t.KeyFile == "":
		bad("tls.listen", t.Listen, "needs tls.auto = true or tls.cert_file and tls.key_file (or set it to \"\" to turn HTTPS off)")
	case t.CertFile == "" && t.KeyFile != "":
		bad("tls.cert_file", t.CertFile, "must be set with tls.key_file")
	case t.CertFile != "" && t.KeyFile == "":
		bad("tls.key_file", t.KeyFile, "must be set with tls.cert_file")
	}
	return errs
}
