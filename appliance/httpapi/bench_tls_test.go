package httpapi_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"possync/appliance/apptest"
)

// BenchmarkNewConnHTTP and BenchmarkNewConnHTTPS: one request on a new
// connection (no keep-alive, no TLS session resumption): TCP connect, for
// HTTPS a full TLS 1.3 handshake (ECDSA P-256), GET /healthz. Client and
// server run in this process, so the time counts both sides.
func BenchmarkNewConnHTTP(b *testing.B) { benchNewConn(b, false) }

// BenchmarkNewConnHTTPS: see BenchmarkNewConnHTTP.
func BenchmarkNewConnHTTPS(b *testing.B) { benchNewConn(b, true) }

func benchNewConn(b *testing.B, overTLS bool) {
	srv := newServer(b, apptest.Options{TLS: overTLS})
	url := srv.URL
	tr := &http.Transport{DisableKeepAlives: true}
	if overTLS {
		url = srv.TLSURL
		tr.TLSClientConfig = &tls.Config{RootCAs: srv.RootCAs} // no ClientSessionCache: full handshakes
	}
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
