package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/config"
	"possync/discovery"
)

func TestDiscoverFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"zero timeout", []string{"-timeout", "0s"}, "must be positive"},
		{"extra argument", []string{"now"}, "unexpected argument"},
		{"unknown flag", []string{"-wait", "1s"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			err := runDiscover(context.Background(), tt.args, &out, &errw)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("runDiscover(%q) = %v, want exit code 2", tt.args, err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("runDiscover(%q) = %q, want it to mention %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestDiscoverJSONRow(t *testing.T) {
	box := discovery.Box{
		Instance: "possync-4bf67a", Host: "possync.local", Port: 8079,
		Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.5")},
		TXT:   discovery.TXT{Version: "1.2.0", ID: "4bf67aa85ae068d0", Path: "/", API: discovery.API, Scheme: "http"},
	}
	want := boxJSON{
		Instance: "possync-4bf67a", URLs: []string{"http://192.168.1.5:8079", "http://possync.local:8079"},
		Host: "possync.local", Port: 8079, Addresses: []string{"192.168.1.5"},
		Version: "1.2.0", ID: "4bf67aa85ae068d0", API: discovery.API, Scheme: "http", Path: "/",
	}
	if diff := cmp.Diff(want, toJSON(box)); diff != "" {
		t.Errorf("toJSON (-want +got):\n%s", diff)
	}
}

func TestStartAdvertiserDisabled(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := config.Default().Discovery
	cfg.Enabled = false
	start := time.Now()
	stop, _ := startAdvertiser(context.Background(), cfg, 8079, t.TempDir(), logger)
	stop()
	stop()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("disabled advertiser took %v", d)
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "discovery is off") {
		t.Errorf("log = %q, want one info line saying discovery is off", logs.String())
	}
}
