package egress

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// requestsTotal counts outbound requests and dials per category. Labels are
// the category and the outcome only: hosts and URLs may carry tenant names
// or secrets and would make the label set unbounded.
var requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ferry_egress_requests_total",
	Help: "Outbound requests and connections by destination category and outcome (allowed|refused).",
}, []string{"category", "outcome"})

func init() {
	// Pre-create every series so a refusal shows up as a rate change, not a
	// new series.
	for _, c := range Categories() {
		requestsTotal.WithLabelValues(string(c), "allowed")
		requestsTotal.WithLabelValues(string(c), "refused")
	}
}

func countAllowed(c Category) { requestsTotal.WithLabelValues(metricCategory(c), "allowed").Inc() }
func countRefused(c Category) { requestsTotal.WithLabelValues(metricCategory(c), "refused").Inc() }

// metricCategory keeps the label set closed: unknown categories are "other".
func metricCategory(c Category) string {
	for _, k := range Categories() {
		if k == c {
			return string(c)
		}
	}
	return "other"
}
