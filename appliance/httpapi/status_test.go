package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"possync/appliance"
	"possync/appliance/apptest"
)

// The status page and /healthz are what shop staff and the box's checks
// see; the Private Network Access opt-in is what a public Odoo origin needs
// to reach a LAN box (README "HTTPS").
func TestStatusPageHealthAndPrivateNetworkPreflight(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	openPOS(t, srv, cfg("shop", 1, 7, 2))

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"running", appliance.Version, "Sync Server", "<td>shop</td><td>7</td>"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("status page lacks %q:\n%.2000s", want, body)
		}
	}

	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status   string `json:"status"`
		Sessions int    `json:"sessions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || h.Status != "ok" || h.Sessions != 1 {
		t.Errorf("GET /healthz = %d %+v %v, want 200 ok with 1 session", resp.StatusCode, h, err)
	}

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+apptest.RouteUpdate, nil)
	req.Header.Set("Origin", "https://odoo.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Private-Network", "true")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Errorf("private-network preflight = %d, Allow-Private-Network %q; want 204 and true",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Private-Network"))
	}
}
