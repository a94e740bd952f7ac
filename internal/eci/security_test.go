package eci_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func int64p(v int64) *int64 { return &v }

// TestSecurityContextThroughSDK: the security contexts, sent through the
// official SDK (ECI's parameter names, spoteci's extensions as query
// parameters), reach the container: its ids and groups, a read-only root,
// its capabilities and no_new_privs, the fsGroup on its volume, the sysctl.
func TestSecurityContextThroughSDK(t *testing.T) {
	s := startServer(t, t.TempDir())
	no := false
	req := eciapi.CreateContainerGroupRequest{ContainerGroupName: "sec", InstanceType: "ecs.c5.large",
		SecurityContext: &eciapi.SecurityContext{FsGroup: int64p(2000), SupplementalGroups: []int64{4000, 5000},
			Sysctls: []eciapi.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}},
		Volumes: []eciapi.Volume{{Name: "data", Type: eciapi.VolumeEmptyDir, EmptyDirVolume: &eciapi.EmptyDirVolume{}}},
		Containers: []eciapi.Container{{Name: "main", Image: "busybox",
			Commands:     []string{"sh", "-c", `id; touch /x 2>&1; grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status; stat -c '%a %g' /data; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; echo done`},
			VolumeMounts: []eciapi.VolumeMount{{Name: "data", MountPath: "/data"}},
			SecurityContext: &eciapi.ContainerSecurityContext{RunAsUser: int64p(1000), RunAsGroup: int64p(3000), RunAsNonRoot: true,
				ReadOnlyRootFilesystem: true, AllowPrivilegeEscalation: &no, SeccompProfile: eciapi.SeccompRuntimeDefault,
				Capability: &eciapi.Capability{Drop: []string{"ALL"}, Add: []string{"NET_BIND_SERVICE"}}}}},
	}
	id, err := s.CreateContainerGroup(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, id, "done\n")
	resp, err := s.DescribeContainerLog(context.Background(), eciapi.DescribeContainerLogRequest{ContainerGroupId: id})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"uid=1000 gid=3000 groups=2000,3000,4000,5000\n", "touch: /x: Read-only file system\n",
		// A user other than root keeps no capability across exec (none is
		// ambient, as with containerd's CRI): the bounding set shows them.
		"CapEff:\t0000000000000000\nCapBnd:\t0000000000000400\n", "NoNewPrivs:\t1\n", "2777 2000\n", "\n0\ndone\n"} {
		if !strings.Contains(resp.Content, want) {
			t.Errorf("log lacks %q:\n%s", want, resp.Content)
		}
	}
}

// TestRunAsNonRootRefused: a group whose container has RunAsNonRoot and an
// image that runs as root shows the container waiting with the kubelet's
// CreateContainerConfigError, naming the pod as the kubelet does when the
// virtual node's tags name it.
func TestRunAsNonRootRefused(t *testing.T) {
	s := startServer(t, t.TempDir())
	req := eciapi.CreateContainerGroupRequest{ContainerGroupName: "team-a-web", InstanceType: "ecs.c5.large",
		Tags: []eciapi.Tag{{Key: eciapi.TagPod, Value: "web"}, {Key: eciapi.TagNamespace, Value: "team-a"}, {Key: eciapi.TagPodUID, Value: "u-1"}},
		Containers: []eciapi.Container{{Name: "main", Image: "busybox", Commands: []string{"id"},
			SecurityContext: &eciapi.ContainerSecurityContext{RunAsNonRoot: true}}}}
	id, err := s.CreateContainerGroup(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := `container has runAsNonRoot and image will run as root (pod: "web_team-a(u-1)", container: main)`
	eventually(t, "the container refused", func() error {
		g := s.group(t, id)
		st := g.Containers[0].CurrentState
		if st.State != "Waiting" || st.Reason != "CreateContainerConfigError" || st.DetailStatus != want {
			return fmt.Errorf("state %+v", st)
		}
		for _, e := range g.Events {
			if e.Type == "Warning" && e.Reason == "Failed" && e.Message == "Error: "+want {
				return nil
			}
		}
		return fmt.Errorf("no Failed event in %+v", g.Events)
	})
}

// TestSecurityContextRefused: what the service cannot honour is a 400
// naming the parameter and the value, through the SDK.
func TestSecurityContextRefused(t *testing.T) {
	s := startServer(t, t.TempDir())
	for _, tc := range []struct {
		name     string
		mod      func(*eciapi.CreateContainerGroupRequest)
		code, in string
	}{
		{"unknown capability", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].SecurityContext = &eciapi.ContainerSecurityContext{Capability: &eciapi.Capability{Add: []string{"NET_RAWW"}}}
		}, "InvalidParameter.Container.SecurityContext.Capability.Add", `unknown capability "NET_RAWW"`},
		{"host capability", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].SecurityContext = &eciapi.ContainerSecurityContext{Capability: &eciapi.Capability{Add: []string{"SYS_ADMIN"}}}
		}, "InvalidParameter.Container.SecurityContext.Capability.Add", `capability "SYS_ADMIN" cannot be added`},
		{"add ALL", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].SecurityContext = &eciapi.ContainerSecurityContext{Capability: &eciapi.Capability{Add: []string{"ALL"}}}
		}, "InvalidParameter.Container.SecurityContext.Capability.Add", `capability "ALL" cannot be added`},
		{"unknown drop", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].SecurityContext = &eciapi.ContainerSecurityContext{Capability: &eciapi.Capability{Drop: []string{"CHOWNN"}}}
		}, "InvalidParameter.Container.SecurityContext.Capability.Drop", `unknown capability "CHOWNN"`},
		{"negative uid", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].SecurityContext = &eciapi.ContainerSecurityContext{RunAsUser: int64p(-1)}
		}, "InvalidParameter.Container.SecurityContext.RunAsUser", "RunAsUser -1"},
		{"seccomp Unconfined", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].SecurityContext = &eciapi.ContainerSecurityContext{SeccompProfile: "Unconfined"}
		}, "InvalidParameter.Container.SecurityContext.SeccompProfile", `SeccompProfile "Unconfined"`},
		{"unsafe sysctl", func(r *eciapi.CreateContainerGroupRequest) {
			r.SecurityContext = &eciapi.SecurityContext{Sysctls: []eciapi.Sysctl{{Name: "kernel.msgmax", Value: "1"}}}
		}, "InvalidParameter.SecurityContext.Sysctl.Name", `sysctl "kernel.msgmax"`},
		{"fsGroup out of range", func(r *eciapi.CreateContainerGroupRequest) {
			r.SecurityContext = &eciapi.SecurityContext{FsGroup: int64p(1 << 32)}
		}, "InvalidParameter.SecurityContext.FsGroup", "FsGroup 4294967296"},
		{"policy", func(r *eciapi.CreateContainerGroupRequest) {
			r.SecurityContext = &eciapi.SecurityContext{SupplementalGroupsPolicy: "Loose"}
		}, "InvalidParameter.SecurityContext.SupplementalGroupsPolicy", `"Loose"`},
	} {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: "bad", InstanceType: "ecs.c5.large",
			Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"true"}}}}
		tc.mod(&req)
		_, err := s.CreateContainerGroup(context.Background(), req)
		var e *eciapi.Error
		if !errors.As(err, &e) || e.Code != tc.code || e.HTTPStatus != 400 || !strings.Contains(e.Message, tc.in) {
			t.Errorf("%s: %v, want %s 400 saying %s", tc.name, err, tc.code, tc.in)
		}
	}
	// ECI's own names, as a client of real ECI sends them with the SDK.
	c := s.sdk(t)
	sreq := sdkeci.CreateCreateContainerGroupRequest()
	sreq.ContainerGroupName, sreq.InstanceType = "bad", "ecs.c5.large"
	sreq.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "c", Image: "busybox", Command: []string{"true"}}}
	sreq.QueryParams["Container.1.SecurityContext.Capability.Add.1"] = "SYS_MODULE"
	if _, err := c.CreateContainerGroup(sreq); err == nil {
		t.Error("SYS_MODULE was accepted")
	} else if code, status := sdkCode(t, err); code != "InvalidParameter.Container.SecurityContext.Capability.Add" || status != 400 {
		t.Errorf("SYS_MODULE: %s %d", code, status)
	}
}
