package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRestoreProgressBarDrawsOneLinePerPhase: the bar overwrites its line
// (\r) while a phase runs, starts a new line when the phase changes, shows
// the percentage, bytes of the total and an ETA, and ends with a newline.
func TestRestoreProgressBarDrawsOneLinePerPhase(t *testing.T) {
	var out bytes.Buffer
	p := &progressBar{w: &out, start: time.Now()}
	const total = 3 << 30
	p.update("download", 0, total)
	p.update("download", total/2, total)
	p.update("download", total, total)
	p.update("restore", total/4, total)
	p.done()
	s := out.String()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("want two lines (one per phase), got %q", s)
	}
	frames := strings.Split(lines[0], "\r")[1:]
	if len(frames) != 3 || !strings.Contains(frames[1], " 50% ") || !strings.Contains(frames[1], "1.5 GB / 3.0 GB") ||
		!strings.Contains(frames[2], "100% [==============================]") || !strings.Contains(frames[2], "ETA") {
		t.Fatalf("download frames: %q", frames)
	}
	if !strings.Contains(lines[1], "restore   25% [=======") {
		t.Fatalf("restore line: %q", lines[1])
	}
	var none bytes.Buffer
	(&progressBar{w: &none}).done()
	if none.Len() != 0 {
		t.Errorf("a bar never drawn printed %q", none.String())
	}
}
