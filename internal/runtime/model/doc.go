// Package model is a runtime without processes: instances that behave as
// their annotations say, for clusters of tens of thousands of pods on one
// machine (`spoteci server --runtime model`). It implements runtime.Runtime,
// so everything above it (the market, the OpenAPI, the node, events,
// reclaims, bills, logs and exec) is the same as on containerd.
//
// # What a container does
//
// Each container of an instance starts at once (its image counts as present)
// and then, as the instance's annotations (its group's tags) say:
//
//	model.spoteci.io/run-for    how long each run lasts ("90s", "2h");
//	                            without it, until stopped or removed
//	model.spoteci.io/exit-code  the code a run ends with (default 0)
//	model.spoteci.io/log        a line each run prints as it starts
//
// A run that ends starts again as the restart policy says, after a kubelet's
// back-off (CrashLoopBackOff). Stop ends running containers at once with 143
// (SIGTERM); one that never started ends Lost, as on containerd. A bad value
// ends the containers with CreateContainerConfigError naming the annotation.
// Exec answers echo, true, false, hostname, env and sleep; other commands
// exit 127.
//
// # The model is a function of time
//
// An instance's state follows from what was asked of it (Start, Stop,
// Restart) and when, and the clock: a container's next change (the end of a
// run, the end of a back-off) is computed, not waited for. A timer wakes the
// runtime at the next change of any instance, so that Exits reports ends in
// time; Status brings an instance up to now before it answers.
//
// What was asked is appended to a journal (journal.jsonl in Config.Dir)
// before it is acted on; New replays it, so a restart of the service finds
// every instance as it would be had it run on, and loses none.
package model
