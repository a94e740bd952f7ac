package podspec

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The objects nearly every pod's config reads, each one by name.
const (
	// rootCAConfigMap is the cluster's CA in every namespace, a source of
	// the projected service-account volume (kube-api-access-*).
	rootCAConfigMap = "kube-root-ca.crt"
	// masterService is the Service of the KUBERNETES_SERVICE_* env.
	masterService = "kubernetes"
)

// watched keeps, by watches, what nearly every pod's config reads, where
// the node would otherwise read it once a pod: the "kubernetes" Service and
// each namespace's kube-root-ca.crt. A kubelet keeps them the same way (a
// service lister, and a watch per configMap its pods mount). Each is
// watched by name, with a metadata.name field selector, which RBAC grants
// by resourceNames: the node may list and watch these and no other
// configMap or Service. The configMaps and secrets users name are still
// read per pod, from the apiserver's watch cache: watching them would need
// the right to list every configMap and secret in the cluster.
type watched struct {
	services       corelisters.ServiceLister
	rootCAs        corelisters.ConfigMapLister
	servicesSynced cache.InformerSynced
	rootCAsSynced  cache.InformerSynced
}

// watchedSyncWait bounds how long a term waits for the watches before it
// starts: pods are served meanwhile by reads, as without them.
const watchedSyncWait = 10 * time.Second

// startWatched starts the watches until ctx ends or stop, which waits for
// them, is called.
func startWatched(ctx context.Context, kube kubernetes.Interface) (w *watched, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	byName := func(name string) informers.SharedInformerOption {
		return informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	}
	svcs := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(metav1.NamespaceDefault), byName(masterService))
	cas := informers.NewSharedInformerFactoryWithOptions(kube, 0, byName(rootCAConfigMap))
	svc, ca := svcs.Core().V1().Services(), cas.Core().V1().ConfigMaps()
	w = &watched{services: svc.Lister(), rootCAs: ca.Lister(),
		servicesSynced: svc.Informer().HasSynced, rootCAsSynced: ca.Informer().HasSynced}
	svcs.Start(ctx.Done())
	cas.Start(ctx.Done())
	return w, func() { cancel(); svcs.Shutdown(); cas.Shutdown() }
}

// Start starts, for a leadership term, the watches of what nearly every
// pod's config reads, until ctx ends or stop, which waits for them, is
// called. Call it before the term's first Request.
func (b *Builder) Start(ctx context.Context) (stop func()) {
	w, stop := startWatched(ctx, b.kube)
	b.watched = w
	return stop
}

// Wait waits, at most watchedSyncWait, for the first listing of the watches
// Start started, and reports whether they have it. Pods are served by reads
// meanwhile, and after it if they never have it.
func (b *Builder) Wait(ctx context.Context) bool {
	return b.watched != nil && b.watched.wait(ctx)
}

// wait waits, at most watchedSyncWait, for the watches' first listing, and
// reports whether they have it.
func (w *watched) wait(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, watchedSyncWait)
	defer cancel()
	return cache.WaitForCacheSync(ctx.Done(), w.servicesSynced, w.rootCAsSynced)
}

// service is the "kubernetes" Service from its watch; ok false when the
// watch cannot say (not synced, or the Service not there yet): read it.
func (w *watched) service() (*corev1.Service, bool) {
	if w == nil || !w.servicesSynced() {
		return nil, false
	}
	svc, err := w.services.Services(metav1.NamespaceDefault).Get(masterService)
	return svc, err == nil
}

// rootCA is namespace ns's kube-root-ca.crt from its watch, not to be
// changed; ok false when the watch cannot say (not synced, or made just
// now and not seen yet): read it.
func (w *watched) rootCA(ns string) (*corev1.ConfigMap, bool) {
	if w == nil || !w.rootCAsSynced() {
		return nil, false
	}
	cm, err := w.rootCAs.ConfigMaps(ns).Get(rootCAConfigMap)
	return cm, err == nil
}
