package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"possync/appliance/engine"
	"possync/storage/memstore"
)

// The backup route answers loopback clients only: a LAN address gets 403
// and the backup function is never called.
func TestBackupLoopbackOnly(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	e := engine.New(memstore.New(), engine.Options{Logger: quiet, PurgeInterval: -1})
	if err := e.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	calls := 0
	s := New(e, Options{Logger: quiet, Backup: func(w io.Writer) error { calls++; _, err := io.WriteString(w, "BACKUP"); return err }})
	get := func(ip net.IP) *fasthttp.RequestCtx {
		var req fasthttp.Request
		req.SetRequestURI(pathBackup)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: ip, Port: 40000}, nil)
		s.handle(&ctx)
		return &ctx
	}
	if ctx := get(net.IPv4(192, 168, 1, 20)); ctx.Response.StatusCode() != 403 || calls != 0 ||
		!strings.Contains(string(ctx.Response.Body()), "loopback clients only") {
		t.Errorf("backup from 192.168.1.20: %d %s (backup called %d times), want 403 naming the rule", ctx.Response.StatusCode(), ctx.Response.Body(), calls)
	}
	if ctx := get(net.IPv6loopback); ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != "BACKUP" {
		t.Errorf("backup from ::1: %d %q, want 200 and the backup", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}
