package cluster

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// writeKubeconfig writes a kubeconfig for one of the client identities in p,
// with the certificates inlined so the file can be copied elsewhere.
func writeKubeconfig(path, server string, p pkiFiles, identity string) error {
	var b64 [3]string
	for i, f := range []string{p.cert("ca"), p.cert(identity), p.key(identity)} {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		b64[i] = base64.StdEncoding.EncodeToString(data)
	}
	r := strings.NewReplacer(
		"$SERVER", server, "$USER", identity,
		"$CA", b64[0], "$CERT", b64[1], "$KEY", b64[2])
	return atomicfile.Write(path, []byte(r.Replace(kubeconfigTemplate)), 0o600)
}

const kubeconfigTemplate = `apiVersion: v1
kind: Config
clusters:
- name: spoteci
  cluster:
    server: $SERVER
    certificate-authority-data: $CA
users:
- name: $USER
  user:
    client-certificate-data: $CERT
    client-key-data: $KEY
contexts:
- name: spoteci
  context:
    cluster: spoteci
    user: $USER
current-context: spoteci
`
