package httpapi_test

import (
	"net/http"
	"testing"
	"time"
)

// The auth scheme is case-insensitive (RFC 9110 §11.1): "bearer" and
// "BEARER" are the same as "Bearer", and any run of spaces may follow it.
// Other schemes, a wrong token and a bare scheme are refused.
func TestAdminTokenSchemeCase(t *testing.T) {
	srv, _ := adminServer(t, t.TempDir(), 8<<20, nil)
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"Bearer " + adminToken, 200},
		{"bearer " + adminToken, 200},
		{"BEARER " + adminToken, 200},
		{"Bearer   " + adminToken, 200},
		{"Bearer\t" + adminToken, 200},
		{"Basic " + adminToken, 401},
		{"Bearer " + adminToken + "x", 401},
		{"Bearer" + adminToken, 401},
		{"Bearer", 401},
		{"Bearer ", 401},
		{adminToken, 401},
		{"", 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/possync/admin/update", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
}
