package jobs

import (
	"slices"
	"time"
)

// Summary is the result of a workload under one policy. The first keys are
// those of the deadline job's summary, per Job: runs are Jobs, preemptions
// reclaims, and savings are against paying the same instance time at
// pay-as-you-go prices.
type Summary struct {
	Policy              string  `json:"policy"`
	Runs                int     `json:"runs"`
	ODHoursMean         float64 `json:"od_hours_mean"`
	SpotHoursMean       float64 `json:"spot_hours_mean"`
	CostMean            float64 `json:"cost_mean"`
	SavingsVsOnDemand   float64 `json:"savings_vs_on_demand"`
	DeadlineMetFraction float64 `json:"deadline_met_fraction"`
	PreemptionsMean     float64 `json:"preemptions_mean"`

	JobsFinished int `json:"jobs_finished"`
	// Pods counts instances: every attempt of every pod.
	Pods     int `json:"pods"`
	Reclaims int `json:"reclaims"`
	// Degraded counts pay-as-you-go instances made by SpotFallback.
	Degraded int `json:"degraded"`
	// CompletionHours are from a Job's arrival to its last pod's success,
	// over the Jobs that finished.
	CompletionHoursP50 float64 `json:"completion_hours_p50"`
	CompletionHoursP95 float64 `json:"completion_hours_p95"`
	CostTotal          float64 `json:"cost_total"`
	// WorkLost is work done and lost to reclaims (not checkpointed).
	WorkLostHoursMean  float64 `json:"work_lost_hours_mean"`
	WorkLostHoursTotal float64 `json:"work_lost_hours_total"`
	// WaitHoursMean is the time a Job's pods waited for capacity.
	WaitHoursMean float64 `json:"wait_hours_mean"`
}

func (r *run) summary(policy string) Summary {
	s := Summary{Policy: policy, Runs: len(r.jobs), Pods: r.attempts, Degraded: r.degraded}
	var completions []time.Duration
	var spot, payg, lost, wait time.Duration
	var cost, paygCost float64
	met := 0
	for i := range r.jobs {
		j := &r.jobs[i]
		spot += j.spot
		payg += j.payg
		lost += j.lost
		wait += j.wait
		cost += j.cost
		paygCost += j.paygCost
		s.Reclaims += int(j.reclaims)
		if j.finished.IsZero() {
			continue
		}
		s.JobsFinished++
		took := j.finished.Sub(j.arrival)
		completions = append(completions, took)
		if d := r.kinds[j.kind].spec.Deadline; d == 0 || took <= d {
			met++
		}
	}
	r.progress.Add(len(r.jobs) - s.JobsFinished)
	if s.Runs == 0 {
		return s
	}
	n := float64(s.Runs)
	s.ODHoursMean, s.SpotHoursMean = payg.Hours()/n, spot.Hours()/n
	s.CostMean, s.CostTotal = cost/n, cost
	if paygCost > 0 {
		s.SavingsVsOnDemand = 1 - cost/paygCost
	}
	s.DeadlineMetFraction = float64(met) / n
	s.PreemptionsMean = float64(s.Reclaims) / n
	s.WorkLostHoursMean, s.WorkLostHoursTotal = lost.Hours()/n, lost.Hours()
	s.WaitHoursMean = wait.Hours() / n
	slices.Sort(completions)
	s.CompletionHoursP50 = percentile(completions, 50).Hours()
	s.CompletionHoursP95 = percentile(completions, 95).Hours()
	return s
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100·n)
	return sorted[max(rank, 1)-1]
}
