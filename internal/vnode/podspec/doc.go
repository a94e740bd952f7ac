// Package podspec turns a pod into the instance the node asks the cloud
// for: an eci.CreateContainerGroupRequest (Builder.Request) with what a
// kubelet reads from the API for the pod resolved into it, since an
// instance cannot read the cluster: env from configMaps, secrets and the
// downward API, the "kubernetes" Service's env, volumes as files
// (service-account tokens included), the security context, the ephemeral
// storage, and the image pull secrets as registry logins
// (Builder.Credentials). It says why a pod cannot be asked for: a field
// that reaches into the host or a security setting an instance cannot
// honour (ForbiddenField), a sysctl outside the safe set
// (ForbiddenSysctl), and a config that cannot be resolved now
// (*ConfigError, with the kubelet's event and waiting reason).
//
// What nearly every pod reads (the "kubernetes" Service, kube-root-ca.crt)
// is kept by watches for a leadership term (Builder.Start); the rest is
// read per pod from the apiserver's watch cache.
package podspec
