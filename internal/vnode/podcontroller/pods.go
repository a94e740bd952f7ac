package podcontroller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/vnode/podspec"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Waits between tries while a pod cannot go on.
const (
	stockRetry = 2 * time.Second
	evictRetry = time.Second
	stopPoll   = 200 * time.Millisecond
	// configRetry is how often a pod whose configMap or secret is missing
	// looks again.
	configRetry = 5 * time.Second
)

// syncPod converges one pod and its instance. It returns a delay after which
// to look again when the pod waits on something outside Kubernetes.
func (c *Controller) syncPod(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.writes.latest(key, nil)
		return 0, c.deleteOrphans(ctx, ns, name, "")
	}
	if err != nil {
		return 0, err
	}
	pod = c.writes.latest(key, pod)
	// A pod of the same name made while the node was away is another pod:
	// the instances of the old one are orphans.
	if err := c.deleteOrphans(ctx, ns, name, pod.UID); err != nil {
		return 0, err
	}
	pod = pod.DeepCopy() // never change the informer's copy
	in := c.group(pod.UID)
	if pod.DeletionTimestamp != nil {
		return c.deletePod(ctx, pod, in)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		if _, ok := pod.Annotations[annotation.AnnotationDeadline]; ok && pod.Status.Phase == corev1.PodSucceeded {
			c.deadlines.Forget(pod) // its work is done
		}
		return 0, nil // finished pods keep their last status
	}
	if in == nil {
		if hasInstance(pod) {
			return c.checkVanished(ctx, pod)
		}
		return c.createInstance(ctx, pod)
	}
	return c.updatePod(ctx, pod, in)
}

// hasInstance reports whether the node has written an instance into the
// pod's status: its container IDs name the group.
func hasInstance(pod *corev1.Pod) bool {
	for _, c := range pod.Status.ContainerStatuses {
		if strings.HasPrefix(c.ContainerID, "eci://") {
			return true
		}
	}
	return false
}

func hasCondition(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}

func groupIDOf(pod *corev1.Pod) string {
	for _, c := range pod.Status.ContainerStatuses {
		if id, ok := strings.CutPrefix(c.ContainerID, "eci://"); ok {
			g, _, _ := strings.Cut(id, "/")
			return g
		}
	}
	return ""
}

// createInstance reads the pod's annotations, once, and asks for its
// instance with the pod's UID as ClientToken: asking twice gets the same one.
func (c *Controller) createInstance(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	if msg := podspec.ForbiddenSysctl(pod); msg != "" {
		// As a kubelet's admission: the pod fails, so that its Job counts it.
		c.events.warnOnce(ctx, pod, ReasonSysctlForbidden, msg)
		return 0, c.writes.writeStatus(ctx, pod, rejectedStatus(pod, ReasonSysctlForbidden, msg))
	}
	if msg := podspec.ForbiddenField(pod); msg != "" {
		c.events.warnOnce(ctx, pod, ReasonForbiddenPodSpec, msg+"; the pod will not run")
		return 0, c.writes.writeStatus(ctx, pod, waitingStatus(pod, ReasonForbiddenPodSpec, msg))
	}
	// The spot annotations are parsed here, once; the service checks the
	// specs against what it sells, and its refusal (a FieldError, from the
	// provider) is said below in the annotation's words.
	sp, err := annotation.ParseAnnotations(pod.Annotations)
	var fe *annotation.FieldError
	if errors.As(err, &fe) {
		return 0, c.invalidAnnotation(ctx, pod, fe.Annotation())
	}
	dl, err := annotation.ParseDeadline(pod.Annotations)
	if errors.As(err, &fe) {
		return 0, c.invalidAnnotation(ctx, pod, fe.Annotation())
	}
	req, err := c.spec.Request(ctx, pod, sp)
	if err != nil {
		var ce *podspec.ConfigError
		if !errors.As(err, &ce) {
			return 0, fmt.Errorf("resolving the config of %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		// As a kubelet: the pod waits and the config is read again.
		reason, message := ce.Event()
		c.events.warnOnce(ctx, pod, reason, message)
		return configRetry, c.writes.writeStatus(ctx, pod, waitingStatus(pod, ce.Waiting(), ce.Error()))
	}
	creds, err := c.spec.Credentials(ctx, pod)
	if err != nil {
		c.events.warnOnce(ctx, pod, "FailedToRetrieveImagePullSecret", err.Error())
	}
	req.ImageRegistryCredentials = creds
	if dl != nil {
		if wait, err := c.decideAtCreation(ctx, pod, sp, dl, &req); wait > 0 || err != nil {
			return wait, err
		}
	}
	c.warnJobShape(ctx, pod, sp)
	id, err := c.provider.Create(ctx, req)
	var reqErr *provider.RequestError
	switch {
	case errors.Is(err, provider.ErrNoStock) && errors.As(err, &reqErr):
		c.events.Event(pod, corev1.EventTypeWarning, "SpotStockInsufficient", "No spot stock for the requested specs; the pod waits for stock (set k8s.aliyun.com/eci-spot-fallback: \"true\" to run pay-as-you-go instead)")
		return stockRetry, c.writes.writeStatus(ctx, pod, waitingStatus(pod, "WaitingForSpotStock", reqErr.Message))
	case errors.Is(err, provider.ErrBidBelowMarket) && errors.As(err, &reqErr):
		c.events.Event(pod, corev1.EventTypeWarning, "SpotBidBelowMarket", reqErr.Message+"; the pod waits for the price to fall")
		return stockRetry, c.writes.writeStatus(ctx, pod, waitingStatus(pod, "WaitingForSpotPrice", reqErr.Message))
	case errors.As(err, &reqErr) && reqErr.Status/100 == 4:
		if reqErr.Field != nil {
			return 0, c.invalidAnnotation(ctx, pod, reqErr.Field.Annotation())
		}
		c.events.warnOnce(ctx, pod, "ProviderCreateFailed", reqErr.Message)
		return 0, c.writes.writeStatus(ctx, pod, waitingStatus(pod, "ProviderCreateFailed", reqErr.Message))
	case err != nil:
		return 0, fmt.Errorf("creating the instance of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	in, err := c.provider.Get(ctx, id)
	if err != nil || in == nil {
		return time.Second, err // the next poll brings it
	}
	return c.updatePod(ctx, pod, in)
}

// invalidAnnotation keeps a pod waiting, with a Warning, for an annotation
// that cannot be honoured.
func (c *Controller) invalidAnnotation(ctx context.Context, pod *corev1.Pod, msg string) error {
	c.events.warnOnce(ctx, pod, ReasonInvalidAnnotation, msg+"; the pod will not run until it is recreated with a valid annotation")
	return c.writes.writeStatus(ctx, pod, waitingStatus(pod, ReasonInvalidAnnotation, msg))
}

// updatePod mirrors the instance into the pod: status, events, and the
// eviction that api-evict asks for at the notice.
func (c *Controller) updatePod(ctx context.Context, pod *corev1.Pod, in *provider.Instance) (time.Duration, error) {
	c.events.forwardContainerEvents(ctx, pod, in)
	for _, e := range in.Events {
		switch {
		case e.Reason == eciapi.ReasonSpotToBeReleased && !hasCondition(pod, ConditionInstanceExpired):
			// The condition, written with the notice, marks the event as sent:
			// no lookup of past events for the crowd a reclaim storm brings.
			c.events.Event(pod, corev1.EventTypeWarning, e.Reason, e.Message)
		case e.Reason == eciapi.ReasonSpotDegraded:
			c.events.warnOnce(ctx, pod, e.Reason, e.Message)
		case e.Reason == ReasonEvicted && e.Container == "":
			c.events.warnOnce(ctx, pod, e.Reason, e.Message) // the kubelet's Warning Evicted
		}
	}
	if msg := podspec.IgnoredEphemeralContainers(pod); msg != "" {
		c.events.warnOnce(ctx, pod, ReasonForbiddenPodSpec, msg)
	}
	if in.Status == provider.StatusDeleted {
		return c.checkVanished(ctx, pod)
	}
	annotated := annotate(pod, in)
	written, err := c.writes.write(ctx, pod, podStatus(pod, in), annotated)
	if err != nil {
		return 0, err
	}
	if annotated && written {
		for _, e := range in.Events {
			if e.Container == "" && e.Reason == eciapi.ReasonCreated {
				c.events.Event(pod, corev1.EventTypeNormal, ReasonInstanceCreated, e.Message)
			}
		}
	}
	// api-evict as asked at creation: later edits of the annotation change
	// nothing. A deadline Job's pod is replaced at the notice too: its
	// replacement, decided for anew, starts before the release.
	if !in.NoticeTime.IsZero() && in.Status != provider.StatusExpired && (in.Tags[podspec.TagAPIEvict] == "true" || in.Tags[podspec.TagDeadline] != "") {
		return c.evict(ctx, pod, in.ReleaseTime, "evicted for the spot release")
	}
	if in.Tags[podspec.TagDeadline] != "" && !in.Status.Ended() {
		return c.decideWhileRunning(ctx, pod, in)
	}
	return 0, nil
}

// annotate puts where the pod's instance runs into its annotations, once
// per instance, and reports whether it did: they are written with the
// status that follows, in one request (a pod's status update takes its
// metadata too), and the service's word on the creation (the pool, the
// price, the bid, and any pool avoided) is then forwarded as an
// InstanceCreated event.
func annotate(pod *corev1.Pod, in *provider.Instance) bool {
	if pod.Annotations[AnnotationInstanceID] == in.ID || in.InstanceType == "" {
		return false
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationInstanceID], pod.Annotations[AnnotationInstanceSpec] = in.ID, in.InstanceType
	pod.Annotations[AnnotationZone] = in.ZoneID
	if in.PurchasePrice > 0 {
		kind := "pay-as-you-go"
		if in.Spot {
			kind = "spot"
		}
		pod.Annotations[AnnotationPrice] = strconv.FormatFloat(in.PurchasePrice, 'f', -1, 64) + " CNY/h " + kind
	}
	return true
}

// checkVanished fails a pod whose instance is gone (deleted behind the node's
// back, or lost), after confirming it by ID: a poll may just be late.
func (c *Controller) checkVanished(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	id := groupIDOf(pod)
	in, err := c.provider.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if in != nil && in.Status != provider.StatusDeleted {
		return c.updatePod(ctx, pod, in)
	}
	c.events.warnOnce(ctx, pod, ReasonInstanceVanished, fmt.Sprintf("The container instance %s of the pod no longer exists", id))
	return 0, c.writes.writeStatus(ctx, pod, vanishedStatus(pod, time.Now()))
}

// evict asks the Eviction API to remove the pod before its instance is
// released, with a grace period that ends before the release. A budget that
// refuses is retried, and named in a Warning event.
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod, release time.Time, why string) (time.Duration, error) {
	left := time.Until(release)
	grace := int64(30)
	if p := pod.Spec.TerminationGracePeriodSeconds; p != nil {
		grace = *p
	}
	if !release.IsZero() {
		// Whole seconds that end by the release; at least 1, since 0 would
		// delete the pod at once without stopping its containers first.
		grace = max(1, min(grace, int64(math.Floor(left.Seconds()))))
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &metav1.DeleteOptions{GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &pod.UID}}}
	err := c.kube.PolicyV1().Evictions(pod.Namespace).Evict(ctx, ev)
	switch {
	case err == nil, apierrors.IsNotFound(err):
		c.log.Info(why, "pod", pod.Namespace+"/"+pod.Name, "grace", grace)
		return 0, nil
	case apierrors.IsTooManyRequests(err):
		msg := fmt.Sprintf("Cannot evict the pod before the spot release (in %s): %s; retrying", left.Round(time.Second), budgetOf(err))
		if release.IsZero() {
			msg = fmt.Sprintf("Cannot evict the pod (%s): %s; retrying", why, budgetOf(err))
		}
		c.events.Event(pod, corev1.EventTypeWarning, "SpotEvictionBlocked", msg)
		return evictRetry, nil
	}
	return 0, fmt.Errorf("evicting %s/%s: %w", pod.Namespace, pod.Name, err)
}

// budgetOf names the PodDisruptionBudget that refused an eviction.
func budgetOf(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if d := status.Status().Details; d != nil {
			for _, c := range d.Causes {
				if c.Type == policyv1.DisruptionBudgetCause {
					return c.Message
				}
			}
		}
	}
	return err.Error()
}

// deletePod stops the instance of a pod being deleted, with the pod's grace
// period, and removes the pod once its containers stopped (or the grace is
// over), as a kubelet does.
func (c *Controller) deletePod(ctx context.Context, pod *corev1.Pod, in *provider.Instance) (time.Duration, error) {
	id := ""
	if in != nil {
		id = in.ID
	} else {
		id = groupIDOf(pod)
	}
	var cur *provider.Instance
	if id != "" {
		var err error
		cur, err = c.provider.Get(ctx, id)
		if err != nil {
			return 0, err
		}
		// Ended groups are deleted too, so that the node's polls forget them;
		// deleting one twice is no error. Only a live one is waited for.
		if cur != nil && cur.Status != provider.StatusDeleted {
			if err := c.provider.Delete(ctx, id, pod.DeletionGracePeriodSeconds); err != nil && !errors.Is(err, provider.ErrNotFound) {
				return 0, fmt.Errorf("deleting instance %s: %w", id, err)
			}
			if !cur.Status.Ended() {
				return stopPoll, nil
			}
		}
		if cur != nil && running(cur) && time.Now().Before(pod.DeletionTimestamp.Time) {
			return stopPoll, nil // SIGTERM sent; the grace period is running
		}
	}
	if p := pod.Status.Phase; p != corev1.PodSucceeded && p != corev1.PodFailed {
		pod.Status = terminalStatus(pod, cur, time.Now())
		if _, err := c.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("writing the last status of %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	err := c.kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr(int64(0)), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, fmt.Errorf("removing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.events.forget(pod.UID)
	return 0, nil
}

func running(in *provider.Instance) bool {
	for _, c := range in.Containers {
		if c.State.State == provider.ContainerRunning {
			return true
		}
	}
	return false
}

// deleteOrphans deletes the instances made for pod ns/name whose pod is
// gone (deleted while the node was away): those of any UID but live's. Pods
// are told apart by UID, never by name.
func (c *Controller) deleteOrphans(ctx context.Context, ns, name string, live types.UID) error {
	c.mu.Lock()
	var ids []string
	for _, uid := range c.byPod[ns+"/"+name] {
		if uid != live {
			ids = append(ids, c.groups[uid].ID)
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		if err := c.provider.Delete(ctx, id, nil); err != nil && !errors.Is(err, provider.ErrNotFound) {
			return fmt.Errorf("deleting orphan instance %s: %w", id, err)
		}
	}
	return nil
}

// object is what an event is about: a pod, a Job.
type object interface {
	runtime.Object
	metav1.Object
}

// ReasonSpotReclaimBackoff warns a Job whose shape makes each reclaim wait
// out the Job's failure back-off.
const ReasonSpotReclaimBackoff = "SpotReclaimBackoff"

// warnJobShape tells the owner Job of a spot pod, once, when its shape makes
// every replacement wait out the Job's failure back-off: 10 s, doubling with
// each failed pod up to 10 minutes, even for failures its podFailurePolicy
// ignores (kubernetes issue 130881). Only an Indexed Job with
// backoffLimitPerIndex keeps that back-off per index.
func (c *Controller) warnJobShape(ctx context.Context, pod *corev1.Pod, sp annotation.Spot) {
	ref := podspec.OwnerJob(pod)
	if ref == nil || !sp.Bid.Spot() || c.events.warned(ref.UID, ReasonSpotReclaimBackoff, false) {
		return
	}
	job, err := c.kube.BatchV1().Jobs(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil || job.UID != ref.UID {
		return // gone, or not readable: nothing to advise
	}
	indexed := job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
	if indexed && job.Spec.BackoffLimitPerIndex != nil {
		c.events.warned(ref.UID, ReasonSpotReclaimBackoff, true) // a good shape: never look again
		return
	}
	c.events.warnOnce(ctx, job, ReasonSpotReclaimBackoff, "The pods of this Job run on spot instances, and a reclaim fails its pod: "+
		"with this Job's shape every replacement waits out the Job's failure back-off (10 s, doubling with each failed pod, up to 10 minutes), "+
		"even for failures that podFailurePolicy ignores, so a storm of reclaims can stop the Job for minutes. "+
		"As an Indexed Job (completionMode: Indexed) with backoffLimitPerIndex, and podFailurePolicy Ignore on DisruptionTarget, "+
		"each index waits only for its own reclaims; with the pod annotation k8s.aliyun.com/eci-spot-release-strategy: api-evict "+
		"its replacement is made at the notice and runs before the instance is released")
}
