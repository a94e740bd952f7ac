package eci

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spoteci/spoteci/internal/annotation"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// A group's ephemeral storage: ECI's 30 GiB (DefaultEphemeralStorage) and
// the EphemeralStorage GiB asked for on top, within which the emptyDir
// volumes' SizeLimit and the containers' EphemeralStorageLimit bound their
// parts. The runtime measures them and evicts a group over one.

// maxEphemeralStorage bounds EphemeralStorage, in GiB: ECI's console sells
// up to 2,048 GiB of extra temporary storage.
const maxEphemeralStorage = 2048

// checkStorage checks the storage fields of req.
func checkStorage(req eciapi.CreateContainerGroupRequest) error {
	if n := req.EphemeralStorage; n < 0 || n > maxEphemeralStorage {
		return badRequest("EphemeralStorage", "EphemeralStorage %d: want 0 to %d GiB on top of the %d GiB every group has", n, maxEphemeralStorage, eciapi.DefaultEphemeralStorage)
	}
	for _, v := range req.Volumes {
		if v.EmptyDirVolume == nil || v.EmptyDirVolume.SizeLimit == "" {
			continue
		}
		if _, ok := storageBytes(v.EmptyDirVolume.SizeLimit); !ok {
			return badRequest("Volume.EmptyDirVolume.SizeLimit", "volume %q: SizeLimit %s: want a size with its unit, like 256Mi or 1Gi", v.Name, annotation.Quote(v.EmptyDirVolume.SizeLimit))
		}
	}
	for _, c := range req.Containers {
		if c.EphemeralStorageLimit == "" {
			continue
		}
		if _, ok := storageBytes(c.EphemeralStorageLimit); !ok {
			return badRequest("Container.EphemeralStorageLimit", "container %q: EphemeralStorageLimit %s: want a size with its unit, like 1Gi", c.Name, annotation.Quote(c.EphemeralStorageLimit))
		}
	}
	return nil
}

// storageBytes reads a size as Kubernetes writes it; false unless it is one
// of at least 0 bytes.
func storageBytes(s string) (int64, bool) {
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return 0, false
	}
	return q.Value(), true
}

// ephemeralStorage is a group's temporary storage in bytes.
func ephemeralStorage(req eciapi.CreateContainerGroupRequest) int64 {
	return int64(eciapi.DefaultEphemeralStorage+max(req.EphemeralStorage, 0)) << 30
}
