// Package examples holds the Jobs of the ECI guides that spoteci follows,
// exactly as the guides print them (comments included): the ACK guide's
// spot_job.yaml and the four examples of the ECI guide on preemptible
// instances. They are the acceptance test: the e2e tests, spoteci demo and
// the README use these files, never edited copies.
package examples

import _ "embed"

// ACKSpotJob is spot_job.yaml of "Run jobs on spot ECI" (ACK): pi to 2,000
// digits on ecs.c5.large or 2 vCPU 4 GiB, bidding the market price.
//
//go:embed ack-spot-job.yaml
var ACKSpotJob string

// The examples of "Create a preemptible instance" (ECI).
var (
	// ECI1InstanceTypePriceLimit: ecs.c6.large, SpotWithPriceLimit 0.25.
	//
	//go:embed eci-1-instance-type-price-limit.yaml
	ECI1InstanceTypePriceLimit string
	// ECI2Resources: 2 vCPU 4 GiB from the container's limits, SpotAsPriceGo.
	//
	//go:embed eci-2-resources.yaml
	ECI2Resources string
	// ECI2Specs: 2-4Gi through eci-use-specs, SpotAsPriceGo.
	//
	//go:embed eci-2-specs.yaml
	ECI2Specs string
	// ECI3NoProtection: eci-spot-duration "0", no protection period.
	//
	//go:embed eci-3-no-protection.yaml
	ECI3NoProtection string
	// ECI4Fallback: ecs.c6.large below the market with eci-spot-fallback.
	//
	//go:embed eci-4-fallback.yaml
	ECI4Fallback string
)
