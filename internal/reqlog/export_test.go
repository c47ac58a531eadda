package reqlog

import "time"

// SetWindowClock replaces the clock the window is measured with, before any
// request is logged.
func SetWindowClock(l *Log, now func() time.Duration) { l.clock.Store(&now) }
