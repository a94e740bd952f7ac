package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// forwardContainerEvents sends the instance's container events (Pulling,
// Pulled, Created, Started, Failed, BackOff, Killing) to the pod as a kubelet
// does, each once: the node remembers what it sent, and after a restart
// first reads what the pod already has.
func (n *Node) forwardContainerEvents(ctx context.Context, pod *corev1.Pod, in *Instance) {
	var todo []Event
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
		sent = n.podEvents(ctx, pod)
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
// term, and no earlier term forwarded it anything. (Listing a pod's events
// scans its namespace's: in a reclaim storm, thousands per pod.)
const clockSkew = time.Minute

// podEvents reads the reasons and messages of the events the pod has.
func (n *Node) podEvents(ctx context.Context, pod *corev1.Pod) map[string]bool {
	seen := map[string]bool{}
	sel := fields.Set{"involvedObject.uid": string(pod.UID)}.AsSelector().String()
	if list, err := n.kube.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel}); err == nil {
		for _, e := range list.Items {
			seen[eventKey(e.Reason, e.Message)] = true
		}
	}
	return seen
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
