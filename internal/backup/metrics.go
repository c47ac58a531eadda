package backup

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// current is the Service the gauges read (the one the process opened last).
var current atomic.Pointer[Service]

// The gauges read the runs table at scrape time (cached briefly), so every
// replica reports the same backup state, not only the one that ran it.
var (
	runsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_backup_runs_total",
		Help: "Backup runs by result (ok, drill_failed, failed).",
	}, []string{"result"})
	_ = promauto.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_backup_newest_good_age_seconds",
		Help: "Age of the newest backup whose restore drill passed; +Inf if there is none. Alert well before 86400.",
	}, func() float64 {
		st, ok := cachedStatus()
		if !ok || st.NewestGoodAt.IsZero() {
			return math.Inf(1)
		}
		return st.now.Sub(st.NewestGoodAt).Seconds()
	})
	_ = promauto.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_backup_last_drill_success",
		Help: "1 if the last restore drill passed, 0 if it failed, -1 if none has run.",
	}, func() float64 {
		st, ok := cachedStatus()
		switch {
		case !ok || st.LastDrillAt.IsZero():
			return -1
		case st.LastDrillOK:
			return 1
		}
		return 0
	})
	_ = promauto.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_backup_last_drill_timestamp_seconds",
		Help: "When the last restore drill ran (Unix time); 0 if none has.",
	}, func() float64 {
		st, ok := cachedStatus()
		if !ok || st.LastDrillAt.IsZero() {
			return 0
		}
		return float64(st.LastDrillAt.Unix())
	})
)

type statusAt struct {
	Status
	now     time.Time
	fetched time.Time
}

var (
	statusMu    sync.Mutex
	statusCache statusAt
)

func cachedStatus() (statusAt, bool) {
	s := current.Load()
	if s == nil {
		return statusAt{}, false
	}
	statusMu.Lock()
	defer statusMu.Unlock()
	if time.Since(statusCache.fetched) < 10*time.Second {
		return statusCache, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.Status(ctx)
	if err != nil {
		return statusAt{}, false
	}
	statusCache = statusAt{Status: st, now: s.now(), fetched: time.Now()}
	return statusCache, true
}

// forgetStatus drops the cached status after a run changed it.
func forgetStatus() {
	statusMu.Lock()
	statusCache = statusAt{}
	statusMu.Unlock()
}
