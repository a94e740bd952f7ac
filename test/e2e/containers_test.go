package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/util/cert"

	"github.com/spoteci/spoteci/internal/pki"
	"github.com/spoteci/spoteci/test/testimage"
)

// 10. What a kubelet gives a pod, through the real kubectl: exec with output
// and exit code, the cgroup limits of the instance type, configMap and
// secret in volumes and env, the downward API, the service-account token
// against the apiserver, the pod IP from the host.
func TestPodEssentials(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	apply(t, ns, `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello from a configMap
  app.conf: |
    mode=spot
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cret
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
  annotations:
    k8s.aliyun.com/eci-use-specs: ecs.c5.large
    k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo served-by-$(hostname) > /tmp/index.html; httpd -f -p 8080 -h /tmp"]
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef: {name: settings, key: greeting}
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {name: creds, key: password}
    - name: MY_POD
      valueFrom:
        fieldRef: {fieldPath: metadata.name}
    - name: MY_IP
      valueFrom:
        fieldRef: {fieldPath: status.podIP}
    - name: ECHO
      value: "$(MY_POD) says $(GREETING)"
    envFrom:
    - prefix: CM_
      configMapRef: {name: settings}
    volumeMounts:
    - {name: config, mountPath: /etc/app}
    - {name: secret, mountPath: /etc/creds}
    - {name: info, mountPath: /etc/info}
  volumes:
  - name: config
    configMap: {name: settings}
  - name: secret
    secret: {secretName: creds}
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef: {fieldPath: metadata.labels}
`)
	waitPodRunning(t, ns, "web")
	exec := func(args ...string) string {
		return kubectl(t, append([]string{"-n", ns, "exec", "web", "--"}, args...)...)
	}
	// The instance type's limits, read inside the container.
	if got := exec("cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); got != "4294967296\n200000\n" {
		t.Errorf("cgroup limits inside ecs.c5.large: %q, want 4 GiB and 2 vCPU", got)
	}
	// Exit codes and stderr come back through kubectl exec.
	out, err := kubectlErr("-n", ns, "exec", "web", "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
	if code := exitCode(err); code != 7 || !strings.Contains(out, "to-stdout") || !strings.Contains(out, "to-stderr") {
		t.Errorf("kubectl exec exit %d (%v), output %q; want 7 with both streams", code, err, out)
	}
	// Stdin.
	cmd := execKubectl("-n", ns, "exec", "-i", "web", "--", "tr", "a-z", "A-Z")
	cmd.Stdin = strings.NewReader("shout\n")
	if got, err := cmd.CombinedOutput(); err != nil || string(got) != "SHOUT\n" {
		t.Errorf("kubectl exec -i: %q, %v", got, err)
	}
	env := exec("env")
	t.Logf("env:\n%s", env)
	podIP := kubectl(t, "-n", ns, "get", "pod", "web", "-o", "jsonpath={.status.podIP}")
	for _, want := range []string{"GREETING=hello from a configMap", "PASSWORD=s3cret", "MY_POD=web", "MY_IP=" + podIP,
		"ECHO=web says hello from a configMap", "CM_greeting=hello from a configMap", "KUBERNETES_SERVICE_HOST=10.0.0.1", "HOSTNAME=web"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	// The labels include the node's region, which the apiserver copies to
	// a pod at binding (the PodTopologyLabels admission plugin).
	if got := exec("cat", "/etc/app/app.conf", "/etc/creds/password", "/etc/info/labels"); got != "mode=spot\ns3cret"+`app="web"`+"\n"+`topology.kubernetes.io/region="cn-hangzhou"` {
		t.Errorf("volumes hold %q", got)
	}
	if ca := exec("cat", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"); !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Errorf("no CA in the service-account volume: %q", ca)
	}
	// The pod IP answers from the host.
	resp, err := http.Get("http://" + podIP + ":8080/index.html")
	if err != nil {
		t.Fatalf("GET the pod IP %s from the host: %v", podIP, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "served-by-web\n" {
		t.Errorf("the pod answered %q", body)
	}
	// The kubelet's resource endpoints, where metrics-server scrapes them (the
	// apiserver's node proxy refuses loopback addresses).
	summary := kubeletGet(t, "/stats/summary")
	if !strings.Contains(summary, `"name":"web","namespace":"`+ns+`"`) || !strings.Contains(summary, `"workingSetBytes"`) {
		t.Errorf("/stats/summary lacks the pod's stats:\n%s", tail(summary, 2000))
	}
	resource := kubeletGet(t, "/metrics/resource")
	if !strings.Contains(resource, `container_cpu_usage_seconds_total{container="main",namespace="`+ns+`",pod="web"}`) {
		t.Errorf("/metrics/resource lacks the container's CPU:\n%s", tail(resource, 2000))
	}
	if running := kubeletGet(t, "/runningpods/"); !strings.Contains(running, `"name":"web"`) {
		t.Errorf("/runningpods/ lacks web:\n%s", tail(running, 1000))
	}
	// kubectl logs of a container.
	if logs := kubectl(t, "-n", ns, "logs", "web", "-c", "main", "--tail=5"); strings.Contains(logs, "error") {
		t.Errorf("logs: %q", logs)
	}
}

// 13. An in-cluster client (client-go's InClusterConfig, from an image loaded
// with spoteci image load) reaches the apiserver from an instance with the
// pod's service-account token, verifying the apiserver's certificate.
func TestInClusterClient(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	archive := whoamiImage(t)
	spoteci(t, "image", "load", archive, "--name", "whoami:e2e")
	apply(t, ns, `apiVersion: batch/v1
kind: Job
metadata:
  name: whoami
spec:
  template:
    metadata:
      annotations:
        k8s.aliyun.com/eci-use-specs: ecs.c5.large
        k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo
    spec:
      containers:
      - name: whoami
        image: whoami:e2e
      restartPolicy: Never
`)
	eventually(t, 60*time.Second, "whoami Complete", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "whoami")
		return strings.Contains(out, "Complete"), out + kubectl(t, "-n", ns, "logs", "job/whoami")
	})
	if got, want := kubectl(t, "-n", ns, "logs", "job/whoami"), "system:serviceaccount:"+ns+":default\n"; got != want {
		t.Errorf("whoami from inside the instance: %q, want %q", got, want)
	}
}

// whoamiImage builds the whoami client into an image archive.
func whoamiImage(t *testing.T) string {
	t.Helper()
	archive, err := testimage.Build(t.TempDir(), "github.com/spoteci/spoteci/test/e2e/whoami", "whoami:e2e")
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

// 11. Bad images wait with the kubelet's reasons and events; an OOM kill
// shows as OOMKilled 137; a missing configMap is CreateContainerConfigError;
// host namespaces are refused naming the field.
func TestContainerFailures(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	pod := func(name, image, command, extra string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations:
    k8s.aliyun.com/eci-use-specs: "2-4Gi"
spec:
  restartPolicy: Never
%s  containers:
  - name: main
    image: %s
    command: ["sh", "-c", %q]
`, name, extra, image, command)
	}
	apply(t, ns, pod("missing", "busybox:no-such-tag", "true", ""))
	apply(t, ns, pod("loopback", "127.0.0.1:1/busybox:1", "true", ""))
	apply(t, ns, pod("hog", "busybox", `x=$(head -c 3000000000 /dev/zero | tr "\\0" a)`, ""))
	apply(t, ns, pod("hostnet", "busybox", "true", "  hostNetwork: true\n"))
	apply(t, ns, strings.Replace(pod("noconfig", "busybox", "true", ""), "    command:", "    envFrom:\n    - configMapRef: {name: absent}\n    command:", 1))
	for _, c := range []struct{ pod, reason, message string }{
		{"missing", "ImagePullBackOff", "busybox:no-such-tag"},
		// Not the local registry: refused without connecting.
		{"loopback", "ErrImagePull|ImagePullBackOff", "registry 127.0.0.1:1 is not allowed: only the local registry"},
		{"noconfig", "CreateContainerConfigError", `configmap "absent" not found`},
		{"hostnet", "ForbiddenPodSpec", "spec.hostNetwork: Forbidden"},
	} {
		eventually(t, 60*time.Second, c.pod+" waiting with "+c.reason, func() (bool, string) {
			out := kubectl(t, "-n", ns, "get", "pod", c.pod, "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}")
			reason, msg, _ := strings.Cut(out, " ")
			return strings.Contains("|"+c.reason+"|", "|"+reason+"|") && strings.Contains(msg, c.message), out
		})
	}
	events := kubectl(t, "-n", ns, "get", "events", "-o", "custom-columns=OBJ:.involvedObject.name,REASON:.reason,MESSAGE:.message")
	for _, want := range []string{`Failed to pull image "busybox:no-such-tag"`, `Back-off pulling image "busybox:no-such-tag"`, `Error: configmap "absent" not found`, "spec.hostNetwork: Forbidden"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	eventually(t, 3*time.Minute, "hog OOMKilled", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "hog", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}")
		return out == "OOMKilled 137", out
	})
}

// 12. kill -9 of the service mid-run: the restarted service adopts every
// running container (same start time, same process), records the exits
// that happened meanwhile, and makes no duplicate.
func TestKill9Adopts(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	ann := map[string]string{specs: "ecs.g7.large", strategy: "SpotAsPriceGo"}
	apply(t, ns, podManifest("long", ann))
	apply(t, ns, strings.Replace(podManifest("short", ann), loop, "sleep 3; exit 3", 1))
	waitPodRunning(t, ns, "long")
	waitPodRunning(t, ns, "short")
	before := kubectl(t, "-n", ns, "get", "pod", "long", "-o", "jsonpath={.status.containerStatuses[0].state.running.startedAt}")
	env.server.cmd.Process.Signal(syscall.SIGKILL)
	env.server.cmd.Wait()
	time.Sleep(4 * time.Second) // short ends while the service is away
	env.server = startServer()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", tail(env.server.logs.String(), 4000))
		}
	})
	eventually(t, 60*time.Second, "short's exit recorded", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "short", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.terminated.exitCode}")
		return out == "Failed 3", out
	})
	after := kubectl(t, "-n", ns, "get", "pod", "long", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.running.startedAt}")
	if after != "Running "+before {
		t.Errorf("long after the kill -9: %q, want Running since %s", after, before)
	}
	if g := groups(t, ns); len(g) != 2 {
		t.Errorf("%d instances, want 2 (long and short): a duplicate was made", len(g))
	}
	if out := kubectl(t, "-n", ns, "exec", "long", "--", "echo", "adopted"); out != "adopted\n" {
		t.Errorf("exec into the adopted container: %q", out)
	}
}

// kubeletGet reads a path of the virtual node's kubelet API, at the port
// its Node object advertises, as the cluster's admin (its client
// certificate).
func kubeletGet(t *testing.T, path string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(env.cluster.StateDir(), "pki", "admin.crt"), filepath.Join(env.cluster.StateDir(), "pki", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	status, body := kubeletRequest(t, path, &tls.Config{Certificates: []tls.Certificate{cert}}, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d: %s", path, status, body)
	}
	return body
}

// kubeletRequest GETs a path of the kubelet port with a TLS client config
// and a bearer token (either may be empty).
func kubeletRequest(t *testing.T, path string, cfg *tls.Config, token string) (int, string) {
	t.Helper()
	port := kubectl(t, "get", "node", "virtual-kubelet-spoteci", "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}")
	cfg.InsecureSkipVerify = true // the node's serving certificate is its own
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+port+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s from the kubelet port: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The kubelet port is a kubelet's (issue 11): no credential gets 401, a
// certificate of another CA 401, a user without the right on the node's
// subresource 403, one with it 200; kubectl logs goes through the
// apiserver's own client certificate.
func TestKubeletPortAuth(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	apply(t, ns, podManifest("guarded", map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}))
	waitPodRunning(t, ns, "guarded")
	logs := "/containerLogs/" + ns + "/guarded/main"

	if status, body := kubeletRequest(t, logs, &tls.Config{}, ""); status != http.StatusUnauthorized {
		t.Errorf("no credential: %d %s, want 401", status, body)
	}
	stranger, err := selfSignedClient("stranger")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := kubeletRequest(t, logs, &tls.Config{Certificates: []tls.Certificate{stranger}}, ""); status != http.StatusUnauthorized {
		t.Errorf("a certificate of another CA: %d %s, want 401", status, body)
	}
	kubectl(t, "-n", ns, "create", "serviceaccount", "nobody")
	kubectl(t, "-n", ns, "create", "serviceaccount", "reader")
	role := ns + "-node-proxy"
	kubectl(t, "create", "clusterrole", role, "--verb=get,create", "--resource=nodes/proxy")
	kubectl(t, "create", "clusterrolebinding", role, "--clusterrole="+role, "--serviceaccount="+ns+":reader")
	t.Cleanup(func() { kubectlErr("delete", "clusterrolebinding,clusterrole", role) })
	token := func(sa string) string { return strings.TrimSpace(kubectl(t, "-n", ns, "create", "token", sa)) }
	status, body := kubeletRequest(t, logs, &tls.Config{}, token("nobody"))
	if want := "user=system:serviceaccount:" + ns + ":nobody, verb=get, resource=nodes, subresource=proxy"; status != http.StatusForbidden || !strings.Contains(body, want) {
		t.Errorf("a user without nodes/proxy: %d %s, want 403 naming %s", status, body, want)
	}
	reader := token("reader")
	eventually(t, 10*time.Second, "the reader reads the log", func() (bool, string) {
		status, body := kubeletRequest(t, logs, &tls.Config{}, reader)
		return status == http.StatusOK && strings.Contains(body, "started"), fmt.Sprint(status, " ", body)
	})
	if out := kubectl(t, "-n", ns, "logs", "guarded"); !strings.Contains(out, "started") {
		t.Errorf("kubectl logs through the apiserver: %q", out)
	}
	// The port's certificate is the cluster's (CSR signer
	// kubernetes.io/kubelet-serving), for system:node:<name> and the node's
	// address: the apiserver verifies it (--kubelet-certificate-authority).
	caPEM, err := os.ReadFile(filepath.Join(env.cluster.StateDir(), "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	port := kubectl(t, "get", "node", "virtual-kubelet-spoteci", "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}")
	conn, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("the kubelet port's certificate is not the cluster's: %v", err)
	}
	defer conn.Close()
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "system:node:virtual-kubelet-spoteci" {
		t.Errorf("serving certificate for %q", cn)
	}
}

// The seeds' label, as ACK reads it (issue 11): a pod labelled
// alibabacloud.com/eci: "true", or made in a namespace so labelled, gets the
// virtual node's toleration and node selector from the admission webhook
// and runs there; a pod without it is left as it is.
func TestECILabel(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	routed := func(name string) (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", name, "-o", "jsonpath={.spec.nodeSelector.type} {.spec.tolerations[?(@.key==\"virtual-kubelet.io/provider\")].value}")
		return out == "virtual-kubelet spoteci", out
	}
	labelled := strings.Replace(podManifest("labelled", nil), "metadata:\n", "metadata:\n  labels:\n    alibabacloud.com/eci: \"true\"\n", 1)
	apply(t, ns, labelled)
	apply(t, ns, podManifest("plain", nil))
	if ok, got := routed("labelled"); !ok {
		t.Errorf("a labelled pod's selector and toleration: %q", got)
	}
	waitPodRunning(t, ns, "labelled")
	if ok, got := routed("plain"); ok || got != " " {
		t.Errorf("a pod without the label was changed: %q", got)
	}
	kubectl(t, "label", "namespace", ns, "alibabacloud.com/eci=true")
	apply(t, ns, podManifest("in-labelled-ns", nil))
	if ok, got := routed("in-labelled-ns"); !ok {
		t.Errorf("a pod of a labelled namespace: %q", got)
	}
}

// selfSignedClient is a client certificate no cluster knows.
func selfSignedClient(cn string) (tls.Certificate, error) {
	c, err := pki.SelfSigned(pki.Spec{Config: cert.Config{CommonName: cn, Organization: []string{"system:masters"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Minute)}, NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		return tls.Certificate{}, err
	}
	return *c, nil
}

func execKubectl(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(env.bin, "kubectl"), append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// 14. restartPolicy OnFailure restarts a failed container in place after
// the kubelet's back-off: RESTARTS counts it, the last state keeps the
// failure, kubectl logs --previous shows the failed run.
func TestRestartOnFailure(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	apply(t, ns, `apiVersion: batch/v1
kind: Job
metadata:
  name: flaky
spec:
  backoffLimit: 3
  template:
    metadata:
      annotations:
        k8s.aliyun.com/eci-use-specs: ecs.c5.large
    spec:
      restartPolicy: OnFailure
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "if [ -e /work/ran ]; then echo second run; sleep 2; exit 0; fi; touch /work/ran; echo first run; exit 3"]
        volumeMounts:
        - {name: work, mountPath: /work}
      volumes:
      - name: work
        emptyDir: {}
`)
	eventually(t, 60*time.Second, "the restarted container running", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "-l", "job-name=flaky", "-o", "jsonpath={.items[0].status.containerStatuses[0].restartCount} {.items[0].status.containerStatuses[0].lastState.terminated.exitCode}")
		return out == "1 3", out
	})
	if out := kubectl(t, "-n", ns, "logs", "job/flaky", "--previous"); out != "first run\n" {
		t.Errorf("kubectl logs --previous: %q", out)
	}
	eventually(t, 60*time.Second, "flaky Complete", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "flaky")
		return strings.Contains(out, "Complete"), out
	})
	if out := kubectl(t, "-n", ns, "get", "pod", "-l", "job-name=flaky"); !strings.Contains(out, "Completed   1 ") {
		t.Errorf("kubectl get pod shows no restart:\n%s", out)
	}
	if out := kubectl(t, "-n", ns, "logs", "job/flaky"); out != "second run\n" {
		t.Errorf("kubectl logs: %q", out)
	}
}
