package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"possync/appliance"
)

// healthErr is healthState's reason alone (nil when ok).
func (s *Server) healthErr() error {
	_, err := s.healthState()
	return err
}

// healthState returns the server's state for /healthz and the status page:
// "ok"; "unhealthy" when the engine is stuck (opts.Health); "degraded"
// when the server runs but cannot do all of its job: accepting
// connections fails, or the store cannot take writes (opts.Degraded).
func (s *Server) healthState() (status string, err error) {
	if s.opts.Health != nil {
		if err := s.opts.Health(); err != nil {
			return "unhealthy", err
		}
	}
	if err := s.ln.acceptErr(); err != nil {
		return "degraded", err
	}
	if err := s.opts.Degraded(); err != nil {
		return "degraded", errors.New(appliance.ErrorMessage(err))
	}
	return "ok", nil
}

// sameHost reports whether the client runs on this machine: a loopback
// address, or the very address it connected to (a box whose http.listen
// names its LAN address).
func sameHost(ctx *fasthttp.RequestCtx) bool {
	remote := ctx.RemoteIP()
	if remote.IsLoopback() {
		return true
	}
	local, ok := ctx.LocalAddr().(*net.TCPAddr)
	return ok && local.IP.Equal(remote)
}

// writeProbeTimeout bounds the write of GET /healthz?write=1.
const writeProbeTimeout = 10 * time.Second

func (s *Server) health(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	probe := string(ctx.QueryArgs().Peek("write")) == "1"
	if probe && !sameHost(ctx) {
		s.writeError(ctx, nil, appliance.Errorf(appliance.EINVALID, "the write probe (/healthz?write=1) is served to loopback clients only (possync boot-check on the box), not to %s", ctx.RemoteIP()))
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		return
	}
	st := s.eng.Stats()
	status, code := "ok", fasthttp.StatusOK
	detail := ""
	committed := false
	if state, err := s.healthState(); err != nil {
		status, code, detail = state, fasthttp.StatusServiceUnavailable, err.Error()
	} else if probe {
		// A write of the store's own, with the checks and sync of an
		// order's: boot-check marks a new release good only after it.
		pctx, cancel := context.WithTimeout(context.Background(), writeProbeTimeout)
		err := s.eng.ProbeWrite(pctx)
		cancel()
		if err != nil {
			status, code, detail = "degraded", fasthttp.StatusServiceUnavailable, "write probe: "+appliance.ErrorMessage(err)
		} else {
			committed = true
		}
	}
	_, released, evicted := s.watch.stats()
	ctx.SetStatusCode(code)
	b := []byte(`{"status":`)
	b = appendJSONString(b, status)
	b = append(b, `,"detail":`...)
	b = appendJSONString(b, detail)
	b = append(b, `,"write_committed":`...)
	b = strconv.AppendBool(b, committed)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, appliance.Version)
	b = append(b, fmt.Sprintf(`,"uptime_seconds":%d,"sessions":%d,"waiting_polls":%d,"last_bus_id":%d`,
		int(time.Since(s.started).Seconds()), st.Sessions, st.Bus.Waiting, st.Bus.Newest)...)
	b = append(b, fmt.Sprintf(`,"open_conns":%d,"refused_conns":%d,"idle_conns_closed":%d,"polls_released_client_gone":%d,"polls_answered_client_cap":%d}`,
		s.openConns(), s.refusedConns(), s.idleClosed(), released, evicted)...)
	ctx.SetBody(b)
}
