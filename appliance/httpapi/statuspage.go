package httpapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"strconv"

	"github.com/valyala/fasthttp"
)

// The status page is one server-rendered HTML document with its CSS and
// script inline (no external assets, no build step); the script only
// refreshes it from /status.json.
var (
	//go:embed web/status.html
	statusHTML string
	//go:embed web/status.css
	statusCSS string
	//go:embed web/status.js
	statusJS string

	statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
		"age":      fmtAge,
		"ago":      fmtAgo,
		"bytes":    fmtBytes,
		"state":    fmtState,
		"lastPoll": fmtLastPoll,
		"glance":   fmtGlance,
		"slot":     fmtSlot,
		"attempt":  fmtAttempt,
	}).Parse(statusHTML))
)

type pageURL struct {
	URL, Kind string
	QR        template.HTML
}

type pageData struct {
	Doc  statusDoc
	URLs []pageURL
	CSS  template.CSS
	JS   template.JS
}

func (s *Server) statusPage(ctx *fasthttp.RequestCtx) {
	doc := s.buildStatus(pageOrigin(ctx))
	data := pageData{Doc: doc, CSS: template.CSS(statusCSS), JS: template.JS(statusJS)} //nolint:gosec // embedded constants
	for _, u := range doc.URLs {
		data.URLs = append(data.URLs, pageURL{URL: u.URL, Kind: u.Kind, QR: s.qr.svg(u.URL)})
	}
	var b bytes.Buffer
	if err := statusTmpl.Execute(&b, data); err != nil {
		s.writeError(ctx, nil, fmt.Errorf("render status page: %w", err))
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(b.Bytes())
}

func (s *Server) statusJSON(ctx *fasthttp.RequestCtx) {
	b, err := json.Marshal(s.buildStatus(pageOrigin(ctx)))
	if err != nil {
		s.writeError(ctx, nil, fmt.Errorf("encode status: %w", err))
		return
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(b)
}

// fmtAge renders an age in seconds for people: "12 s", "3 min 5 s",
// "42 min", "2 h 5 min", "3 d 4 h". status.js has the same function.
func fmtAge(s int64) string {
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + " s"
	case s < 600:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	case s < 3600:
		return fmt.Sprintf("%d min", s/60)
	case s < 86400:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%d d %d h", s/86400, s%86400/3600)
}

func fmtAgo(s *int64) string {
	if s == nil {
		return "never since start"
	}
	return fmtAge(*s) + " ago"
}

func fmtState(t terminalDoc) string {
	switch {
	case t.Online:
		return "online"
	case t.LastPollAgeSeconds == nil:
		return "offline (no poll since the box started)"
	}
	return "offline since " + fmtAge(*t.LastPollAgeSeconds) + " ago"
}

func fmtBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func fmtLastPoll(t terminalDoc) string {
	if t.PollsWaiting > 0 {
		return "waiting now"
	}
	return fmtAgo(t.LastPollAgeSeconds)
}

// fmtGlance is the one line a manager reads first.
func fmtGlance(d statusDoc) string {
	var on, all int
	var open int64
	for _, m := range d.MultiSessions {
		on += m.TerminalsOnline
		all += len(m.Terminals)
		open += m.OpenOrders
	}
	return fmt.Sprintf("%d of %d %s online · %d open %s", on, all, plural(all, "till"), open, plural(int(open), "order"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
