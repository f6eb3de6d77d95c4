package httpapi

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"possync/appliance"
)

// pathBackup serves an online, consistent backup of the store (GET), for
// `possync backup`. Only loopback clients may fetch it: the backup holds
// every open order of the shop. (An admin allow-list can widen this once
// security.allowed_networks exists.)
const pathBackup = "/possync/backup"

// backup answers GET pathBackup with the store's backup stream. The
// stream is built in memory first so that a failure mid-way is an error
// answer, never a truncated 200; Content-Length lets the client check it
// got it all. A shop's store is a few MiB.
func (s *Server) backup(ctx *fasthttp.RequestCtx) {
	switch {
	case s.opts.Backup == nil:
		s.writeError(ctx, nil, appliance.Errorf(appliance.ENOTFOUND, "this server has no store to back up"))
		return
	case !ctx.RemoteIP().IsLoopback():
		s.writeError(ctx, nil, appliance.Errorf(appliance.EINVALID, "backups are served to loopback clients only (run possync backup on the box), not to %s", ctx.RemoteIP()))
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		return
	case !ctx.IsGet():
		s.writeError(ctx, nil, appliance.Errorf(appliance.EINVALID, "%s takes GET", pathBackup))
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	var buf bytes.Buffer
	if err := s.opts.Backup(&buf); err != nil {
		s.log.Error("backup", "err", err)
		s.writeError(ctx, nil, appliance.Errorf(appliance.EUNAVAILABLE, "backup failed: %v", err))
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return
	}
	s.log.Info("backup served", "bytes", buf.Len(), "remote", ctx.RemoteIP().String())
	ctx.SetContentType("application/octet-stream")
	ctx.SetBody(buf.Bytes())
}
