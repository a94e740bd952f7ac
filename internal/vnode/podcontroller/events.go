package podcontroller

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
	"k8s.io/client-go/tools/record"

	"github.com/spoteci/spoteci/internal/vnode/provider"
)

// events sends the node's events about pods and Jobs, each once: what
// this node sent it remembers, what earlier terms sent it reads back.
type events struct {
	record.EventRecorder // the term's
	kube                 kubernetes.Interface
	log                  *slog.Logger
	termStart            time.Time   // when this node began to act, in its latest term
	past                 *pastEvents // of earlier terms, read as needed in this one
	mu                   sync.Mutex
	emitted              map[string]bool // uid/reason of events sent
	forwarded            map[types.UID]map[string]bool
}

func newEvents(kube kubernetes.Interface, log *slog.Logger) *events {
	return &events{kube: kube, log: log, past: newPastEvents(), emitted: map[string]bool{},
		forwarded: map[types.UID]map[string]bool{}}
}

// startTerm forgets what earlier terms sent: it is read again as needed.
func (ev *events) startTerm(now time.Time) {
	ev.termStart = now
	ev.past = newPastEvents()
}

func newPastEvents() *pastEvents { return &pastEvents{byNS: map[string]*namespaceEvents{}} }

// clockSkew is how far the apiserver's clock may run ahead of the node's:
// a pod made more than that after the node began to lead was made in its
// term, and no earlier term forwarded it anything.
const clockSkew = time.Minute

// pastEvents are the events of earlier terms, per namespace, by the object
// they are about: read once a namespace a term, the first time one of its
// pods or Jobs needs them. A field selector filters the namespace's events,
// it does not index them: asked per object, a node restart at 10,000 pods,
// or a storm of warnings, would scan tens of thousands of events 10,000
// times. What this term sends, the node remembers itself (forwarded,
// emitted).
type pastEvents struct {
	mu   sync.Mutex
	byNS map[string]*namespaceEvents
}

type namespaceEvents struct {
	mu    sync.Mutex
	read  bool
	byUID map[types.UID]map[string]bool // eventKey(reason, message), and reason alone
}

func eventKey(reason, message string) string { return reason + "\x00" + message }

// forwardContainerEvents sends the instance's container events (Pulling,
// Pulled, Created, Started, Failed, BackOff, Killing) to the pod as a kubelet
// does, each once: the node remembers what it sent, and after a restart
// first reads what the pod already has.
func (ev *events) forwardContainerEvents(ctx context.Context, pod *corev1.Pod, in *provider.Instance) {
	var todo []provider.Event
	ev.mu.Lock()
	sent, known := ev.forwarded[pod.UID]
	ev.mu.Unlock()
	for _, e := range in.Events {
		if e.Container != "" && !sent[eventKey(e.Reason, e.Message)] {
			todo = append(todo, e)
		}
	}
	if len(todo) == 0 {
		return
	}
	switch {
	case known:
	case pod.CreationTimestamp.Time.After(ev.termStart.Add(clockSkew)):
		sent = map[string]bool{} // made in this term: no one sent it anything before
	default:
		if sent = maps.Clone(ev.pastEventsOf(ctx, pod.Namespace, pod.UID)); sent == nil {
			sent = map[string]bool{}
		}
	}
	for _, e := range todo {
		key := eventKey(e.Reason, e.Message)
		if sent[key] {
			continue
		}
		sent[key] = true
		ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, FieldPath: fmt.Sprintf("spec.containers{%s}", e.Container)}
		ev.Event(ref, e.Type, e.Reason, e.Message)
	}
	ev.mu.Lock()
	ev.forwarded[pod.UID] = sent
	ev.mu.Unlock()
}

// pastEventsOf is what earlier terms sent about object uid of namespace ns,
// not to be changed; nil when nothing, or when the events cannot be read
// (an event may then be sent twice, never lost).
func (ev *events) pastEventsOf(ctx context.Context, ns string, uid types.UID) map[string]bool {
	p := ev.past
	p.mu.Lock()
	e := p.byNS[ns]
	if e == nil {
		e = &namespaceEvents{}
		p.byNS[ns] = e
	}
	p.mu.Unlock()
	e.mu.Lock() // those who need the namespace meanwhile wait for its one reading
	defer e.mu.Unlock()
	if !e.read {
		byUID, err := ev.readEvents(ctx, ns)
		if err != nil {
			ev.log.Warn("reading the events of earlier terms", "namespace", ns, "err", err)
			return nil
		}
		e.byUID, e.read = byUID, true
	}
	return e.byUID[uid]
}

// readEvents reads the events the node's recorder writes ("kubelet, eci")
// in namespace ns, a page at a time.
func (ev *events) readEvents(ctx context.Context, ns string) (map[types.UID]map[string]bool, error) {
	byUID := map[types.UID]map[string]bool{}
	list := pager.New(pager.SimplePageFunc(func(opts metav1.ListOptions) (runtime.Object, error) {
		return ev.kube.CoreV1().Events(ns).List(ctx, opts)
	}))
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("source", "kubelet").String()}
	err := list.EachListItem(ctx, opts, func(obj runtime.Object) error {
		e, ok := obj.(*corev1.Event)
		if !ok {
			return fmt.Errorf("an event list held a %T", obj)
		}
		seen := byUID[e.InvolvedObject.UID]
		if seen == nil {
			seen = map[string]bool{}
			byUID[e.InvolvedObject.UID] = seen
		}
		seen[eventKey(e.Reason, e.Message)], seen[e.Reason] = true, true
		return nil
	})
	return byUID, err
}

// forget drops what the node keeps of a pod that is gone.
func (ev *events) forget(uid types.UID) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	delete(ev.forwarded, uid)
}

// warnOnce sends a Warning event the first time, also across node restarts:
// the events of earlier terms are looked up before the first one of a
// reason.
func (ev *events) warnOnce(ctx context.Context, obj object, reason, message string) {
	if ev.warned(obj.GetUID(), reason, true) || ev.pastEventsOf(ctx, obj.GetNamespace(), obj.GetUID())[reason] {
		return
	}
	ev.Event(obj, corev1.EventTypeWarning, reason, message)
}

// warned says whether the Warning of reason was sent about uid already;
// with mark, it counts as sent from now on.
func (ev *events) warned(uid types.UID, reason string, mark bool) bool {
	key := string(uid) + "/" + reason
	ev.mu.Lock()
	defer ev.mu.Unlock()
	done := ev.emitted[key]
	if mark {
		ev.emitted[key] = true
	}
	return done
}
