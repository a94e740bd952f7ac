package podcontroller

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/deadline"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/vnode/deadlines"
	"github.com/spoteci/spoteci/internal/vnode/podspec"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// The deadline policy's word on a pod: its decisions, and the wait for spot.
const (
	ReasonDeadlinePolicy = "DeadlinePolicy"
	ReasonWaitingForSpot = "WaitingForSpot"
)

// decideAtCreation asks the deadline policy what the pod's instance runs
// on, and sets req, the pod's request with its bid sp, to it: spot (spotBid)
// or pay-as-you-go. It returns a wait when the policy waits for spot.
func (c *Controller) decideAtCreation(ctx context.Context, pod *corev1.Pod, sp annotation.Spot, dl *annotation.Deadline, req *eciapi.CreateContainerGroupRequest) (time.Duration, error) {
	spot := *req
	podspec.SetBid(&spot, spotBid(sp.Bid))
	dec, err := c.deadlines.Decide(ctx, pod, dl, nil, func() bool { return c.provider.DryRun(ctx, spot) == nil })
	if err != nil {
		return 0, err
	}
	c.sayDecision(pod, dec)
	switch dec.Mode {
	case deadline.Idle:
		return time.Until(dec.Next), c.writes.writeStatus(ctx, pod, waitingStatus(pod, ReasonWaitingForSpot, dec.Message))
	case deadline.Spot:
		*req = spot
	default:
		podspec.SetBid(req, market.Bid{Strategy: market.NoSpot})
	}
	req.Tags = append(req.Tags, eciapi.Tag{Key: podspec.TagDeadline, Value: dec.Deadline.UTC().Format(time.RFC3339)})
	return 0, nil
}

// decideWhileRunning asks the deadline policy again, when due, about a
// pod whose instance runs, and moves the pod when it says so: the pod is
// evicted, and its Job's replacement is created on what the policy then
// says (the move happens before a reclaim could lose the deadline). It
// returns when to look again.
func (c *Controller) decideWhileRunning(ctx context.Context, pod *corev1.Pod, in *provider.Instance) (time.Duration, error) {
	dl, err := annotation.ParseDeadline(pod.Annotations)
	var fe *annotation.FieldError
	if errors.As(err, &fe) {
		// Only the progress changes after creation: the pod patched a bad one.
		c.events.warnOnce(ctx, pod, ReasonInvalidAnnotation, fe.Annotation()+"; the saved progress is ignored")
		delete(pod.Annotations, annotation.AnnotationProgress)
		if dl, err = annotation.ParseDeadline(pod.Annotations); err != nil {
			return 0, nil
		}
	}
	if dl == nil {
		return 0, nil
	}
	if due := c.deadlines.Due(pod); time.Now().Before(due) {
		return time.Until(due), nil
	}
	mode := deadline.OnDemand
	if in.Spot && !in.Degraded {
		mode = deadline.Spot
	}
	sp, _ := annotation.ParseAnnotations(pod.Annotations) // parsed without error at creation
	bid := spotBid(sp.Bid)
	// Asked only if the policy wants to know, which on spot it never does.
	spotAvailable := func() bool {
		spot := c.spec.Outline(pod, sp)
		podspec.SetBid(&spot, bid)
		return c.provider.DryRun(ctx, spot) == nil
	}
	dec, err := c.deadlines.Decide(ctx, pod, dl, &deadlines.Running{Mode: mode, Since: in.Created, Protection: bid.Protection}, spotAvailable)
	if err != nil {
		return 0, err
	}
	c.sayDecision(pod, dec)
	if dec.Mode != mode && dec.Mode != deadline.Idle {
		if wait, err := c.evict(ctx, pod, time.Time{}, "moved by the deadline policy"); wait > 0 || err != nil {
			return wait, err
		}
	}
	return time.Until(dec.Next), nil
}

// sayDecision is the pod's DeadlinePolicy event, when the decision changed.
func (c *Controller) sayDecision(pod *corev1.Pod, dec deadlines.Decision) {
	if dec.Changed {
		c.events.Event(pod, corev1.EventTypeNormal, ReasonDeadlinePolicy, dec.Message)
	}
}

// spotBid is a deadline pod's bid on spot: its own, or ECI's usual
// SpotAsPriceGo when it names none (with the parsed default protection of
// one hour).
func spotBid(b market.Bid) market.Bid {
	if !b.Spot() {
		b.Strategy = market.SpotAsPriceGo
	}
	return b
}
