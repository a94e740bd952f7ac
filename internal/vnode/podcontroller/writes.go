package podcontroller

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/kubernetes"
)

// statusWriter writes pods' status, and keeps what it wrote until the
// informer has it.
type statusWriter struct {
	kube    kubernetes.Interface
	mu      sync.Mutex
	written map[string]*corev1.Pod // by "namespace/name", until the informer has it (wrote)
}

func (sw *statusWriter) writeStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus) error {
	_, err := sw.write(ctx, pod, st, false)
	return err
}

// write writes st as pod's status, with pod's metadata when meta says it
// changed, and reports whether it did: not when nothing changed, nor when
// the pod changed or went meanwhile (a newer one is on its way through the
// informer).
func (sw *statusWriter) write(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus, meta bool) (bool, error) {
	if !meta && equality.Semantic.DeepEqual(pod.Status, st) {
		return false, nil
	}
	pod.Status = st
	updated, err := sw.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("writing status of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	sw.wrote(updated)
	return true, nil
}

// wrote keeps pod as the node just wrote it, until the informer brings it:
// a sync meanwhile (another change of the pod, the instance's next change)
// starts from it, where the informer's older copy would write again, in
// conflict, or take a pod just given its instance for one without.
func (sw *statusWriter) wrote(pod *corev1.Pod) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.written == nil {
		sw.written = map[string]*corev1.Pod{}
	}
	sw.written[pod.Namespace+"/"+pod.Name] = pod
}

// latest is the newer of pod, the informer's copy of pod key (nil: gone),
// and the one the node last wrote, not to be changed. Once the informer
// has caught up, the node forgets what it wrote.
func (sw *statusWriter) latest(key string, pod *corev1.Pod) *corev1.Pod {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	w := sw.written[key]
	if w == nil {
		return pod
	}
	if pod != nil && w.UID == pod.UID {
		if c, err := resourceversion.CompareResourceVersion(w.ResourceVersion, pod.ResourceVersion); err == nil && c > 0 {
			return w
		}
	}
	delete(sw.written, key)
	return pod
}
