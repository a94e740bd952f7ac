package runtime

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func ptr[T any](v T) *T { return &v }

// Capability masks as /proc/self/status prints them.
const (
	capsDefault      = "00000000a80405fb" // containerd's default set without NET_RAW
	capsWithNetRaw   = "00000000a80425fb" // the same with NET_RAW (bit 13)
	capsBindOnly     = "0000000000000400" // NET_BIND_SERVICE alone
	capsPtraceNoOwn  = "00000000a80c05fa" // default + SYS_PTRACE (bit 19) - CHOWN (bit 0)
	statusCapsScript = `grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status; `
)

// TestSecurityDefaults: a container without a security context runs as the
// image's root, with the default capabilities less NET_RAW (no raw
// socket, so busybox's ping fails; ICMP echo sockets are open to every
// group, as containerd's CRI opens them), privilege escalation allowed, the
// seccomp filter on and a writable root.
func TestSecurityDefaults(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "secdef", Containers: []Container{
		busybox("main", `id; `+statusCapsScript+`grep Seccomp: /proc/self/status; cat /proc/sys/net/ipv4/ping_group_range; ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 && echo ping-ok || echo ping-refused; touch /rootfile && echo root-writable`),
	}})
	waitState(t, r, "secdef", "main", StateTerminated)
	got := readLog(t, r, "secdef", "main")
	for _, want := range []string{"uid=0(root) gid=0(root)", "CapEff:\t" + capsDefault, "CapBnd:\t" + capsDefault,
		"NoNewPrivs:\t0", "Seccomp:\t2", "0\t2147483647", "ping-refused", "root-writable"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
}

// TestSecurityContext: one container per field, each checked from inside.
func TestSecurityContext(t *testing.T) {
	r := newRuntime(t)
	sh := func(name, script string, sec Security, mounts ...Mount) Container {
		c := busybox(name, script)
		c.Security, c.Mounts = sec, mounts
		return c
	}
	start(t, r, Instance{ID: "sec", PodRef: "sec_default(uid-1)",
		Security: PodSecurity{FSGroup: ptr[int64](2000), SupplementalGroups: []int64{4000},
			Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"}},
		Volumes: []Volume{{Name: "data"}, {Name: "mem", Memory: true},
			{Name: "conf", Files: []File{{Path: "secret", Data: []byte("s3cret"), Mode: 0o400}}}},
		Containers: []Container{
			// runAsUser and runAsGroup; fsGroup and supplementalGroups in
			// the groups; fsGroup owning the volumes, setgid, so that what
			// the user writes is the group's; a 0400 file readable by
			// the group.
			sh("user", `id; touch /data/f && stat -c '%a %g' /data /data/f /mem /conf/secret; cat /conf/secret; echo`,
				Security{RunAsUser: ptr[int64](1000), RunAsGroup: ptr[int64](3000)},
				Mount{Volume: "data", Path: "/data"}, Mount{Volume: "mem", Path: "/mem"}, Mount{Volume: "conf", Path: "/conf"}),
			// runAsUser alone: the group of the image's passwd entry,
			// here none, so root's.
			sh("uidonly", `id`, Security{RunAsUser: ptr[int64](1000)}),
			// runAsGroup alone: the image's user, that group.
			sh("gidonly", `id`, Security{RunAsGroup: ptr[int64](3000)}),
			// readOnlyRootFilesystem: the root refuses writes; /etc/hosts,
			// /dev/shm and the volumes do not; /etc/resolv.conf does.
			sh("readonly", `{ touch /x; echo >> /etc/resolv.conf; echo >> /etc/hosts && echo hosts-ok; touch /dev/shm/x && echo shm-ok; touch /data/ro && echo volume-ok; } 2>&1`,
				Security{ReadOnlyRootFilesystem: true}, Mount{Volume: "data", Path: "/data"}),
			// drop ALL, add one; no_new_privs.
			sh("caps", statusCapsScript, Security{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}, NoNewPrivileges: true}),
			// NET_RAW added: raw sockets work.
			sh("netraw", statusCapsScript+`ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 && echo ping-ok`, Security{CapAdd: []string{"NET_RAW"}}),
			// add and drop by name.
			sh("adddrop", statusCapsScript, Security{CapAdd: []string{"SYS_PTRACE"}, CapDrop: []string{"CHOWN"}}),
			// the sysctl in the instance's network namespace.
			sh("sysctl", `cat /proc/sys/net/ipv4/ip_unprivileged_port_start`, Security{}),
		}})
	logs := map[string]string{}
	for _, name := range []string{"user", "uidonly", "gidonly", "readonly", "caps", "netraw", "adddrop", "sysctl"} {
		cs := waitState(t, r, "sec", name, StateTerminated)
		logs[name] = readLog(t, r, "sec", name)
		if cs.Reason == ReasonStartError {
			t.Errorf("%s did not start: %s", name, cs.Message)
		}
	}
	for name, wants := range map[string][]string{
		"user":     {"uid=1000 gid=3000 groups=2000,3000,4000\n", "2777 2000\n644 2000\n3777 2000\n440 2000\ns3cret\n"},
		"uidonly":  {"uid=1000 gid=0(root) groups=0(root),2000,4000\n"},
		"gidonly":  {"uid=0(root) gid=3000 groups=2000,3000,4000\n"},
		"readonly": {"touch: /x: Read-only file system\n", "can't create /etc/resolv.conf: Read-only file system\n", "hosts-ok\nshm-ok\nvolume-ok\n"},
		"caps":     {"CapEff:\t" + capsBindOnly, "CapBnd:\t" + capsBindOnly, "NoNewPrivs:\t1"},
		"netraw":   {"CapEff:\t" + capsWithNetRaw, "CapBnd:\t" + capsWithNetRaw, "NoNewPrivs:\t0", "ping-ok"},
		"adddrop":  {"CapEff:\t" + capsPtraceNoOwn},
		"sysctl":   {"80\n"},
	} {
		// The log of a container that just ended may still be on its way
		// from the logger.
		has := func() bool {
			for _, want := range wants {
				if !strings.Contains(logs[name], want) {
					return false
				}
			}
			return true
		}
		for deadline := time.Now().Add(10 * time.Second); !has() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			logs[name] = readLog(t, r, "sec", name)
		}
		for _, want := range wants {
			if !strings.Contains(logs[name], want) {
				t.Errorf("%s: log lacks %q:\n%s", name, want, logs[name])
			}
		}
	}
}

// TestRunAsNonRoot: a container with runAsNonRoot whose image runs as root
// waits with the kubelet's CreateContainerConfigError and its message, and
// its Failed event; with a non-root runAsUser it runs; runAsUser 0 breaks
// the policy.
func TestRunAsNonRoot(t *testing.T) {
	r := newRuntime(t)
	c := func(name string, sec Security) Container {
		c := busybox(name, "id")
		c.Security = sec
		return c
	}
	start(t, r, Instance{ID: "nonroot", PodRef: "web_team-a(1234)", Containers: []Container{
		c("image-root", Security{RunAsNonRoot: true}),
		c("uid0", Security{RunAsNonRoot: true, RunAsUser: ptr[int64](0)}),
		c("uid1000", Security{RunAsNonRoot: true, RunAsUser: ptr[int64](1000)}),
	}})
	waitState(t, r, "nonroot", "uid1000", StateTerminated)
	if got := readLog(t, r, "nonroot", "uid1000"); !strings.HasPrefix(got, "uid=1000 ") {
		t.Errorf("uid1000 ran as %q", got)
	}
	want := map[string]string{
		"image-root": `container has runAsNonRoot and image will run as root (pod: "web_team-a(1234)", container: image-root)`,
		"uid0":       `container's runAsUser breaks non-root policy (pod: "web_team-a(1234)", container: uid0)`,
	}
	var st Status
	waitFor(t, 30*time.Second, "both refused containers waiting with CreateContainerConfigError", func() bool {
		st, _ = r.Status("nonroot")
		n := 0
		for _, cs := range st.Containers {
			if cs.State == StateWaiting && cs.Reason == ReasonCreateConfigError {
				n++
			}
		}
		return n == 2
	})
	for _, cs := range st.Containers {
		if msg, ok := want[cs.Name]; ok && cs.Message != msg {
			t.Errorf("%s waits with %q, want %q", cs.Name, cs.Message, msg)
		}
	}
	for name, msg := range want {
		if !slices.ContainsFunc(st.Events, func(e Event) bool {
			return e.Type == "Warning" && e.Reason == "Failed" && e.Container == name && e.Message == "Error: "+msg
		}) {
			t.Errorf("no Warning Failed %q for %s in %+v", "Error: "+msg, name, st.Events)
		}
	}
}

// TestSecurityMapping: the pure parts, against containerd CRI's and the
// kubelet's rules.
func TestSecurityMapping(t *testing.T) {
	def := func(extra ...string) []string {
		var out []string
		for _, c := range append(slices.Clone(eciapi.DefaultCapabilities), extra...) {
			out = append(out, "CAP_"+c)
		}
		return out
	}
	for _, tc := range []struct {
		sec  Security
		want []string
	}{
		{Security{}, def()},
		{Security{CapAdd: []string{"NET_RAW"}}, def("NET_RAW")},
		{Security{CapDrop: []string{"ALL"}}, []string{}},
		{Security{CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"}}, []string{"CAP_KILL"}},
		{Security{CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"NET_ADMIN"}}, def()}, // drop wins
		{Security{CapAdd: []string{"ALL"}, CapDrop: []string{"SYS_ADMIN"}}, nil},
	} {
		got := capabilities(tc.sec)
		if tc.want == nil { // ALL: every capability but the dropped one
			if len(got) != len(eciapi.KnownCapabilities)-1 || slices.Contains(got, "CAP_SYS_ADMIN") {
				t.Errorf("capabilities(%+v) = %v", tc.sec, got)
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("capabilities(%+v) = %v, want %v", tc.sec, got, tc.want)
		}
	}
	for _, tc := range []struct {
		sec       Security
		imageUser string
		want      string
	}{
		{Security{}, "1000:1000", ""}, // the image's USER, whole
		{Security{RunAsUser: ptr[int64](5)}, "1000:1000", "5"},
		{Security{RunAsGroup: ptr[int64](7)}, "app:staff", "app:7"},
		{Security{RunAsGroup: ptr[int64](7)}, "", "0:7"},
		{Security{RunAsUser: ptr[int64](5), RunAsGroup: ptr[int64](7)}, "", "5:7"},
	} {
		if got := userString(tc.sec, tc.imageUser); got != tc.want {
			t.Errorf("userString(%+v, %q) = %q, want %q", tc.sec, tc.imageUser, got, tc.want)
		}
	}
	for _, tc := range []struct {
		pod  PodSecurity
		want []uint32
	}{
		{PodSecurity{}, []uint32{5, 10}},
		{PodSecurity{SupplementalGroups: []int64{7}, FSGroup: ptr[int64](9)}, []uint32{5, 7, 9, 10}},
		{PodSecurity{SupplementalGroups: []int64{7}, FSGroup: ptr[int64](9), StrictGroups: true}, []uint32{5, 7, 9}}, // not the image's 10
	} {
		// The user's primary group 5, and 10 from the image's /etc/group.
		s := &oci.Spec{Process: &specs.Process{User: specs.User{UID: 1, GID: 5, AdditionalGids: []uint32{5, 10}}}}
		if err := withGroups(tc.pod)(context.Background(), nil, nil, s); err != nil {
			t.Fatal(err)
		}
		if got := s.Process.User.AdditionalGids; !slices.Equal(got, tc.want) {
			t.Errorf("withGroups(%+v) = %v, want %v", tc.pod, got, tc.want)
		}
	}
	nonRoot := Security{RunAsNonRoot: true}
	for _, tc := range []struct {
		sec       Security
		imageUser string
		want      string // "" for no error
	}{
		{Security{}, "", ""},
		{nonRoot, "", "image will run as root"},
		{nonRoot, "0:0", "image will run as root"},
		{nonRoot, "1000", ""},
		{nonRoot, "app", "image has non-numeric user (app), cannot verify user is non-root"},
		{nonRoot, "4294967296", "image has an invalid user id (4294967296)"},
		{Security{RunAsNonRoot: true, RunAsUser: ptr[int64](0)}, "1000", "runAsUser breaks non-root policy"},
		{Security{RunAsNonRoot: true, RunAsUser: ptr[int64](1)}, "", ""},
	} {
		err := verifyRunAsNonRoot(tc.sec, tc.imageUser, "p_ns(u)", "c")
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("verifyRunAsNonRoot(%+v, %q) = %v, want %q", tc.sec, tc.imageUser, err, tc.want)
		}
	}
}
