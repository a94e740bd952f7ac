package eci_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestEphemeralStorage: the storage fields pass the official SDK and the
// service's checks, and a group whose container writes past its
// EphemeralStorageLimit is evicted: Failed, with the kubelet's Warning
// Evicted event, even though its container exits 0 on SIGTERM.
func TestEphemeralStorage(t *testing.T) {
	dir := t.TempDir()
	rt := openRuntimeWith(t, dir, runtime.Config{StorageCheckEvery: 100 * time.Millisecond})
	s := startServerWith(t, eci.Config{StateDir: dir, TimeScale: scale, Runtime: rt})
	ctx := context.Background()
	for _, bad := range []struct {
		mutate func(*eciapi.CreateContainerGroupRequest)
		field  string
	}{
		{func(r *eciapi.CreateContainerGroupRequest) { r.EphemeralStorage = -1 }, "EphemeralStorage"},
		{func(r *eciapi.CreateContainerGroupRequest) { r.EphemeralStorage = 5000 }, "EphemeralStorage"},
		{func(r *eciapi.CreateContainerGroupRequest) { r.Containers[0].EphemeralStorageLimit = "lots" }, "Container.EphemeralStorageLimit"},
		{func(r *eciapi.CreateContainerGroupRequest) { r.Containers[0].EphemeralStorageLimit = "-1Gi" }, "Container.EphemeralStorageLimit"},
		{func(r *eciapi.CreateContainerGroupRequest) {
			r.Volumes = []eciapi.Volume{{Name: "data", Type: eciapi.VolumeEmptyDir, EmptyDirVolume: &eciapi.EmptyDirVolume{SizeLimit: "1 GiB"}}}
		}, "Volume.EmptyDirVolume.SizeLimit"},
	} {
		req := spotRequest("bad", "0.1")
		bad.mutate(&req)
		_, err := s.CreateContainerGroup(ctx, req)
		var e *eciapi.Error
		if !errors.As(err, &e) || e.HTTPStatus != 400 || e.Code != "InvalidParameter."+bad.field {
			t.Errorf("%+v: err %v, want 400 InvalidParameter.%s", req, err, bad.field)
		}
	}

	req := spotRequest("filler", "0.1")
	req.EphemeralStorage = 10
	req.Volumes = []eciapi.Volume{{Name: "data", Type: eciapi.VolumeEmptyDir, EmptyDirVolume: &eciapi.EmptyDirVolume{SizeLimit: "64Mi"}}}
	req.Containers[0].EphemeralStorageLimit = "8Mi"
	req.Containers[0].Commands = []string{"sh", "-c", `trap 'exit 0' TERM; dd if=/dev/zero of=/fill bs=1048576 count=16; while :; do sleep 0.1; done`}
	id, err := s.CreateContainerGroup(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	g := s.waitStatus(t, id, eciapi.StatusFailed)
	want := "Pod ephemeral local storage usage exceeds the total limit of containers 8Mi. "
	if e, ok := findEvent(g, runtime.ReasonEvicted); !ok || e.Type != "Warning" || e.Message != want {
		t.Errorf("eviction event %+v (found %v), want Warning Evicted %q", e, ok, want)
	}
	st, err := rt.Status(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reason != runtime.ReasonEvicted || !strings.HasPrefix(st.Message, "Pod ephemeral") {
		t.Errorf("runtime status %q %q", st.Reason, st.Message)
	}
	// What the runtime was given: 30 GiB and the 10 asked for, the sizes in bytes.
	var spec runtime.Instance
	b, err := os.ReadFile(filepath.Join(dir, "runtime", "instances", id, "spec.json"))
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	if spec.EphemeralStorage != 40<<30 || spec.Volumes[0].SizeLimit != 64<<20 || spec.Containers[0].EphemeralStorage != 8<<20 {
		t.Errorf("the runtime was given %d, volume %d, container %d; want 40 GiB, 64 MiB, 8 MiB",
			spec.EphemeralStorage, spec.Volumes[0].SizeLimit, spec.Containers[0].EphemeralStorage)
	}
}
