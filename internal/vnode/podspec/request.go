package podspec

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/market"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Tags the node puts on the groups it creates.
const (
	TagNode      = "spoteci.io/node"
	TagNamespace = eciapi.TagNamespace
	TagPod       = eciapi.TagPod
	// TagPodUID names the pod by UID, for backends that do not return the
	// ClientToken.
	TagPodUID = eciapi.TagPodUID
	// TagAPIEvict records, at creation, that the pod asked for api-evict.
	TagAPIEvict = "spoteci.io/api-evict"
	// TagJob names the Job that owns the pod, for bills per Job.
	TagJob = eciapi.TagJob
	// TagDeadline records the deadline of a deadline Job's pod (package
	// deadlines decides what it runs on).
	TagDeadline = eciapi.TagDeadline
)

// Config sets up a Builder.
type Config struct {
	// NodeName is the node whose instances these are (TagNode).
	NodeName string
	// Zone, when set, is the zone of every instance.
	Zone string
	// Kube reads what the pods' configs refer to.
	Kube kubernetes.Interface
}

// Builder makes the requests of a node's pods. It reads what pods' configs
// refer to: from the term's watches what nearly every pod reads (Start),
// the rest from the apiserver.
type Builder struct {
	cfg     Config
	kube    kubernetes.Interface
	watched *watched // the term's; nil: read it
}

// New returns a Builder of cfg.
func New(cfg Config) *Builder {
	return &Builder{cfg: cfg, kube: cfg.Kube}
}

// Request is the request for pod's instance, with sp, its spot fields
// parsed from its annotations, and its config resolved. The error is a
// *ConfigError when the config cannot be resolved now: the pod waits.
func (b *Builder) Request(ctx context.Context, pod *corev1.Pod, sp annotation.Spot) (eciapi.CreateContainerGroupRequest, error) {
	req := b.Outline(pod, sp)
	if err := b.podConfig(ctx, pod, &req); err != nil {
		return eciapi.CreateContainerGroupRequest{}, err
	}
	return req, nil
}

// Outline is the request for pod's instance without what the API gives
// its containers (env, volumes, pull secrets): enough to ask the cloud,
// by a dry run, whether it would be created.
func (b *Builder) Outline(pod *corev1.Pod, sp annotation.Spot) eciapi.CreateContainerGroupRequest {
	req := eciapi.CreateContainerGroupRequest{
		ContainerGroupName: groupName(pod), ClientToken: string(pod.UID), HostName: hostName(pod), ZoneId: b.cfg.Zone,
		InstanceType: sp.Specs, TerminationGracePeriodSeconds: pod.Spec.TerminationGracePeriodSeconds,
		RestartPolicy: string(pod.Spec.RestartPolicy),
		Tags: []eciapi.Tag{{Key: TagNode, Value: b.cfg.NodeName}, {Key: TagNamespace, Value: pod.Namespace}, {Key: TagPod, Value: pod.Name},
			{Key: TagPodUID, Value: string(pod.UID)}},
	}
	if job := OwnerJob(pod); job != nil {
		req.Tags = append(req.Tags, eciapi.Tag{Key: TagJob, Value: job.Name})
	}
	// What the pod's containers do on the model runtime travels as tags,
	// as a pod's annotations travel to its runtime through CRI.
	for _, k := range slices.Sorted(maps.Keys(pod.Annotations)) {
		if strings.HasPrefix(k, eciapi.ModelPrefix) {
			req.Tags = append(req.Tags, eciapi.Tag{Key: k, Value: pod.Annotations[k]})
		}
	}
	if sp.APIEvict {
		req.Tags = append(req.Tags, eciapi.Tag{Key: TagAPIEvict, Value: "true"})
	}
	SetBid(&req, sp.Bid)
	for _, c := range pod.Spec.Containers {
		// Env, volume mounts and $(VAR) in commands come from podConfig.
		ec := eciapi.Container{Name: c.Name, Image: c.Image, ImagePullPolicy: string(c.ImagePullPolicy),
			Commands: c.Command, Args: c.Args, WorkingDir: c.WorkingDir}
		// The limits size the instance without eci-use-specs (SPEC 2), and
		// bound the container inside it either way.
		if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			ec.Cpu = q.AsApproximateFloat64()
		}
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			ec.Memory = q.AsApproximateFloat64() / (1 << 30)
		}
		req.Containers = append(req.Containers, ec)
	}
	return req
}

// SetBid puts bid on req as ECI's parameters, the one place it is text
// again: a spot bid with its protection (1 hour, ECI's default, when the
// pod names none); NoSpot, ECI's default, sends none of them. The fallback
// goes as the bid says.
func SetBid(req *eciapi.CreateContainerGroupRequest, bid market.Bid) {
	req.SpotStrategy, req.SpotPriceLimit, req.SpotDuration, req.SpotFallback = "", "", nil, bid.Fallback
	if !bid.Spot() {
		return
	}
	req.SpotStrategy = string(bid.Strategy)
	hours := eciapi.Decimal(strconv.Itoa(int(bid.Protection / time.Hour)))
	req.SpotDuration = &hours
	if bid.Strategy == eciapi.SpotWithPriceLimit {
		req.SpotPriceLimit = eciapi.Decimal(strconv.FormatFloat(bid.Limit, 'f', -1, 64))
	}
}

// OwnerJob is the Job that controls pod, if one does: its name tags the
// request (TagJob).
func OwnerJob(pod *corev1.Pod) *metav1.OwnerReference {
	if ref := metav1.GetControllerOf(pod); ref != nil && ref.Kind == "Job" {
		return ref
	}
	return nil
}
