// Package runtime runs the containers of spot ECI instances ("container
// groups") as processes of this host, the way containerd runs them with
// shims, without images or isolation.
//
// # Shims
//
// Each container is run by a shim: the spoteci binary itself, started as the
// hidden `spoteci shim --dir DIR --id ID --container NAME` command, detached
// (own session, standard streams on /dev/null), so that the container outlives
// a restart of the server and its exit code and log are never lost. The shim:
//
//   - claims the container by creating its folder (a second shim for the same
//     container leaves it alone);
//   - starts the process in its own process group (Setpgid), with a minimal
//     environment, stdin on /dev/null and stdout and stderr on one pipe that
//     it copies into the log, a timestamp on every line;
//   - writes running.json (process and shim pids), waits for the process,
//     SIGKILLs what is left of its process group, and writes exit.json: exit
//     code (128+signal for a signal), times and Reason;
//   - if it was the last container of the instance to finish, drops the
//     instance's marker into the exits folder, which Host.Exits reads.
//
// Host.Start does no more than queue the instance: launcher goroutines write
// its spec and fork/exec one shim per container, so Start takes microseconds
// and bursts queue up (Start blocks only once 4096 are queued). A program
// that cannot be executed is recorded by its shim as Terminated with Reason
// StartError.
//
// Host.Stop writes the instance's .stop file (the SIGKILL deadline, now +
// grace) and sends SIGTERM to each shim. A shim, on SIGTERM, sends SIGTERM to
// its container's process group and SIGKILLs the group at the deadline, so the
// grace is enforced even if the server exits. A shim reads .stop before it
// starts its process and again after it wrote running.json, so a Stop racing
// a Start is never missed. SIGTERM from elsewhere (a host shutdown) stops the
// container with the grace given to Start.
//
// The server reaps the shims it started (they are its children until they
// exit) with one goroutine woken by SIGCHLD; a shim that dies without writing
// exit.json gets its container killed and recorded with Reason Lost. A
// restarted server (a new Host on the same folder) finds the shims of the
// previous one still running; one that is gone (killed, or the host rebooted:
// running.json holds the boot id and the shim's start time) is recorded as
// Lost when seen.
//
// # Folder layout
//
//	<dir>/specs/<id>.json                   the instance's containers (written once Start is processed)
//	<dir>/exits/<id>                        empty marker: every container of <id> terminated, until Exits returns it
//	<dir>/instances/<id>/.stop              Stop's request: grace and SIGKILL deadline
//	<dir>/instances/<id>/<container>/       the container's folder, its default working directory
//	    running.json                        container pid, start time, shim pid, shim start time, boot id
//	    exit.json                           exit code, reason, message, start and finish times
//	    log                                 the output, one "<RFC3339Nano> <F|P> <text>" record per line
//
// In the log, F ends a line and P is a part of a line continued by the next
// records (output without a newline yet). The log is created on the first
// output. Status files are written with a temporary file and a rename
// (exit.json, .stop, a rewritten spec) or, when readers can tell an
// incomplete file, in place (running.json, a new spec); nothing is fsynced:
// the state survives a crash of any process, not a power loss (after which no
// container survives either).
//
// On Linux only; elsewhere NewHost returns an error.
package runtime
