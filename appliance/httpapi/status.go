package httpapi

import (
	"errors"
	"fmt"
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

func (s *Server) health(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	st := s.eng.Stats()
	status, code := "ok", fasthttp.StatusOK
	detail := ""
	if state, err := s.healthState(); err != nil {
		status, code, detail = state, fasthttp.StatusServiceUnavailable, err.Error()
	}
	_, released, evicted := s.watch.stats()
	ctx.SetStatusCode(code)
	b := []byte(`{"status":`)
	b = appendJSONString(b, status)
	b = append(b, `,"detail":`...)
	b = appendJSONString(b, detail)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, appliance.Version)
	b = append(b, fmt.Sprintf(`,"uptime_seconds":%d,"sessions":%d,"waiting_polls":%d,"last_bus_id":%d`,
		int(time.Since(s.started).Seconds()), st.Sessions, st.Bus.Waiting, st.Bus.Newest)...)
	b = append(b, fmt.Sprintf(`,"open_conns":%d,"refused_conns":%d,"idle_conns_closed":%d,"polls_released_client_gone":%d,"polls_answered_client_cap":%d}`,
		s.openConns(), s.refusedConns(), s.idleClosed(), released, evicted)...)
	ctx.SetBody(b)
}
