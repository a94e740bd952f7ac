package eci

import (
	"context"
	"encoding/base64"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// supervisor runs the runtime's slow calls (start, stop) off the request
// path and outside the service's lock, on a few workers. A group's calls go
// to one worker, in order, so a Stop never overtakes its Start.
type supervisor struct {
	rt   runtime.Runtime
	log  *slog.Logger
	work []chan func(context.Context)
	// refused hears of a start the runtime refused (not one cut short by
	// a stop): the group must not wait, billed, for containers that never
	// come.
	refused func(id string, err error)
}

func newSupervisor(rt runtime.Runtime, log *slog.Logger, refused func(id string, err error)) *supervisor {
	sv := &supervisor{rt: rt, log: log, refused: refused}
	for range 4 {
		sv.work = append(sv.work, make(chan func(context.Context), 1024))
	}
	return sv
}

// run works the queues until ctx ends.
func (sv *supervisor) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, queue := range sv.work {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-queue:
					job(ctx)
				}
			}
		})
	}
	wg.Wait()
}

// start starts an instance's containers.
func (sv *supervisor) start(in runtime.Instance) {
	sv.submit(in.ID, func(ctx context.Context) {
		if err := sv.rt.Start(ctx, in); err != nil {
			sv.log.Error("starting containers", "group", in.ID, "err", err)
			if ctx.Err() == nil {
				sv.refused(in.ID, err)
			}
		}
	})
}

// stop stops a group's containers, each with grace before SIGKILL.
func (sv *supervisor) stop(id string, grace time.Duration) {
	sv.submit(id, func(ctx context.Context) {
		if err := sv.rt.Stop(ctx, id, grace); err != nil {
			sv.log.Error("stopping containers", "group", id, "err", err)
		}
	})
}

// submit queues a job for group id. It blocks when that queue is full:
// back-pressure on creation rather than reordering.
func (sv *supervisor) submit(id string, job func(context.Context)) {
	h := fnv.New32a()
	h.Write([]byte(id))
	sv.work[h.Sum32()%uint32(len(sv.work))] <- job
}

// instanceOf is what the runtime runs for g: its containers in a sandbox of
// the size of its instance type.
func instanceOf(g *group) runtime.Instance {
	req := g.Request
	in := runtime.Instance{ID: g.ID, Hostname: req.HostName, RestartPolicy: runtime.RestartPolicy(req.RestartPolicy),
		CPU: float64(g.inst.Offering.Type.VCPU), Memory: int64(g.inst.Offering.Type.MemoryGiB * (1 << 30)),
		EphemeralStorage: ephemeralStorage(req)}
	if in.Hostname == "" {
		in.Hostname = eciapi.ShortHostName(g.Name)
	}
	in.Security, in.PodRef = podSecurity(req.SecurityContext), podRef(req.Tags)
	if len(req.Tags) > 0 {
		in.Annotations = make(map[string]string, len(req.Tags))
		for _, t := range req.Tags {
			in.Annotations[t.Key] = t.Value
		}
	}
	for _, c := range req.ImageRegistryCredentials {
		in.Credentials = append(in.Credentials, runtime.Credential{Server: c.Server, Username: c.UserName, Password: c.Password})
	}
	for _, v := range req.Volumes {
		rv := runtime.Volume{Name: v.Name}
		if v.EmptyDirVolume != nil {
			rv.Memory = v.EmptyDirVolume.Medium == "Memory"
			rv.SizeLimit, _ = storageBytes(v.EmptyDirVolume.SizeLimit) // checked at creation
		}
		if cf := v.ConfigFileVolume; cf != nil {
			for _, f := range cf.ConfigFileToPaths {
				data, _ := base64.StdEncoding.DecodeString(f.Content) // checked at creation
				mode := f.Mode
				if mode == 0 {
					mode = cf.DefaultMode
				}
				rv.Files = append(rv.Files, runtime.File{Path: f.Path, Data: data, Mode: uint32(mode)})
			}
		}
		in.Volumes = append(in.Volumes, rv)
	}
	for _, c := range req.Containers {
		rc := runtime.Container{Name: c.Name, Image: c.Image,
			PullPolicy: runtime.PullPolicy(c.ImagePullPolicy), Command: c.Commands, Args: c.Args,
			WorkingDir: c.WorkingDir, CPU: c.Cpu, Memory: int64(c.Memory * (1 << 30)),
			Security: containerSecurity(c.SecurityContext)}
		rc.EphemeralStorage, _ = storageBytes(c.EphemeralStorageLimit) // checked at creation
		for _, e := range c.EnvironmentVars {
			if e.FieldRef != nil {
				rc.IPEnv = append(rc.IPEnv, e.Key) // status.podIP(s): checked at creation
				continue
			}
			rc.Env = append(rc.Env, e.Key+"="+e.Value)
		}
		for _, m := range c.VolumeMounts {
			rc.Mounts = append(rc.Mounts, runtime.Mount{Volume: m.Name, Path: m.MountPath, SubPath: m.SubPath, ReadOnly: m.ReadOnly})
		}
		in.Containers = append(in.Containers, rc)
	}
	return in
}
