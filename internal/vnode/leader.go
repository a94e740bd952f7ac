package vnode

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election makes replicas of one node take turns: only the holder of the
// Lease acts as the node (registers it, syncs its pods, serves its kubelet
// API); the others wait, ready to take over when the Lease lapses.
type Election struct {
	// Lease is the Lease's name, in Config.Namespace.
	Lease string
	// Identity tells this replica apart (its pod's name).
	Identity string
	// LeaseDuration is how long a standby waits after the last renewal
	// before taking over; the leader gives up if it cannot renew within
	// RenewDeadline; every replica tries every RetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// LeaseName is the default Lease of a node's replicas.
func LeaseName(nodeName string) string { return "spoteci-" + nodeName }

// elect runs lead for as long as this replica holds the Lease, and stands
// for it again when it loses it, until ctx ends. A leader that loses the
// Lease (the apiserver unreachable past the renew deadline) stops acting
// before anyone else can start: the Lease outlasts the renew deadline.
func (n *Node) elect(ctx context.Context, lead func(context.Context) error) error {
	e := n.cfg.Election
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: e.Lease, Namespace: n.cfg.Namespace},
		Client:     n.cfg.Kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	for ctx.Err() == nil {
		term, cancel := context.WithCancel(ctx)
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: n.cfg.NodeName, ReleaseOnCancel: true,
			LeaseDuration: e.LeaseDuration, RenewDeadline: e.RenewDeadline, RetryPeriod: e.RetryPeriod,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					// One term at a time: a term's work ends before the
					// next begins, and a late start of an ended term
					// does nothing.
					n.term.Lock()
					defer n.term.Unlock()
					if ctx.Err() != nil {
						return
					}
					n.log.Info("leading: acting as the node", "identity", e.Identity, "lease", n.cfg.Namespace+"/"+e.Lease)
					if err := lead(ctx); err != nil && ctx.Err() == nil {
						n.log.Error("the node stopped; giving up the lease", "err", err)
					}
					cancel() // a leader that cannot act lets another try
				},
				OnStoppedLeading: func() { n.log.Info("not leading", "identity", e.Identity) },
				OnNewLeader: func(id string) {
					if id != e.Identity {
						n.log.Info("standing by", "leader", id)
					}
				},
			},
		})
		if err != nil {
			cancel()
			return fmt.Errorf("leader election: %w", err)
		}
		// Run returns as soon as the Lease is lost or given up; the
		// term's work is waited for before standing again.
		elector.Run(term)
		cancel()
		n.term.Lock()
		//lint:ignore SA2001 the empty critical section waits for the term's work to end
		n.term.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(e.RetryPeriod):
		}
	}
	return nil
}
