// Package runtime runs spot ECI instances as pod sandboxes under containerd
// and runc.
//
// # An instance
//
// Start registers an instance and queues its launch; launchers (one a CPU
// by default) bring it as far as they can, idempotently, so that a launch
// resumes where an earlier one stopped (a crash, a pull back-off):
//
//  1. the folder: spec.json, written once;
//  2. the images of its containers, in order, pulled as their policy says
//     through the registry mirrors (a failed pull waits in ErrImagePull,
//     then ImagePullBackOff, and is queued again after its back-off); a
//     reference to a registry on this machine (loopback, localhost, 0.0.0.0)
//     other than a configured one (the local registry) is refused without
//     connecting: the service's own listeners are no registry;
//  3. the sandbox: a v1 cgroup /spoteci/<id> of the instance type's size, the
//     volumes, a network namespace held open by the runtime (network.go)
//     and plugged in by the CNI plugins (ptp, with an address of the
//     runtime's own through the static IPAM plugin, package ipam), and /etc/hosts,
//     hostname and resolv.conf;
//  4. each container: a containerd container (overlayfs snapshot, runc, the
//     OCI spec: namespaces, the security context (below), the
//     cgroup /spoteci/<id>/<name> with its limits, the mounts) and its task,
//     whose stdout and stderr are two FIFOs that the runtime reads and
//     writes into <name>.log (below).
//
// A running instance adds no mount to the host: its network namespace is
// held by an open file, not pinned by a bind mount, and runc mounts each
// container's snapshot as its root inside the container's own mount
// namespace (rootfs.go), not the shim on the host. runc reads the host's
// mount table several times a start, so a mount per instance made every
// start dearer the more instances ran.
//
// Stop sends SIGTERM to each container's first process and SIGKILL at the
// deadline, from the runtime itself through a pidfd (signal.go), and SIGKILL
// again through containerd until the container has ended.
//
// Exits come from containerd's /tasks/exit events, and a resync (when the
// stream is made again, and every 10 seconds) compares the containers
// believed running with containerd's tasks, which catches what the stream
// missed. An exit is written to status.json
// before the task is deleted; a container whose restart policy says so
// waits its back-off (CrashLoopBackOff) and starts again from a fresh
// snapshot. Once every container of an instance has ended, its sandbox is
// freed (tasks, containers, snapshots, network, cgroup) as soon as no launch
// waits, or 10 minutes later (teardown.go); its folder stays, for its status
// and logs, until Remove.
//
// containerd's shims keep the containers alive whatever happens to spoteci
// or containerd: New on the same folder loads every instance, adopts running
// tasks by id, records the exits that happened meanwhile and queues what was
// never started.
//
// # Parts
//
// Containerd is a facade over the instances' table (table.go) and parts that
// each do one job, wired in New: the launcher (launch.go) brings instances
// up with the images (pull.go) and the sandboxes (sandbox.go: cgroup,
// volumes, /etc files and the network: network.go with the CNI plugins,
// netns.go, firewall.go and package ipam; freed in teardown.go); the exit
// watcher (exits.go) records ends from containerd's events and resyncs, and
// restarts; the stopper (stop.go) signals and kills; outputs (output.go)
// copy the containers' output into their logs; the storage watcher
// (limits.go) measures and evicts.
//
// # Logs
//
// No process runs beside a container but its shim: as containerd's CRI
// plugin does, the task's stdout and stderr are FIFOs in the instance's
// folder, and the runtime copies them in two goroutines into the log, in
// package logfile's format (the kubelet's CRI log format less the stream
// name), rotated and capped as a kubelet's (Config.LogMaxSize and
// LogMaxFiles). A container's end is recorded once its output is copied to
// the end (waiting up to 2 seconds), so a log read once it is Terminated is
// whole. The shim keeps a reading end of each FIFO open too, so while
// spoteci is down (a restart) the container is not killed by SIGPIPE: its
// output waits in the FIFO and the shim's pipe, 64 KiB each, beyond which
// its writes block until a runtime reads again; New opens the FIFOs of every
// running container again and goes on, nothing lost or written twice.
// Output still in the FIFO of a container that ends while spoteci is down
// is lost with the FIFO's last writer, as under containerd's CRI across a
// restart of containerd. A running container holds three of spoteci's file
// descriptors (two FIFOs and its log).
//
// # Limits
//
// Besides its vCPUs and memory, an instance is bounded in processes and in
// disk (limits.go).
//
// Pids: the cgroup /spoteci/<id> has pids.max, so that a fork bomb fails to
// fork inside its own instance while the host and the other instances fork
// on. It is sized as a kubelet's podPidsLimit is meant to be set, by the
// size of what it bounds: Config.PodPidsLimit (spoteci's --pod-max-pids)
// for every instance, or by default 1,024 a vCPU and at least 1,024; never
// more than a quarter of the host's pid_max, so that no one instance can
// take the host's pids. The root /spoteci holds all instances together
// under pid_max less an eighth, the host's reserve (a kubelet's
// system-reserved pids) for containerd, the shims and spoteci. The limit
// is recorded in spec.json at Start, so that a launch resumed after a
// restart sets the same one; instances adopted from a runtime that set
// none get one when New loads them.
//
// Ephemeral storage, as a kubelet's eviction manager keeps it: every
// Config.StorageCheckEvery (10 s, the kubelet's monitoring period) one
// goroutine measures, one instance after the other, what each running
// instance has written to disk: each container's writable layer (the
// upper folder of its overlayfs snapshot, found once per run) and its
// logs, the instance's disk volumes and its /etc/hosts, hostname and
// resolv.conf (writable bind mounts, a kubelet's etc-hosts); a tmpfs volume is memory, counted
// in the cgroup, and made the size of its SizeLimit. Each walk counts
// allocated blocks, hard links once, and stops one byte past the largest
// limit, where the verdict is known. An instance over a limit is evicted:
// in the kubelet's order, an emptyDir over its SizeLimit ("Usage of
// EmptyDir volume "data" exceeds the limit "1Gi". "), the whole over the
// sum of its containers' limits ("Pod ephemeral local storage usage exceeds
// the total limit of containers 2Gi. "), a container over its own
// ("Container main exceeded its local ephemeral storage limit "1Gi". "),
// and, last, the whole over the instance's temporary storage (ECI's 30 GiB
// and what was asked on top), said as the kubelet says a full node ("The
// node was low on resource: ephemeral-storage. ..."). An eviction writes
// a Warning Evicted event with the message, keeps the message in
// status.json (Status.Reason Evicted) and stops the containers with a grace
// of one second, as the kubelet does; they end with reason Evicted, which
// kubectl get pod shows. Measuring stops with the instance
// and, since New loads every instance, resumes after a restart.
//
// # Security context
//
// Each container's Security and the instance's PodSecurity are applied as
// containerd's CRI applies what a kubelet sends it (security.go):
//
//   - user: RunAsUser and RunAsGroup over the image's USER (RunAsGroup
//     alone keeps the image's user; RunAsUser alone takes its primary group
//     from the image's /etc/passwd, root's if absent); with neither, the
//     image's USER whole;
//   - RunAsNonRoot: the kubelet's check (verifyRunAsNonRoot) before the
//     container is made; a root user leaves the container Waiting in
//     CreateContainerConfigError with the kubelet's message, naming the pod
//     by PodRef, and a Warning Failed event;
//   - groups: the user's groups in the image's /etc/group (none with
//     StrictGroups), the supplemental groups and the fsGroup;
//   - capabilities: containerd's default set without NET_RAW, changed by
//     CapAdd and CapDrop in CRI's order (ALL first, drop winning), the same
//     set bounding, permitted and effective, none ambient;
//   - no_new_privs only with NoNewPrivileges (allowPrivilegeEscalation:
//     false), as a kubelet;
//   - ReadOnlyRootFilesystem: the root, /etc/hostname and /etc/resolv.conf
//     read-only; /etc/hosts, /dev/shm and the volumes as their mounts say;
//   - sysctls of the instance in each container's spec (namespaced ones:
//     the caller checks);
//   - the default seccomp profile always (Docker's, computed from the
//     capabilities): no container runs unconfined on the shared kernel;
//   - fsGroup: the volumes, made at the sandbox, are the group's, with
//     group read and write (read for files given), setgid folders, as a
//     kubelet's SetVolumeOwnership.
//
// # Folder layout
//
//	<dir>/instances/<id>/spec.json      the Instance, as Start was given it
//	<dir>/instances/<id>/status.json    IP, containers' statuses and eviction, rewritten at each change
//	<dir>/instances/<id>/stop.json      Stop's deadline (SIGKILL after it)
//	<dir>/instances/<id>/events.jsonl   the kubelet-style events, one JSON per line
//	<dir>/instances/<id>/<name>.log     the container's output (package logfile's format)
//	<dir>/instances/<id>/<name>.previous.log   the run before a restart
//	<dir>/instances/<id>/fifo/<name>-{stdout,stderr}   the FIFOs of its output
//	<dir>/instances/<id>/volumes/<vol>/ the instance's volumes
//	<dir>/instances/<id>/{hosts,hostname,resolv.conf}
//	<dir>/cni/                          the CNI plugins' cache
//	<dir>/network.json                  the runtime's network (name and /16)
//
// Files are written with a temporary file and a rename; nothing is fsynced:
// the state survives a crash of any process, not a power loss (after which
// no container survives either).
//
// On Linux only, as root.
package runtime
