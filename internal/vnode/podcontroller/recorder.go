package podcontroller

import (
	"context"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// eventWriters is how many events the node posts at once.
const eventWriters = 16

// shardedRecorder posts the node's events through several client-go
// broadcasters, each object's always through the same one, so that each
// broadcaster's correlator still sees all of an object's events. One
// broadcaster posts one event at a time and drops what passes its queue of
// 1,000: a reclaim storm of 10,000 pods brings 10,000 notices at once, and
// 10,000 replacements five events each, which one writer takes minutes to
// post and its queue loses.
type shardedRecorder struct {
	shards []record.EventRecorder
}

// newShardedRecorder starts writers broadcasters posting to sink as source;
// stop shuts them down.
func newShardedRecorder(ctx context.Context, sink typedcorev1.EventInterface, source corev1.EventSource, writers int) (r *shardedRecorder, stop func()) {
	r = &shardedRecorder{}
	var broadcasters []record.EventBroadcaster
	for range writers {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: sink})
		broadcasters = append(broadcasters, b)
		r.shards = append(r.shards, b.NewRecorder(scheme.Scheme, source))
	}
	return r, func() {
		for _, b := range broadcasters {
			b.Shutdown()
		}
	}
}

// shard is the recorder of object's events: by its namespace and name, the
// same for the object and for a reference to it (a container's events).
func (r *shardedRecorder) shard(object runtime.Object) record.EventRecorder {
	var ns, name string
	if ref, ok := object.(*corev1.ObjectReference); ok {
		ns, name = ref.Namespace, ref.Name
	} else if m, err := meta.Accessor(object); err == nil {
		ns, name = m.GetNamespace(), m.GetName()
	}
	h := fnv.New32a()
	h.Write([]byte(ns + "/" + name))
	return r.shards[h.Sum32()%uint32(len(r.shards))]
}

func (r *shardedRecorder) Event(object runtime.Object, eventtype, reason, message string) {
	r.shard(object).Event(object, eventtype, reason, message)
}

func (r *shardedRecorder) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.shard(object).Eventf(object, eventtype, reason, messageFmt, args...)
}

func (r *shardedRecorder) AnnotatedEventf(object runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	r.shard(object).AnnotatedEventf(object, annotations, eventtype, reason, messageFmt, args...)
}
