package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"possync/appliance"
	"possync/appliance/engine"
	"possync/appliance/update"
)

// pathAdminUpdate takes an update bundle (POST, the raw bundle as the
// body) from `possync update`; GET checks the token without a body.
const pathAdminUpdate = "/possync/admin/update"

// Updater receives an uploaded bundle (update.Receiver).
type Updater interface {
	// Fits says whether a bundle of size bytes would be taken now.
	Fits(size int64) error
	Receive(ctx context.Context, r io.Reader, size int64) (update.Received, error)
}

// Admin configures the admin endpoint. It is off (404) while Token is
// empty or Updates is nil.
type Admin struct {
	Token   []byte  // the bearer token
	Updates Updater // where bundles go
	// MaxBundleBytes bounds an upload (default 512 MiB).
	MaxBundleBytes int64
	// UploadTimeout is the time allowed to receive one bundle, instead of
	// http.read_timeout (default 30 min: 512 MiB at 300 KB/s).
	UploadTimeout time.Duration
}

// ruleToken is the refusal rule of a request to the admin endpoint
// without the right bearer token.
const ruleToken = "admin_token"

func (a *Admin) on() bool { return a != nil && len(a.Token) > 0 && a.Updates != nil }

// adminBodyConfig lets an upload to the admin endpoint stream up to
// MaxBundleBytes for up to UploadTimeout; every other route keeps
// http.max_body_bytes and http.read_timeout.
func (s *Server) adminBodyConfig(h *fasthttp.RequestHeader) (fasthttp.RequestConfig, bool) {
	if !s.opts.Admin.on() {
		return fasthttp.RequestConfig{}, false
	}
	uri := h.RequestURI()
	if i := strings.IndexByte(string(uri), '?'); i >= 0 {
		uri = uri[:i]
	}
	if string(uri) != pathAdminUpdate {
		return fasthttp.RequestConfig{}, false
	}
	return fasthttp.RequestConfig{ReadTimeout: s.opts.Admin.UploadTimeout, MaxRequestBodySize: int(s.opts.Admin.MaxBundleBytes) + 1<<20}, true // the Receiver says "too large"
}

// admin serves pathAdminUpdate. Network and origin rules have passed
// (check). Order: endpoint on, token, method; only then is the body read.
func (s *Server) admin(ctx *fasthttp.RequestCtx) {
	a := s.opts.Admin
	if !a.on() {
		s.writeError(ctx, nil, appliance.Errorf(appliance.ENOTFOUND, "the admin endpoint is off on this box: set admin.token or admin.token_file in its configuration"))
		return
	}
	if !s.tokenOK(ctx) {
		return
	}
	switch {
	case ctx.IsGet():
		// ?size=N: would a bundle of N bytes be taken (size, space,
		// another upload)? The client asks before it sends hundreds of MiB.
		if size, err := ctx.QueryArgs().GetUint("size"); err == nil {
			if err := a.Updates.Fits(int64(size)); err != nil {
				s.adminRefusal(ctx, err, int64(size))
				return
			}
		}
		adminAnswer(ctx, fasthttp.StatusOK, map[string]any{"status": "ready", "running": appliance.Version,
			"max_bundle_bytes": a.MaxBundleBytes})
		return
	case !ctx.IsPost():
		ctx.Response.Header.Set("Allow", "GET, POST")
		adminAnswer(ctx, fasthttp.StatusMethodNotAllowed, map[string]any{"status": "error",
			"error": fmt.Sprintf("%s takes POST with the bundle as the body (or GET to check the token), not %s", pathAdminUpdate, ctx.Method())})
		return
	}
	size := int64(ctx.Request.Header.ContentLength())
	if size < 0 {
		size = -1 // chunked
	}
	body := ctx.RequestBodyStream()
	if body == nil { // not streamed (a test server without StreamRequestBody)
		body = strings.NewReader(string(ctx.Request.Body()))
	}
	host := remoteHost(ctx.RemoteAddr())
	start := time.Now()
	got, err := a.Updates.Receive(context.Background(), body, size)
	if err != nil {
		s.adminRefusal(ctx, err, size)
		return
	}
	s.log.Info("update bundle accepted", "remote", host, "version", got.Version, "bytes", got.Bytes, "seconds", time.Since(start).Seconds())
	adminAnswer(ctx, fasthttp.StatusAccepted, map[string]any{"status": "accepted", "version": got.Version, "compatible": got.Compatible,
		"bytes": got.Bytes, "file": got.File, "running": appliance.Version, "next": got.Next})
}

// adminRefusal answers an upload (or a GET ?size=) the Updater refused.
func (s *Server) adminRefusal(ctx *fasthttp.RequestCtx, err error, size int64) {
	var re *update.ReceiveError
	kind := update.KindInternal
	if errors.As(err, &re) {
		kind = re.Kind
	}
	status := map[string]int{update.KindTooLarge: fasthttp.StatusRequestEntityTooLarge, update.KindDiskFull: fasthttp.StatusInsufficientStorage,
		update.KindBusy: fasthttp.StatusConflict, update.KindShort: fasthttp.StatusBadRequest, update.KindRefused: fasthttp.StatusUnprocessableEntity,
		update.KindNoSlots: fasthttp.StatusNotImplemented,
	}[kind]
	if status == 0 {
		status = fasthttp.StatusInternalServerError
	}
	host := remoteHost(ctx.RemoteAddr())
	s.log.Warn("update upload refused", "remote", host, "kind", kind, "bytes", size, "err", err)
	s.eng.Warn(engine.WarnRefused, host, "update upload refused: "+err.Error())
	if kind != update.KindRefused && ctx.IsPost() {
		// The rest of the body may be unread (only a refused bundle was
		// read to its end): close, after draining (bounded) so the
		// client sees this answer.
		ctx.SetConnectionClose()
		if c, ok := ctx.Conn().(*conn); ok {
			c.lingerOnClose()
		}
	}
	adminAnswer(ctx, status, map[string]any{"status": "refused", "kind": kind, "error": err.Error()})
}

// tokenOK checks Authorization: Bearer <token> in constant time; on a
// mismatch it answers 401, closes the connection without reading the
// body beyond a bounded drain, and logs at most once a minute per address.
func (s *Server) tokenOK(ctx *fasthttp.RequestCtx) bool {
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	// Digests of equal length: ConstantTimeCompare returns at once on a
	// length mismatch, which would tell the token's length.
	if given, ok := bearer(string(auth)); ok && subtle.ConstantTimeCompare(sha256Of([]byte(given)), sha256Of(s.opts.Admin.Token)) == 1 {
		return true
	}
	msg := "wrong or missing admin token: send Authorization: Bearer <admin.token>"
	if len(auth) == 0 {
		msg = "admin token missing: send Authorization: Bearer <admin.token>"
	}
	host := remoteHost(ctx.RemoteAddr())
	if s.limits.allow(ruleToken, host) {
		s.log.Warn("refused request", "rule", ruleToken, "remote", host, "method", string(ctx.Method()), "path", string(ctx.Path()), "err", msg)
	}
	ctx.SetUserValue(ruleKey, ruleToken)
	s.refused(ctx, ruleToken, msg)
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="possync admin"`)
	adminAnswer(ctx, fasthttp.StatusUnauthorized, map[string]any{"status": "refused", "kind": "token", "error": msg})
	ctx.SetConnectionClose()
	if c, ok := ctx.Conn().(*conn); ok {
		c.lingerOnClose()
	}
	return false
}

// bearer returns the credentials of an Authorization header with the
// Bearer scheme, which is case-insensitive (RFC 9110 §11.1), followed by
// spaces or tabs.
func bearer(auth string) (string, bool) {
	i := strings.IndexAny(auth, " \t")
	if i < 0 || !strings.EqualFold(auth[:i], "Bearer") {
		return "", false
	}
	tok := strings.Trim(auth[i:], " \t")
	return tok, tok != ""
}

func adminAnswer(ctx *fasthttp.RequestCtx, status int, v map[string]any) {
	b, _ := json.Marshal(v)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(append(b, '\n'))
}

func sha256Of(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}
