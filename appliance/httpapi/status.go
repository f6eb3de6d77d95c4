package httpapi

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"possync/appliance"
)

func (s *Server) healthErr() error {
	if s.opts.Health == nil {
		return nil
	}
	return s.opts.Health()
}

func (s *Server) health(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	st := s.eng.Stats()
	status, code := "ok", fasthttp.StatusOK
	detail := ""
	if err := s.healthErr(); err != nil {
		status, code, detail = "unhealthy", fasthttp.StatusServiceUnavailable, err.Error()
	}
	ctx.SetStatusCode(code)
	b := []byte(`{"status":`)
	b = appendJSONString(b, status)
	b = append(b, `,"detail":`...)
	b = appendJSONString(b, detail)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, appliance.Version)
	b = append(b, fmt.Sprintf(`,"uptime_seconds":%d,"sessions":%d,"waiting_polls":%d,"last_bus_id":%d}`,
		int(time.Since(s.started).Seconds()), st.Sessions, st.Bus.Waiting, st.Bus.Newest)...)
	ctx.SetBody(b)
}
