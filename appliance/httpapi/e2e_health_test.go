package httpapi_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"possync/appliance/apptest"
)

// While the data file system is short of the store's free-space reserve,
// every write is refused: /healthz says degraded with the reason (503) and
// so does the status page; freeing space makes it ok again (issue 13).
func TestHealthzDataFileSystemFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the data file system (run the tests as root, e.g. sudo build/test.sh)")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	srv := newServer(t, apptest.Options{Dir: filepath.Join(mnt, "data")})
	if h, code, err := getHealth(t, srv.URL); err != nil || code != 200 || h.Status != "ok" {
		t.Fatalf("/healthz before = %d %+v %v, want 200 ok", code, h, err)
	}

	// Leave 16 MiB free: below the reserve of an eighth of 256 MiB.
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*st.Bsize-16<<20)
	f.Close()
	if err != nil {
		t.Fatalf("fallocate: %v", err)
	}

	h, code, err := getHealth(t, srv.URL)
	if err != nil || code != 503 || h.Status != "degraded" || !strings.HasPrefix(h.Detail, "data file system full (") ||
		!strings.Contains(h.Detail, "free of 256 MiB") {
		t.Errorf("/healthz on a full disk = %d %+v %v, want 503 degraded: data file system full (… free of 256 MiB …)", code, h, err)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `<span class="word">Degraded</span><span class="reason">: data file system full`) {
		t.Errorf("status page on a full disk lacks \"Degraded: data file system full\":\n%.1500s", page)
	}
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	if _, err := a.SyncAll(true, ""); err != nil {
		t.Errorf("sync_all on a full disk = %v, want the stored orders (answered without a durable write)", err)
	}
	if _, err := a.SyncAll(false, ""); err == nil || !containsFold(err.Error(), "StoreUnavailable") {
		t.Errorf("pushed sync_all on a full disk = %v, want a StoreUnavailable error (the push needs a durable write)", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if h, code, err := getHealth(t, srv.URL); err != nil || code != 200 || h.Status != "ok" {
		t.Errorf("/healthz after freeing space = %d %+v %v, want 200 ok", code, h, err)
	}
}
