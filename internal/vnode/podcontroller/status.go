package podcontroller

import (
	"fmt"
	"time"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod condition types and reasons spoteci writes (SPEC sections 1 and 4).
const (
	// ConditionInstanceExpired is set at the release notice.
	ConditionInstanceExpired corev1.PodConditionType = "ContainerInstanceExpired"
	// ReasonInvalidAnnotation keeps a pod waiting whose annotations cannot be honoured.
	ReasonInvalidAnnotation = "InvalidAnnotation"
	// ReasonInstanceVanished fails a pod whose instance no longer exists.
	ReasonInstanceVanished = "ContainerInstanceVanished"
	// ReasonInstanceCreated carries the service's word on a new instance:
	// its pool, price and bid, and any pool it avoided.
	ReasonInstanceCreated = "InstanceCreated"
	// ReasonForbiddenPodSpec keeps a pod waiting that asks for what an ECI
	// instance never gives (podspec.ForbiddenField), and warns of ephemeral
	// containers that will not run.
	ReasonForbiddenPodSpec = "ForbiddenPodSpec"
	// ReasonSysctlForbidden is the kubelet's reason for a pod it rejects
	// for its sysctls (podspec.ForbiddenSysctl).
	ReasonSysctlForbidden = "SysctlForbidden"
)

// wallTime is t as Kubernetes objects carry it: whole seconds; nil for
// none.
func wallTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t.Truncate(time.Second)}
}

// podStatus is the status a pod should show for its container group: a pure
// function of the pod as it is and the group, so it can be tested without a
// cluster and written only when it differs. Conditions others wrote (for
// example DisruptionTarget from the Eviction API) are kept.
func podStatus(pod *corev1.Pod, in *provider.Instance) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.HostIP, st.HostIPs = "127.0.0.1", []corev1.HostIP{{IP: "127.0.0.1"}}
	if in.IP != "" {
		st.PodIP, st.PodIPs = in.IP, []corev1.PodIP{{IP: in.IP}}
	}
	if st.StartTime == nil {
		st.StartTime = &metav1.Time{Time: in.Created.Truncate(time.Second)}
	}
	if !in.NoticeTime.IsZero() {
		setCondition(&st, corev1.PodCondition{Type: ConditionInstanceExpired, Status: corev1.ConditionTrue,
			Reason: eciapi.ReasonSpotToBeReleased, Message: "The spot instance will be released at " + releaseTime(in.ReleaseTime),
			LastTransitionTime: *wallTime(in.NoticeTime)})
	}
	if in.Status == provider.StatusExpired {
		// The pod fails with BidFailed and, in the same write,
		// DisruptionTarget, so a Job's podFailurePolicy can ignore the
		// reclaim. Its containers ended with the instance: none is ready
		// (the guide's sample shows 1/1, but a kubelet never says a stopped
		// container is ready).
		released := in.ReleaseTime
		st.Phase, st.Reason = corev1.PodFailed, eciapi.ReasonBidFailed
		st.Message = "The pod is a spot instance, and has been released at " + released.UTC().Format("2006-01-02T15:04Z")
		setCondition(&st, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: eciapi.ReasonBidFailed,
			Message: st.Message, LastTransitionTime: metav1.Time{Time: released.Truncate(time.Second)}})
		stopContainers(&st, eciapi.ReasonBidFailed, "the spot instance was released", released)
		return st
	}
	byName := map[string]provider.ContainerStatus{}
	for _, c := range in.Containers {
		byName[c.Name] = c
	}
	st.ContainerStatuses = nil
	allReady, running, succeeded, failed := true, 0, 0, 0
	for _, c := range pod.Spec.Containers {
		ecs := byName[c.Name]
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: ecs.ImageID, ContainerID: "eci://" + in.ID + "/" + c.Name,
			RestartCount: int32(ecs.RestartCount)}
		if p := ecs.Previous; p != nil {
			cs.LastTerminationState.Terminated = terminated(*p, cs.ContainerID)
		}
		state := ecs.State
		switch state.State {
		case provider.ContainerRunning:
			cs.State.Running = &corev1.ContainerStateRunning{}
			if p := wallTime(state.Started); p != nil {
				cs.State.Running.StartedAt = *p
			}
			cs.Ready, cs.Started = true, ptr(true)
			running++
		case provider.ContainerTerminated:
			cs.State.Terminated, cs.Started = terminated(state, cs.ContainerID), ptr(false)
			allReady = false
			if state.ExitCode == 0 && state.Reason != "StartError" {
				succeeded++
			} else {
				failed++
			}
		default:
			// ContainerCreating, ErrImagePull, ImagePullBackOff, ...
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: state.Reason, Message: state.Message}
			if cs.State.Waiting.Reason == "" {
				cs.State.Waiting.Reason = "ContainerCreating"
			}
			if ecs.RestartCount > 0 {
				running++ // restarting: the pod stays Running, as with a kubelet
			}
			cs.Started = ptr(false)
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	n := len(pod.Spec.Containers)
	switch {
	case in.Status == provider.StatusFailed || (failed > 0 && failed+succeeded == n):
		st.Phase = corev1.PodFailed
	case in.Status == provider.StatusSucceeded || succeeded == n:
		st.Phase = corev1.PodSucceeded
	case running > 0:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}
	if msg := evictionOf(in); msg != "" && (in.Status.Ended() || st.Phase == corev1.PodFailed || st.Phase == corev1.PodSucceeded) {
		// As a kubelet's eviction: Failed, whatever the exits, once the
		// containers were stopped (the first status that says so is the
		// pod's last); kubectl shows the reason.
		st.Phase, st.Reason, st.Message = corev1.PodFailed, ReasonEvicted, msg
	}
	setCondition(&st, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue,
		LastTransitionTime: *wallTime(in.Created)})
	setReady(&st, allReady && n > 0 && st.Phase == corev1.PodRunning, in.Created)
	return st
}

// terminated is an ended run of a container (its current or its previous
// one) as Kubernetes says it.
func terminated(state provider.ContainerState, containerID string) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{ExitCode: int32(state.ExitCode), Reason: state.Reason, Message: state.Message,
		ContainerID: containerID}
	if p := wallTime(state.Started); p != nil {
		t.StartedAt = *p
	}
	if p := wallTime(state.Finished); p != nil {
		t.FinishedAt = *p
	}
	return t
}

func releaseTime(t time.Time) string {
	if t.IsZero() {
		return "soon"
	}
	return t.UTC().Format(time.RFC3339)
}

// waitingStatus keeps a pod Pending with every container waiting for reason.
func waitingStatus(pod *corev1.Pod, reason, message string) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodPending
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptr(false),
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}})
	}
	return st
}

// rejectedStatus fails a pod that its node will not admit, as a kubelet
// rejects one.
func rejectedStatus(pod *corev1.Pod, reason, message string) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.Phase, st.Reason, st.Message = corev1.PodFailed, reason, "Pod was rejected: "+message
	return st
}

// vanishedStatus fails a pod whose instance is gone, so its owner replaces it.
// terminalStatus is a deleted pod's last status, written before the node
// removes it, as a kubelet writes one: its containers stopped, the phase
// Succeeded if every one exited 0, else Failed. A Job whose pods carry its
// tracking finalizer counts (and lets go of) a deleted pod only in a
// terminal phase; without one the pod would stay Terminating for good.
func terminalStatus(pod *corev1.Pod, in *provider.Instance, now time.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	if in != nil {
		st = podStatus(pod, in)
	}
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		return st
	}
	stopContainers(&st, "Error", "stopped: the pod was deleted", now)
	st.Phase = corev1.PodSucceeded
	for _, cs := range st.ContainerStatuses {
		if cs.State.Terminated.ExitCode != 0 {
			st.Phase = corev1.PodFailed
		}
	}
	if len(st.ContainerStatuses) == 0 {
		st.Phase = corev1.PodFailed
	}
	return st
}

func vanishedStatus(pod *corev1.Pod, now time.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.Phase, st.Reason = corev1.PodFailed, ReasonInstanceVanished
	st.Message = fmt.Sprintf("The pod's container instance no longer exists in the ECI service (noticed at %s)", now.UTC().Format(time.RFC3339))
	stopContainers(&st, ReasonInstanceVanished, "the container instance no longer exists", now)
	return st
}

// stopContainers says, as a kubelet does of a pod that ended, that no
// container runs or is ready: one not already terminated ended at with
// reason (exit code 137, as if killed), and the pod is not ready.
func stopContainers(st *corev1.PodStatus, reason, message string, at time.Time) {
	for i := range st.ContainerStatuses {
		cs := &st.ContainerStatuses[i]
		if cs.State.Terminated == nil {
			t := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: reason, Message: message,
				FinishedAt: metav1.Time{Time: at.Truncate(time.Second)}, ContainerID: cs.ContainerID}
			if r := cs.State.Running; r != nil {
				t.StartedAt = r.StartedAt
			}
			cs.State = corev1.ContainerState{Terminated: t}
		}
		cs.Ready, cs.Started = false, ptr(false)
	}
	setReady(st, false, at)
}

func setReady(st *corev1.PodStatus, ready bool, at time.Time) {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		setCondition(st, corev1.PodCondition{Type: t, Status: status, LastTransitionTime: metav1.Time{Time: at.Truncate(time.Second)}})
	}
}

// setCondition sets c, keeping the transition time when the status is
// unchanged and every other condition as it is.
func setCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type != c.Type {
			continue
		}
		if st.Conditions[i].Status == c.Status {
			c.LastTransitionTime = st.Conditions[i].LastTransitionTime
		}
		st.Conditions[i] = c
		return
	}
	st.Conditions = append(st.Conditions, c)
}

func ptr[T any](v T) *T { return &v }
