package chart

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// Local is the release a node outside the cluster runs under (spoteci up,
// the tests): the chart's identity alone, approving its own serving
// certificate as the administrator of a local cluster would. Its names are
// the node's defaults (the webhook Secret spoteci-webhook-tls).
func Local(nodeName string) Release {
	return Release{Name: "spoteci", Namespace: "spoteci-system", Values: map[string]any{
		"externalNode": true, "nodeName": nodeName, "kubelet": map[string]any{"approveServingCSR": true}}}
}

// Identity is a node's ServiceAccount, with a kubeconfig that signs in as
// it through a token file kept fresh.
type Identity struct {
	Namespace, ServiceAccount string
	// Kubeconfig is the file to give the node; its token is in TokenFile,
	// which client-go reads again as it changes.
	Kubeconfig, TokenFile string
	admin                 *rest.Config
	ttl                   time.Duration
}

// Install applies r with the rights of the admin kubeconfig file and writes
// a kubeconfig for the ServiceAccount the chart makes at kubeconfig, with a
// token valid for ttl.
func Install(ctx context.Context, adminKubeconfig string, r Release, kubeconfig string, ttl time.Duration) (*Identity, error) {
	admin, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", adminKubeconfig, err)
	}
	objs, err := Render(r)
	if err != nil {
		return nil, err
	}
	if err := Apply(ctx, admin, r.Namespace, objs); err != nil {
		return nil, err
	}
	id := &Identity{Namespace: r.Namespace, Kubeconfig: kubeconfig, TokenFile: kubeconfig + ".token", admin: admin, ttl: ttl}
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" {
			id.ServiceAccount = o.GetName()
		}
	}
	if id.ServiceAccount == "" {
		return nil, fmt.Errorf("the chart made no ServiceAccount")
	}
	if err := id.renew(ctx); err != nil {
		return nil, err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["spoteci"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData, CertificateAuthority: admin.CAFile}
	cfg.AuthInfos[id.ServiceAccount] = &clientcmdapi.AuthInfo{TokenFile: id.TokenFile}
	cfg.Contexts["spoteci"] = &clientcmdapi.Context{Cluster: "spoteci", AuthInfo: id.ServiceAccount, Namespace: r.Namespace}
	cfg.CurrentContext = "spoteci"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return nil, fmt.Errorf("writing %s: %w", kubeconfig, err)
	}
	return id, nil
}

// renew writes a fresh token of the ServiceAccount.
func (id *Identity) renew(ctx context.Context) error {
	kube, err := kubernetes.NewForConfig(id.admin)
	if err != nil {
		return err
	}
	secs := int64(id.ttl / time.Second)
	tr, err := kube.CoreV1().ServiceAccounts(id.Namespace).CreateToken(ctx, id.ServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("a token for %s/%s: %w", id.Namespace, id.ServiceAccount, err)
	}
	return atomicfile.Write(id.TokenFile, []byte(tr.Status.Token), 0o600)
}

// Keep renews the token at half its life until ctx ends, as a kubelet
// renews a pod's projected token.
func (id *Identity) Keep(ctx context.Context, log *slog.Logger) {
	wait := id.ttl / 2
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = id.ttl / 2
		if err := id.renew(ctx); err != nil && ctx.Err() == nil {
			log.Error("renewing the node's token", "err", err)
			wait = time.Minute
		}
	}
}
