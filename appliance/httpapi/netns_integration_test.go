//go:build integration && linux

package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"possync/appliance/apptest"
)

// TestNetnsAccess runs the server in a network namespace of its own with
// two neighbours on veth links: a client at the public address
// 198.51.100.2 (its own namespace) is refused 403 before its body is read,
// a client at the RFC 1918 address 192.168.77.2 is served. Default
// security.allowed_networks; needs root (ip netns).
func TestNetnsAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	id := os.Getpid() % 100000
	srvNS, pubNS, lanNS := fmt.Sprintf("aclsrv%d", id), fmt.Sprintf("aclpub%d", id), fmt.Sprintf("acllan%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{srvNS, pubNS, lanNS} {
		run("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run("-n", ns, "link", "set", "lo", "up")
	}
	link := func(peer, srvIP, peerIP string, n int) {
		a, b := fmt.Sprintf("acls%d_%d", id, n), fmt.Sprintf("aclc%d_%d", id, n)
		run("link", "add", a, "netns", srvNS, "type", "veth", "peer", "name", b, "netns", peer)
		run("-n", srvNS, "addr", "add", srvIP+"/24", "dev", a)
		run("-n", peer, "addr", "add", peerIP+"/24", "dev", b)
		run("-n", srvNS, "link", "set", a, "up")
		run("-n", peer, "link", "set", b, "up")
	}
	link(pubNS, "198.51.100.1", "198.51.100.2", 1)
	link(lanNS, "192.168.77.1", "192.168.77.2", 2)

	var srv *apptest.Server
	inNetns(t, srvNS, func() { srv = newServer(t, apptest.Options{Addr: "0.0.0.0:0"}) })
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	client := func(ns string) *http.Client {
		return &http.Client{Timeout: wait, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				inNetns(t, ns, func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) })
				return c, err
			}}}
	}
	post := func(c *http.Client, url, body string) (int, string) {
		resp, err := c.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(t, resp))
		return resp.StatusCode, b.String()
	}
	body := `{"jsonrpc":"2.0","method":"call","id":5,"params":{"multi_session_id":1,"dbname":"shop","user_ID":2,"message":{"action":"update_order","data":{"uid":"00101-001-0001","revision_ID":1,"sequence_number":1,"nonce":"n1","run_ID":1,"pos_id":1,"lines":[]},"session_id":101,"login_number":1}}}`

	status, got := post(client(pubNS), "http://198.51.100.1:"+port+"/pos_multi_session_sync/update", body)
	t.Logf("from 198.51.100.2: %d %s", status, got)
	if status != http.StatusForbidden || !strings.Contains(got, "198.51.100.2") || !strings.Contains(got, "security.allowed_networks") {
		t.Errorf("update_order from 198.51.100.2 = %d %s, want 403 naming the address and security.allowed_networks", status, got)
	}
	status, got = post(client(pubNS), "http://198.51.100.1:"+port+"/status.json", "")
	if status != http.StatusForbidden || strings.Contains(got, "open_orders") {
		t.Errorf("/status.json from 198.51.100.2 = %d %s, want 403 without status", status, got)
	}
	status, got = post(client(lanNS), "http://192.168.77.1:"+port+"/pos_multi_session_sync/update", body)
	t.Logf("from 192.168.77.2: %d %s", status, got)
	if status != http.StatusOK || !strings.Contains(got, `"update_revision_ID"`) {
		t.Errorf("update_order from 192.168.77.2 = %d %s, want 200 update_revision_ID", status, got)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
