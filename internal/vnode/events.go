package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/pager"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// forwardContainerEvents sends the instance's container events (Pulling,
// Pulled, Created, Started, Failed, BackOff, Killing) to the pod as a kubelet
// does, each once: the node remembers what it sent, and after a restart
// first reads what the pod already has.
func (n *Node) forwardContainerEvents(ctx context.Context, pod *corev1.Pod, in *provider.Instance) {
	var todo []provider.Event
	n.mu.Lock()
	sent, known := n.forwarded[pod.UID]
	n.mu.Unlock()
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
	case pod.CreationTimestamp.Time.After(n.termStart.Add(clockSkew)):
		sent = map[string]bool{} // made in this term: no one sent it anything before
	default:
		if sent = maps.Clone(n.pastEventsOf(ctx, pod.Namespace, pod.UID)); sent == nil {
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
		n.recorder.Event(ref, e.Type, e.Reason, e.Message)
	}
	n.mu.Lock()
	n.forwarded[pod.UID] = sent
	n.mu.Unlock()
}

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

// pastEventsOf is what earlier terms sent about object uid of namespace ns,
// not to be changed; nil when nothing, or when the events cannot be read
// (an event may then be sent twice, never lost).
func (n *Node) pastEventsOf(ctx context.Context, ns string, uid types.UID) map[string]bool {
	p := n.past
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
		byUID, err := n.readEvents(ctx, ns)
		if err != nil {
			n.log.Warn("reading the events of earlier terms", "namespace", ns, "err", err)
			return nil
		}
		e.byUID, e.read = byUID, true
	}
	return e.byUID[uid]
}

// readEvents reads the events the node's recorder writes ("kubelet, eci")
// in namespace ns, a page at a time.
func (n *Node) readEvents(ctx context.Context, ns string) (map[types.UID]map[string]bool, error) {
	byUID := map[types.UID]map[string]bool{}
	list := pager.New(pager.SimplePageFunc(func(opts metav1.ListOptions) (runtime.Object, error) {
		return n.kube.CoreV1().Events(ns).List(ctx, opts)
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

func eventKey(reason, message string) string { return reason + "\x00" + message }

// forget drops what the node keeps of a pod that is gone.
func (n *Node) forget(uid types.UID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.forwarded, uid)
}

// registryCredentials reads the pod's imagePullSecrets as registry logins,
// as a kubelet does: each is a kubernetes.io/dockerconfigjson (or
// dockercfg) secret in the pod's namespace.
func (n *Node) registryCredentials(ctx context.Context, pod *corev1.Pod) ([]eciapi.ImageRegistryCredential, error) {
	var out []eciapi.ImageRegistryCredential
	for _, ref := range pod.Spec.ImagePullSecrets {
		secret, err := getCached(ctx, n.kube.CoreV1().Secrets(pod.Namespace).Get, ref.Name)
		if err != nil {
			//lint:ignore ST1005 the kubelet's own words, as kubectl describe shows them
			return out, fmt.Errorf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed: %w", ref.Name, err)
		}
		auths := map[string]dockerAuth{}
		switch secret.Type {
		case corev1.SecretTypeDockerConfigJson:
			var cfg struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			if err := json.Unmarshal(secret.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
				return out, fmt.Errorf("image pull secret %s: %w", ref.Name, err)
			}
			auths = cfg.Auths
		case corev1.SecretTypeDockercfg:
			if err := json.Unmarshal(secret.Data[corev1.DockerConfigKey], &auths); err != nil {
				return out, fmt.Errorf("image pull secret %s: %w", ref.Name, err)
			}
		default:
			return out, fmt.Errorf("image pull secret %s is of type %s, not %s", ref.Name, secret.Type, corev1.SecretTypeDockerConfigJson)
		}
		for server, a := range auths {
			user, pass := a.credentials()
			out = append(out, eciapi.ImageRegistryCredential{Server: server, UserName: user, Password: pass})
		}
	}
	return out, nil
}

// dockerAuth is one entry of a Docker config file.
type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     []byte `json:"auth"` // base64 of user:password
}

func (a dockerAuth) credentials() (string, string) {
	if a.Username != "" || a.Password != "" {
		return a.Username, a.Password
	}
	for i, c := range a.Auth {
		if c == ':' {
			return string(a.Auth[:i]), string(a.Auth[i+1:])
		}
	}
	return "", ""
}
