package runtime

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
)

// TestRootMountedInContainer: a container's overlay root is mounted in its
// own mount namespace, not on the host, and is its writable root; nor is
// its network namespace pinned by a mount: a running instance leaves the
// host's mount table as it was.
func TestRootMountedInContainer(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "root", Containers: []Container{busybox("main", `echo hello > /written; sleep 3600`)}})
	waitState(t, r, "root", "main", StateRunning)
	in, _ := r.table.get("root")
	pid := in.containers[0].runningPID()
	upper := upperOfProcess(pid)
	if upper == "" {
		t.Fatalf("the container's root is not an overlay: %s", readFile(t, "/proc/"+strconv.Itoa(pid)+"/mountinfo"))
	}
	host := readFile(t, "/proc/self/mountinfo")
	if strings.Contains(host, upper) {
		t.Errorf("the container's overlay root is mounted on the host too:\n%s", host)
	}
	if strings.Contains(host, r.cfg.Dir) {
		t.Errorf("a mount of the instance's sandbox is on the host:\n%s", host)
	}
	var out buffer
	code, err := r.Exec(context.Background(), "root", "main", []string{"sh", "-c", "cat /written"}, ExecIO{Stdout: &out, Stderr: &out})
	if err != nil || code != 0 || out.String() != "hello\n" {
		t.Errorf("reading what the container wrote in its root: %d, %v, %q", code, err, out.String())
	}
}

func TestRootMount(t *testing.T) {
	overlay := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"}}
	m, ok := rootMount([]mount.Mount{overlay})
	if !ok || m.Destination != "/" || m.Type != "overlay" || strings.Join(m.Options, ",") != "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2" {
		t.Errorf("rootMount(overlay) = %+v, %v", m, ok)
	}
	long := overlay
	long.Options = []string{"workdir=/w", "upperdir=/u", "lowerdir=" + strings.Repeat("/layer/fs:", 400) + "/l"}
	for name, ms := range map[string][]mount.Mount{
		"no layer (bind)":         {{Type: "bind", Source: "/s", Options: []string{"rbind", "rw"}}},
		"options beyond one page": {long},
		"none":                    nil,
	} {
		if _, ok := rootMount(ms); ok {
			t.Errorf("%s: runc would mount the root; want the shim to", name)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNetworkAcrossRestart: a runtime that starts again holds the network
// namespace of a running instance from its container, so that a container
// restarted afterwards joins the same one; an instance whose containers all
// ended while no runtime ran gets a new namespace with the same IP.
func TestNetworkAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	fast := func(c *Config) { c.RestartBackoff = 100 * time.Millisecond }
	r1 := openRuntimeWith(t, dir, fast)
	start(t, r1, Instance{ID: "kept", Containers: []Container{busybox("main", `sleep 3600`)}})
	start(t, r1, Instance{ID: "lost", RestartPolicy: RestartAlways, Containers: []Container{busybox("main", `sleep 2; exit 1`)}})
	waitState(t, r1, "kept", "main", StateRunning)
	waitState(t, r1, "lost", "main", StateRunning)
	netns := func(r *Containerd, id string) string {
		in, _ := r.table.get(id)
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", in.containers[0].runningPID()))
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	keptNS := netns(r1, "kept")
	keptIP, _ := r1.Status("kept")
	lostIP, _ := r1.Status("lost")
	r1.Close() // spoteci goes away; "lost" ends meanwhile, and with it its namespace
	time.Sleep(2500 * time.Millisecond)

	r2 := openRuntimeWith(t, dir, fast)
	if !r2.net.netns.holds("kept") {
		t.Fatal("the restarted runtime does not hold the namespace of the running instance")
	}
	if err := r2.Restart(context.Background(), "kept", time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "kept restarted", func() bool {
		st, _ := r2.Status("kept")
		return st.Containers[0].RestartCount == 1 && st.Containers[0].State == StateRunning
	})
	if got := netns(r2, "kept"); got != keptNS {
		t.Errorf("the restarted container is in %s, want its instance's %s", got, keptNS)
	}
	waitFor(t, 30*time.Second, "lost restarted", func() bool {
		st, _ := r2.Status("lost")
		return st.Containers[0].RestartCount >= 1 && st.Containers[0].State == StateRunning
	})
	if st, _ := r2.Status("lost"); st.IP != lostIP.IP {
		t.Errorf("the instance whose namespace was lost got IP %s, want its own %s", st.IP, lostIP.IP)
	}
	if st, _ := r2.Status("kept"); st.IP != keptIP.IP {
		t.Errorf("IP %s after the restart, want %s", st.IP, keptIP.IP)
	}
}
