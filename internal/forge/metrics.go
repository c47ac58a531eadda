package forge

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// invocations counts Forge invocations by kind and outcome: "ok" or
	// the check that refused them, never anything of the token.
	invocations = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_forge_invocations_total",
		Help: "Forge invocations by kind (ui, event, uninstall) and outcome (ok, or the FIT check that refused them).",
	}, []string{"kind", "outcome"})

	// systemTokenAge is how old each Forge tenant's latest app system token
	// is: the hourly trigger keeps it under an hour; past the token's
	// lifetime feeds answer 503 until the next invocation heals it.
	systemTokenAge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_forge_system_token_age_seconds",
		Help: "Seconds since the latest app system token of a Forge tenant arrived (by random tenant id).",
	}, []string{"tenant"})
)
