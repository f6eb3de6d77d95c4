package httpapi

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"possync/appliance"
)

var statusTmpl = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>possync — Sync Server</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}code{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd}
.ok{color:#176b2c;font-weight:bold}.bad{color:#a11;font-weight:bold}</style></head><body>
<h1>possync Sync Server <span class="{{if .Healthy}}ok{{else}}bad{{end}}">{{if .Healthy}}running{{else}}unhealthy: {{.HealthErr}}{{end}}</span></h1>
<p>Point Odoo at this box: <em>Point of Sale → Configuration → Multi-session → Sync Server</em> =
<code>{{.URL}}</code></p>
<table>
<tr><th>Version</th><td>{{.Version}}</td></tr>
<tr><th>Up since</th><td>{{.Started}} ({{.Uptime}})</td></tr>
{{range .Info}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}
<tr><th>Multi-sessions</th><td>{{.Stats.Sessions}}</td></tr>
<tr><th>Open orders</th><td>{{.Stats.DraftOrders}} (of {{.Stats.Orders}} kept)</td></tr>
<tr><th>Updates accepted</th><td>{{.Stats.Accepted}} · revision conflicts {{.Stats.RevisionErrors}} · duplicates {{.Stats.Duplicates}}</td></tr>
<tr><th>Terminals polling now</th><td>{{.Stats.Bus.Waiting}}</td></tr>
<tr><th>Bus</th><td>last id {{.Stats.Bus.Newest}} · {{.Stats.Bus.Retained}} notifications kept</td></tr>
<tr><th>Storage errors</th><td>{{.Stats.StoreErrors}}</td></tr>
</table>
{{if .Terminals}}<h2>Terminals</h2><table><tr><th>Database</th><th>POS id</th><th>Last seen</th></tr>
{{range .Terminals}}<tr><td>{{.DB}}</td><td>{{.ID}}</td><td>{{.Ago}} ago</td></tr>{{end}}</table>{{end}}
</body></html>
`))

type kv struct{ K, V string }

type terminal struct {
	DB  string
	ID  int64
	Ago string
}

func (s *Server) statusPage(ctx *fasthttp.RequestCtx) {
	st := s.eng.Stats()
	healthErr := s.healthErr()
	host := string(ctx.Host())
	if host == "" {
		host = ctx.LocalAddr().String()
	}
	var info []kv
	if s.opts.Info != nil {
		for k, v := range s.opts.Info() {
			info = append(info, kv{k, v})
		}
		sort.Slice(info, func(i, j int) bool { return info[i].K < info[j].K })
	}
	var terms []terminal
	act := s.eng.Status(0)
	for _, ss := range act.Sessions {
		for _, t := range ss.Terminals {
			if t.LastUpdate >= 0 {
				terms = append(terms, terminal{DB: ss.Key.DB, ID: t.POSID, Ago: t.LastUpdate.Round(time.Second).String()})
			}
		}
	}
	sort.Slice(terms, func(i, j int) bool {
		if terms[i].DB != terms[j].DB {
			return terms[i].DB < terms[j].DB
		}
		return terms[i].ID < terms[j].ID
	})
	data := map[string]any{
		"Healthy":   healthErr == nil,
		"HealthErr": fmt.Sprint(healthErr),
		"URL":       "http://" + host,
		"Version":   appliance.VersionString(),
		"Started":   s.started.Format(time.RFC3339),
		"Uptime":    time.Since(s.started).Round(time.Second).String(),
		"Info":      info,
		"Stats":     st,
		"Terminals": terms,
	}
	var b strings.Builder
	if err := statusTmpl.Execute(&b, data); err != nil {
		s.writeError(ctx, nil, fmt.Errorf("render status page: %w", err))
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBodyString(b.String())
}

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
