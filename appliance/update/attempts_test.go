package update_test

import (
	"os"
	"path/filepath"
	"testing"

	"possync/appliance/update"
)

// A power cut during AppendAttempt leaves a line without its newline; the
// next record (boot-check's "booting", "rolled-back") must not be glued to
// it and lost: onTrial and the status page read the newest record.
func TestAppendAfterCutLine(t *testing.T) {
	dir := t.TempDir()
	if err := update.AppendAttempt(dir, update.Attempt{Version: "1.0.0", Slot: "A", Result: update.ResultGood}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, update.AttemptsFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"time":"2026-12-01T10:00:00Z","version":"2.0.0","slot":"B","res`)
	f.Close()
	if err := update.AppendAttempt(dir, update.Attempt{Version: "2.0.0", Slot: "B", Result: update.ResultRolledBack}); err != nil {
		t.Fatal(err)
	}
	a, ok, err := update.LastAttempt(dir)
	if err != nil || !ok || a.Result != update.ResultRolledBack {
		t.Fatalf("LastAttempt = %+v, %v, %v; want the rolled-back record", a, ok, err)
	}
}
