package atlassian

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// keyFetches counts lookups of install keys that were not in the cache, by
// outcome: fetched, unknown (the service does not know the kid), error (the
// service failed) and limited (not asked: too many new kids lately). A rise
// of limited is a flood of forged installs.
var keyFetches = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ferry_connect_install_key_fetches_total",
	Help: "Lookups of Connect install keys not in the cache, by outcome (fetched|unknown|error|limited).",
}, []string{"outcome"})

func init() {
	for _, o := range []string{"fetched", "unknown", "error", "limited"} {
		keyFetches.WithLabelValues(o)
	}
}
