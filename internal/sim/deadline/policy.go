// Package deadline simulates the single deadline job of "Can't Be Late:
// Optimizing Spot Instance Savings under Deadlines" (Wu et al., NSDI 2024)
// on the spot market core: C hours of work to finish within R hours of its
// start, a changeover delay d each time it (re)starts on an instance, and a
// policy that decides at each tick of an availability trace whether to run on
// spot, on demand, or not at all.
//
// The online policies are internal/deadline's, the very code the virtual node
// runs for live Jobs; this package adds the omniscient optimum, which reads
// the whole trace. Spot availability and reclaims come from market.Core under
// the chosen rules (sim.AWS or sim.ECI); on-demand is the pay-as-you-go
// instance (NoSpot bid) of the same core; costs and billed hours come from
// the core's bill lines.
package deadline

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spoteci/spoteci/internal/deadline"
)

// The decision's types, as the simulator's callers name them.
type (
	Job    = deadline.Job
	Mode   = deadline.Mode
	State  = deadline.State
	Policy = deadline.Policy
	Holder = deadline.Holder
)

// The modes and the online policies' names.
const (
	Idle     = deadline.Idle
	Spot     = deadline.Spot
	OnDemand = deadline.OnDemand

	PolicyOnDemand          = deadline.PolicyOnDemand
	PolicyGreedy            = deadline.PolicyGreedy
	PolicyUniformProgress   = deadline.PolicyUniformProgress
	PolicyProtectedProgress = deadline.PolicyProtectedProgress
	// PolicyOptimal is the omniscient optimum, the simulator's own.
	PolicyOptimal = "optimal"
)

// Policies lists the policy names in the order results show them.
func Policies() []string {
	return append(deadline.Names(), PolicyOptimal)
}

// ParsePolicies parses a comma list of policy names.
func ParsePolicies(list string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(Policies(), n) {
			return nil, fmt.Errorf("unknown policy %q: want %s", n, strings.Join(Policies(), ", "))
		}
		if slices.Contains(names, n) {
			return nil, fmt.Errorf("policy %q given twice", n)
		}
		names = append(names, n)
	}
	return names, nil
}
