package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// NodeRepo is the node's image as the Helm chart names it by default:
// spoteci/spoteci at the chart's appVersion (charts/spoteci/Chart.yaml).
const NodeRepo = "spoteci/spoteci:0.1.0"

// caBundle is Debian's CA certificates, for the node's HTTPS calls to
// Alibaba Cloud.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// nodeUID runs the node: not root (the chart asks for runAsNonRoot).
const nodeUID = "65532"

// nodeStamp is the running binary's digest: each build of spoteci makes a
// new image of itself.
func nodeStamp() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "spoteci/1 sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// fillNode lays out /usr/local/bin/spoteci (this very binary, which must
// be static: make builds it with CGO_ENABLED=0), the CA certificates, a
// nonroot user and /tmp; the image runs `spoteci` as that user.
func fillNode(ctx context.Context, b *builder) (v1.Config, error) {
	exe, err := os.Executable()
	if err != nil {
		return v1.Config{}, err
	}
	if err := checkStatic(exe, "build it with CGO_ENABLED=0 (make build does)"); err != nil {
		return v1.Config{}, err
	}
	for _, d := range []string{"usr/local/bin", "etc/ssl/certs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(b.rootfs, d), 0o755); err != nil {
			return v1.Config{}, err
		}
	}
	if err := os.Chmod(filepath.Join(b.rootfs, "tmp"), os.ModeSticky|0o777); err != nil {
		return v1.Config{}, err
	}
	if err := copyFile(exe, filepath.Join(b.rootfs, "usr/local/bin/spoteci"), 0o755); err != nil {
		return v1.Config{}, err
	}
	if err := copyFile(caBundle, filepath.Join(b.rootfs, "etc/ssl/certs/ca-certificates.crt"), 0o644); err != nil {
		return v1.Config{}, fmt.Errorf("CA certificates: %w", err)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:" + nodeUID + ":" + nodeUID + ":nonroot:/tmp:/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnonroot:x:" + nodeUID + ":\n",
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(b.rootfs, p), []byte(content), 0o644); err != nil {
			return v1.Config{}, err
		}
	}
	b.logf("%s as /usr/local/bin/spoteci, user %s", exe, nodeUID)
	return v1.Config{Env: []string{PathEnv}, Entrypoint: []string{"/usr/local/bin/spoteci"}, User: nodeUID + ":" + nodeUID}, nil
}
