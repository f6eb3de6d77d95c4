package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkWaitingPolls1000 starts the real server in a child process,
// parks 1000 long-polls on it (each on its own connection, as 1000 POS
// terminals would) and reports the process's resident memory before and
// with them. Run: go test -run X -bench WaitingPolls -benchtime 1x ./cmd/possync
func BenchmarkWaitingPolls1000(b *testing.B) {
	const polls = 1000
	for b.Loop() {
		// One address parks every poll here: lift the per-client cap.
		c := startChildWith(b, childOptions{dir: b.TempDir(), config: "[security]\nmax_polls_per_client = 0\n"})
		pid := c.cmd.Process.Pid
		before := rssKiB(b, pid)
		addr := strings.TrimPrefix(c.url, "http://")
		conns := make([]net.Conn, 0, polls)
		for i := 0; i < polls; i++ {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatalf("dial %d: %v", i, err)
			}
			conns = append(conns, conn)
			body := fmt.Sprintf(`{"jsonrpc":"2.0","method":"call","id":%d,"params":{"channels":["[\"shop\",\"pos.multi_session\",\"%d\"]","[\"shop\",\"pos.longpolling\",\"%d\"]"],"last":0,"options":{"bus_inactivity":100}}}`, i, i, i)
			fmt.Fprintf(conn, "POST /longpolling/poll HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
		}
		deadline := time.Now().Add(30 * time.Second)
		for waiting(b, c.url) < polls {
			if time.Now().After(deadline) {
				b.Fatalf("only %d polls waiting after 30s", waiting(b, c.url))
			}
			time.Sleep(50 * time.Millisecond)
		}
		with := rssKiB(b, pid)
		// Wake one poll to show the others keep waiting.
		resp, err := http.Post(c.url+"/pos_longpolling/update", "application/json",
			strings.NewReader(`{"jsonrpc":"2.0","method":"call","id":1,"params":{"message":"PING","pos_id":7,"db_name":"shop"}}`))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		line, err := bufio.NewReader(conns[7]).ReadString('\n')
		if err != nil || !strings.Contains(line, "200") {
			b.Fatalf("woken poll answered %q, %v", line, err)
		}
		b.ReportMetric(float64(before)/1024, "MiB-rss-idle")
		b.ReportMetric(float64(with)/1024, "MiB-rss-1000-polls")
		b.ReportMetric(float64(with-before)/polls, "KiB/poll")
		for _, conn := range conns {
			conn.Close()
		}
		c.kill9(b)
	}
}

func waiting(tb testing.TB, url string) int {
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Waiting int `json:"waiting_polls"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	return h.Waiting
}

func rssKiB(tb testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}
