package nodecontroller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// The node's Lease is made as a kubelet's: held by the node, 40 s, owned
// by the Node; and made again when someone deletes it.
func TestKeepLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kube := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vn1", UID: types.UID("node-uid")}})
	h := New(Config{Name: "vn1", Kube: kube})
	done := make(chan struct{})
	go func() { defer close(done); h.KeepLease(ctx) }()
	defer func() { cancel(); <-done }()

	leases := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	waitLease := func() {
		t.Helper()
		for ctx.Err() == nil {
			l, err := leases.Get(ctx, "vn1", metav1.GetOptions{})
			if err == nil {
				if *l.Spec.HolderIdentity != "vn1" || *l.Spec.LeaseDurationSeconds != 40 || l.Spec.RenewTime == nil ||
					len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" || l.OwnerReferences[0].UID != "node-uid" {
					t.Fatalf("lease %+v %+v", l.Spec, l.OwnerReferences)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("no lease")
	}
	waitLease()
	if err := leases.Delete(ctx, "vn1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLease() // at the next renewal, 10 s on
}
