package podspec

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// What a kubelet gives a pod from the API, resolved by the node before the
// instance is asked for, since the instance cannot read the cluster: env
// from configMaps, secrets and the downward API, and volumes as files
// (ECI's ConfigFileVolume), service-account tokens included.

// ConfigError is a pod configuration that cannot be resolved now (a missing
// configMap or secret, an unsupported volume): the pod waits, as with a
// kubelet, and the node tries again.
type ConfigError struct {
	reason string // CreateContainerConfigError or FailedMount
	msg    string
}

func (e *ConfigError) Error() string { return e.msg }

// Event is the kubelet's event for it: Failed "Error: ..." for env,
// FailedMount with the failure itself for volumes.
func (e *ConfigError) Event() (reason, message string) {
	if e.reason == reasonConfig {
		return "Failed", "Error: " + e.msg
	}
	return e.reason, e.msg
}

// Waiting is the waiting reason of the pod's containers meanwhile.
func (e *ConfigError) Waiting() string {
	if e.reason == reasonConfig {
		return reasonConfig
	}
	return "ContainerCreating"
}

// defaultTokenExpiry is the life of a projected service-account token that
// does not set one, as the kubelet asks for.
const defaultTokenExpiry = 3600

// sources reads, once per pod, the objects its config refers to.
type sources struct {
	b          *Builder
	ctx        context.Context
	pod        *corev1.Pod
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

// configMap returns the named configMap, nil if it is missing and optional.
func (s *sources) configMap(name string, optional *bool, reason string) (*corev1.ConfigMap, error) {
	if cm, ok := s.configMaps[name]; ok {
		return cm, nil
	}
	if name == rootCAConfigMap {
		if cm, ok := s.b.watched.rootCA(s.pod.Namespace); ok {
			s.configMaps[name] = cm
			return cm, nil
		}
	}
	cm, err := getCached(s.ctx, s.b.kube.CoreV1().ConfigMaps(s.pod.Namespace).Get, name)
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return nil, nil
		}
		return nil, &ConfigError{reason, fmt.Sprintf("configmap %q not found", name)}
	}
	if err != nil {
		return nil, err
	}
	s.configMaps[name] = cm
	return cm, nil
}

// getCached reads an object from the apiserver's watch cache rather than
// from etcd, as a kubelet reads through its informers: the node reads these
// for every pod it starts. One not in the cache yet (made just before the
// pod) is read from etcd.
func getCached[T any](ctx context.Context, get func(context.Context, string, metav1.GetOptions) (T, error), name string) (T, error) {
	obj, err := get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
	if apierrors.IsNotFound(err) {
		return get(ctx, name, metav1.GetOptions{})
	}
	return obj, err
}

// secret returns the named secret, nil if it is missing and optional.
func (s *sources) secret(name string, optional *bool, reason string) (*corev1.Secret, error) {
	if sec, ok := s.secrets[name]; ok {
		return sec, nil
	}
	sec, err := getCached(s.ctx, s.b.kube.CoreV1().Secrets(s.pod.Namespace).Get, name)
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return nil, nil
		}
		return nil, &ConfigError{reason, fmt.Sprintf("secret %q not found", name)}
	}
	if err != nil {
		return nil, err
	}
	s.secrets[name] = sec
	return sec, nil
}

const reasonConfig = "CreateContainerConfigError"

// env is a container's environment as a kubelet builds it: envFrom, then
// env in order with $(VAR) references to earlier variables; the names of the
// variables that are the pod's IP come apart (known at start only).
func (s *sources) env(c corev1.Container) (map[string]string, []string, error) {
	env := s.b.masterServiceEnv(s.ctx)
	service := sortedKeys(env)
	own := map[string]bool{} // the names the pod sets
	var ipEnv []string
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := s.configMap(from.ConfigMapRef.Name, from.ConfigMapRef.Optional, reasonConfig)
			if err != nil {
				return nil, nil, err
			}
			if cm != nil {
				data = cm.Data
			}
		case from.SecretRef != nil:
			sec, err := s.secret(from.SecretRef.Name, from.SecretRef.Optional, reasonConfig)
			if err != nil {
				return nil, nil, err
			}
			if sec != nil {
				data = map[string]string{}
				for k, v := range sec.Data {
					data[k] = string(v)
				}
			}
		}
		for k, v := range data {
			env[from.Prefix+k] = v
			own[from.Prefix+k] = true
		}
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	for _, e := range c.Env {
		own[e.Name] = true
		ipEnv = slices.DeleteFunc(ipEnv, func(n string) bool { return n == e.Name })
		if e.ValueFrom == nil {
			env[e.Name] = expand(e.Value, lookup)
			continue
		}
		v, isIP, err := s.valueFrom(c, e)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case isIP:
			delete(env, e.Name)
			ipEnv = append(ipEnv, e.Name)
		case v != nil:
			env[e.Name] = *v
		}
	}
	if err := s.checkEnvCount(c, len(env)+len(ipEnv), service, own); err != nil {
		return nil, nil, err
	}
	return env, ipEnv, nil
}

// valueFrom resolves one env source; nil for an optional one that is missing.
func (s *sources) valueFrom(c corev1.Container, e corev1.EnvVar) (*string, bool, error) {
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		if p := from.FieldRef.FieldPath; p == "status.podIP" || p == "status.podIPs" {
			return nil, true, nil
		}
		v, err := fieldValue(s.pod, from.FieldRef.FieldPath)
		return &v, false, err
	case from.ResourceFieldRef != nil:
		v, err := resourceValue(c, from.ResourceFieldRef)
		return &v, false, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := s.configMap(ref.Name, ref.Optional, reasonConfig)
		if err != nil || cm == nil {
			return nil, false, err
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if ref.Optional != nil && *ref.Optional {
				return nil, false, nil
			}
			return nil, false, &ConfigError{reasonConfig, fmt.Sprintf("couldn't find key %s in ConfigMap %s/%s", ref.Key, s.pod.Namespace, ref.Name)}
		}
		return &v, false, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		sec, err := s.secret(ref.Name, ref.Optional, reasonConfig)
		if err != nil || sec == nil {
			return nil, false, err
		}
		b, ok := sec.Data[ref.Key]
		if !ok {
			if ref.Optional != nil && *ref.Optional {
				return nil, false, nil
			}
			return nil, false, &ConfigError{reasonConfig, fmt.Sprintf("couldn't find key %s in Secret %s/%s", ref.Key, s.pod.Namespace, ref.Name)}
		}
		v := string(b)
		return &v, false, nil
	}
	return nil, false, &ConfigError{reasonConfig, fmt.Sprintf("env %s: unsupported valueFrom", e.Name)}
}

// fieldValue is a downward API field of the pod.
func fieldValue(pod *corev1.Pod, path string) (string, error) {
	if key, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	return "", &ConfigError{reasonConfig, fmt.Sprintf("unsupported fieldPath %q", path)}
}

// subscript parses prefix['key'].
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// formatMap writes labels or annotations as the downward API does:
// key="value" lines, sorted by key.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%s", k, strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceValue is a container's limit or request, in units of the
// divisor, rounded up, as the downward API gives it.
func resourceValue(c corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	if !ok || (kind != "limits" && kind != "requests") {
		return "", &ConfigError{reasonConfig, fmt.Sprintf("unsupported resource %q", ref.Resource)}
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok && kind == "requests" {
		q, ok = c.Resources.Limits[corev1.ResourceName(name)] // a request defaults to the limit
	}
	if !ok {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	return strconv.FormatInt(int64(math.Ceil(q.AsApproximateFloat64()/divisor.AsApproximateFloat64())), 10), nil
}

// volume turns a pod volume into an ECI volume.
func (s *sources) volume(v corev1.Volume) (eciapi.Volume, error) {
	mount := func(err error) error {
		if ce, ok := err.(*ConfigError); ok {
			return &ConfigError{"FailedMount", fmt.Sprintf("MountVolume.SetUp failed for volume %q : %s", v.Name, ce.msg)}
		}
		return err
	}
	files := func(paths []eciapi.ConfigFileToPath, mode *int32) eciapi.Volume {
		cf := &eciapi.ConfigFileVolume{ConfigFileToPaths: paths, DefaultMode: 0o644}
		if mode != nil {
			cf.DefaultMode = int(*mode)
		}
		return eciapi.Volume{Name: v.Name, Type: eciapi.VolumeConfigFile, ConfigFileVolume: cf}
	}
	switch {
	case v.EmptyDir != nil:
		return eciapi.Volume{Name: v.Name, Type: eciapi.VolumeEmptyDir, EmptyDirVolume: &eciapi.EmptyDirVolume{Medium: string(v.EmptyDir.Medium)}}, nil
	case v.ConfigMap != nil:
		paths, err := s.configMapFiles(v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
		return files(paths, v.ConfigMap.DefaultMode), mount(err)
	case v.Secret != nil:
		paths, err := s.secretFiles(v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
		return files(paths, v.Secret.DefaultMode), mount(err)
	case v.DownwardAPI != nil:
		paths, err := s.downwardFiles(v.DownwardAPI.Items)
		return files(paths, v.DownwardAPI.DefaultMode), mount(err)
	case v.Projected != nil:
		var paths []eciapi.ConfigFileToPath
		for _, p := range v.Projected.Sources {
			var more []eciapi.ConfigFileToPath
			var err error
			switch {
			case p.ConfigMap != nil:
				more, err = s.configMapFiles(p.ConfigMap.Name, p.ConfigMap.Items, p.ConfigMap.Optional)
			case p.Secret != nil:
				more, err = s.secretFiles(p.Secret.Name, p.Secret.Items, p.Secret.Optional)
			case p.DownwardAPI != nil:
				more, err = s.downwardFiles(p.DownwardAPI.Items)
			case p.ServiceAccountToken != nil:
				more, err = s.token(p.ServiceAccountToken)
			default:
				err = &ConfigError{"FailedMount", "unsupported projected source"}
			}
			if err != nil {
				return eciapi.Volume{}, mount(err)
			}
			paths = append(paths, more...)
		}
		return files(paths, v.Projected.DefaultMode), nil
	}
	return eciapi.Volume{}, &ConfigError{"FailedMount", fmt.Sprintf("MountVolume.SetUp failed for volume %q : this volume type is not supported by spot ECI instances (emptyDir, configMap, secret, downwardAPI and projected are)", v.Name)}
}

func (s *sources) configMapFiles(name string, items []corev1.KeyToPath, optional *bool) ([]eciapi.ConfigFileToPath, error) {
	cm, err := s.configMap(name, optional, "FailedMount")
	if err != nil || cm == nil {
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	maps.Copy(data, cm.BinaryData)
	return keyFiles(data, items, optional, "configmap", name)
}

func (s *sources) secretFiles(name string, items []corev1.KeyToPath, optional *bool) ([]eciapi.ConfigFileToPath, error) {
	sec, err := s.secret(name, optional, "FailedMount")
	if err != nil || sec == nil {
		return nil, err
	}
	return keyFiles(sec.Data, items, optional, "secret", name)
}

// keyFiles are the files of a configMap's or secret's keys: all of them, or
// the items asked for.
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, optional *bool, kind, name string) ([]eciapi.ConfigFileToPath, error) {
	var out []eciapi.ConfigFileToPath
	if len(items) == 0 {
		for _, k := range sortedKeys(data) {
			out = append(out, eciapi.ConfigFileToPath{Path: k, Content: base64.StdEncoding.EncodeToString(data[k])})
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, &ConfigError{"FailedMount", fmt.Sprintf("%s %q has no key %q", kind, name, it.Key)}
		}
		f := eciapi.ConfigFileToPath{Path: it.Path, Content: base64.StdEncoding.EncodeToString(v)}
		if it.Mode != nil {
			f.Mode = int(*it.Mode)
		}
		out = append(out, f)
	}
	return out, nil
}

func (s *sources) downwardFiles(items []corev1.DownwardAPIVolumeFile) ([]eciapi.ConfigFileToPath, error) {
	var out []eciapi.ConfigFileToPath
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = fieldValue(s.pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			c := corev1.Container{}
			for _, pc := range s.pod.Spec.Containers {
				if pc.Name == it.ResourceFieldRef.ContainerName {
					c = pc
				}
			}
			v, err = resourceValue(c, it.ResourceFieldRef)
		}
		if err != nil {
			return nil, err
		}
		f := eciapi.ConfigFileToPath{Path: it.Path, Content: base64.StdEncoding.EncodeToString([]byte(v))}
		if it.Mode != nil {
			f.Mode = int(*it.Mode)
		}
		out = append(out, f)
	}
	return out, nil
}

// token asks the API for a token of the pod's service account, bound to the
// pod, with the audience and life asked for: what in-cluster clients send.
func (s *sources) token(p *corev1.ServiceAccountTokenProjection) ([]eciapi.ConfigFileToPath, error) {
	expiry := int64(defaultTokenExpiry)
	if p.ExpirationSeconds != nil {
		expiry = *p.ExpirationSeconds
	}
	var audiences []string
	if p.Audience != "" {
		audiences = []string{p.Audience}
	}
	sa := s.pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := s.b.kube.CoreV1().ServiceAccounts(s.pod.Namespace).CreateToken(s.ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &expiry,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: s.pod.Name, UID: s.pod.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, &ConfigError{"FailedMount", fmt.Sprintf("failed to fetch token: %v", err)}
	}
	// The volume's mode, as a kubelet gives a pod whose containers may run
	// as different users (0644 in kube-api-access): a non-root container
	// reads its token. (A kubelet's 0600 owned by a shared runAsUser needs
	// an owner, which ECI's files do not carry.)
	return []eciapi.ConfigFileToPath{{Path: p.Path, Content: base64.StdEncoding.EncodeToString([]byte(tr.Status.Token))}}, nil
}

// expand replaces $(VAR) by the value of VAR where lookup knows it, and $$
// by $, as Kubernetes expands env values, commands and args.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func expandAll(in []string, lookup func(string) (string, bool)) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, lookup)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// podConfig fills req's volumes and security context, and each container's
// env, mounts and security context.
func (b *Builder) podConfig(ctx context.Context, pod *corev1.Pod, req *eciapi.CreateContainerGroupRequest) error {
	src := &sources{b: b, ctx: ctx, pod: pod, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, v := range pod.Spec.Volumes {
		vol, err := src.volume(v)
		if err != nil {
			return err
		}
		req.Volumes = append(req.Volumes, vol)
	}
	req.SecurityContext = podSecurity(pod)
	for i, c := range pod.Spec.Containers {
		env, ipEnv, err := src.env(c)
		if err != nil {
			return err
		}
		ec := &req.Containers[i]
		ec.SecurityContext = containerSecurity(pod, c)
		lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
		ec.EnvironmentVars = nil
		for _, name := range sortedKeys(env) {
			ec.EnvironmentVars = append(ec.EnvironmentVars, eciapi.EnvironmentVar{Key: name, Value: env[name]})
		}
		for _, name := range ipEnv {
			ec.EnvironmentVars = append(ec.EnvironmentVars, eciapi.EnvironmentVar{Key: name, FieldRef: &eciapi.FieldRef{FieldPath: "status.podIP"}})
		}
		ec.Commands, ec.Args = expandAll(c.Command, lookup), expandAll(c.Args, lookup)
		for _, m := range c.VolumeMounts {
			sub := m.SubPath
			if m.SubPathExpr != "" {
				sub = expand(m.SubPathExpr, lookup)
			}
			ec.VolumeMounts = append(ec.VolumeMounts, eciapi.VolumeMount{Name: m.Name, MountPath: m.MountPath, SubPath: sub, ReadOnly: m.ReadOnly})
		}
	}
	storageRequest(pod, req)
	return nil
}

// masterServiceEnv is the environment a kubelet gives every container for
// the "kubernetes" service, which in-cluster clients use to find the
// apiserver (KUBERNETES_SERVICE_HOST and its kin); empty if it cannot be
// read.
func (b *Builder) masterServiceEnv(ctx context.Context) map[string]string {
	svc, err := b.masterServiceOf(ctx)
	env := map[string]string{}
	if err != nil || svc.Spec.ClusterIP == "" || len(svc.Spec.Ports) == 0 {
		return env
	}
	ip, port := svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port))
	env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = ip, port
	for _, p := range svc.Spec.Ports {
		proto, pn := strings.ToLower(string(p.Protocol)), strconv.Itoa(int(p.Port))
		if p.Name != "" {
			env["KUBERNETES_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = pn
		}
		prefix := "KUBERNETES_PORT_" + pn + "_" + strings.ToUpper(proto)
		env[prefix] = proto + "://" + ip + ":" + pn
		env[prefix+"_PROTO"], env[prefix+"_PORT"], env[prefix+"_ADDR"] = proto, pn, ip
	}
	env["KUBERNETES_PORT"] = strings.ToLower(string(svc.Spec.Ports[0].Protocol)) + "://" + ip + ":" + port
	return env
}

// Credentials reads the pod's imagePullSecrets as registry logins,
// as a kubelet does: each is a kubernetes.io/dockerconfigjson (or
// dockercfg) secret in the pod's namespace.
func (b *Builder) Credentials(ctx context.Context, pod *corev1.Pod) ([]eciapi.ImageRegistryCredential, error) {
	var out []eciapi.ImageRegistryCredential
	for _, ref := range pod.Spec.ImagePullSecrets {
		secret, err := getCached(ctx, b.kube.CoreV1().Secrets(pod.Namespace).Get, ref.Name)
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

// masterServiceOf is the "kubernetes" Service: from the watch, else read.
func (b *Builder) masterServiceOf(ctx context.Context) (*corev1.Service, error) {
	if svc, ok := b.watched.service(); ok {
		return svc, nil
	}
	return getCached(ctx, b.kube.CoreV1().Services(metav1.NamespaceDefault).Get, masterService)
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
