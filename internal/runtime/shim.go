//go:build linux

package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// defaultPath is the PATH of a container that sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// orphanPoll is how often a shim checks that its container's folder still
// exists.
const orphanPoll = 2 * time.Second

// logDrainWait bounds how long the shim keeps copying output after the
// container's process group is gone (a process that left the group may still
// hold the pipe).
const logDrainWait = 2 * time.Second

// RunShim runs one container and records its life in its folder: it is the
// body of the hidden `spoteci shim` command that Host.Start launches, one per
// container, detached from the server. It starts the process in its own
// process group with its output piped into the log, writes running.json, waits
// for the process, kills what is left of its group, writes exit.json and, if
// the container was the last of its instance to finish, the exits marker.
// SIGTERM (or SIGINT, or ctx being cancelled, which the spoteci main does on
// SIGTERM) stops the container: SIGTERM to its group, SIGKILL at the deadline
// of the instance's .stop file, or after the grace given to Start when there
// is none.
func RunShim(ctx context.Context, opts ShimOptions) error {
	// Caught, not ignored: an ignored signal would stay ignored in the
	// container, while a caught one is reset to its default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	if err := validName("instance id", opts.ID); err != nil {
		return err
	}
	if err := validName("container name", opts.Container); err != nil {
		return err
	}
	if opts.Dir == "" {
		return errors.New("shim: --dir is required")
	}
	s := &shim{
		dir:  opts.Dir,
		id:   opts.ID,
		name: opts.Container,
		idir: filepath.Join(opts.Dir, instancesDir, opts.ID),
	}
	s.cdir = filepath.Join(s.idir, opts.Container)
	defer s.recoverPanic()
	return s.run(ctx, sigs)
}

type shim struct {
	dir, id, name string
	idir, cdir    string
	spec          containerSpec
	pid           int // of the container, once started
	finished      bool
}

// recoverPanic turns a panic of the shim into a Lost container rather than a
// container that nobody supervises nor records (the shim's stderr is /dev/null).
func (s *shim) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	if s.pid > 0 {
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
	}
	if !s.finished && exists(s.cdir) {
		_ = s.finish(exitRecord{PID: s.pid, FinishedAt: time.Now(), ExitCode: 128 + int(syscall.SIGKILL), Reason: ReasonLost,
			Message: fmt.Sprintf("the shim failed: %v", r)})
	}
	panic(r)
}

// finish writes exit.json and, for the last container, the exits marker.
func (s *shim) finish(rec exitRecord) error {
	s.finished = true
	if err := writeJSON(filepath.Join(s.cdir, exitFile), rec); err != nil {
		return fmt.Errorf("recording exit of %s/%s: %w", s.id, s.name, err)
	}
	return markIfAllTerminated(s.dir, s.id)
}

// startError records a container that could not be started.
func (s *shim) startError(code int, msg string) error {
	return s.finish(exitRecord{FinishedAt: time.Now(), ExitCode: code, Reason: ReasonStartError, Message: msg})
}

func (s *shim) run(ctx context.Context, sigs <-chan os.Signal) error {
	spec, err := readSpec(s.dir, s.id)
	if err != nil {
		return fmt.Errorf("shim for %s/%s: %w", s.id, s.name, err)
	}
	var ok bool
	if s.spec, ok = spec.container(s.name); !ok {
		return fmt.Errorf("shim for %s/%s: no such container in the spec", s.id, s.name)
	}
	// The container folder is the claim: a second shim for the same
	// container (a Host that relaunched it after a restart) leaves it alone.
	if err := os.Mkdir(s.idir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("shim for %s/%s: %w", s.id, s.name, err)
	}
	if err := os.Mkdir(s.cdir, 0o755); errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("shim for %s/%s: %w", s.id, s.name, err)
	}
	// Stopped before it started: do not start it at all.
	if _, ok, _ := readStop(s.idir); ok {
		return s.finish(exitRecord{FinishedAt: time.Now(), ExitCode: 128 + int(syscall.SIGKILL), Reason: ReasonKilled,
			Message: "the instance was stopped before the container started"})
	}
	// Created on the first output: a silent container costs a file less.
	logf := &lazyFile{path: filepath.Join(s.cdir, logFile)}
	defer logf.Close()
	env := containerEnv(s.id, s.spec.Env)
	wd := s.spec.WorkingDir
	if wd == "" {
		wd = s.cdir
	} else if fi, err := os.Stat(wd); err != nil {
		return s.startError(128, fmt.Sprintf("working directory: %v", err))
	} else if !fi.IsDir() {
		return s.startError(128, fmt.Sprintf("working directory %s is not a directory", wd))
	}
	argv := append(append([]string{}, s.spec.Command...), s.spec.Args...)
	path, err := lookPath(argv[0], envValue(env, "PATH"), wd)
	if err != nil {
		code := 126
		if errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		return s.startError(code, err.Error())
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return s.startError(128, fmt.Sprintf("opening %s: %v", os.DevNull, err))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		devNull.Close()
		return s.startError(128, fmt.Sprintf("creating the output pipe: %v", err))
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Dir:   wd,
		Env:   env,
		Files: []uintptr{devNull.Fd(), pw.Fd(), pw.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	started := time.Now()
	pw.Close()
	devNull.Close()
	if err != nil {
		pr.Close()
		code := 128
		switch {
		case errors.Is(err, syscall.ENOENT):
			code = 127 // e.g. the interpreter of a script
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EPERM):
			code = 126
		}
		return s.startError(code, fmt.Sprintf("exec %s: %v", path, err))
	}
	s.pid = pid
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		copyLog(logf, pr)
	}()

	run := runningRecord{PID: pid, StartedAt: started, ShimPID: os.Getpid()}
	run.ShimStart, _, _ = procStart(run.ShimPID)
	run.BootID, _ = bootID()
	if err := writeRunning(filepath.Join(s.cdir, runningFile), run); err != nil {
		fmt.Fprintf(os.Stderr, "shim %s/%s: %v\n", s.id, s.name, err)
	}

	// The process exited: waitid with WNOWAIT leaves it a zombie, so its pid
	// (and process group id) cannot be reused before the group is killed below.
	zombie := make(chan struct{})
	go func() {
		_, _ = waitid(pPID, pid, wNoWait)
		close(zombie)
	}()

	st := stopper{pgid: pid, timer: time.NewTimer(time.Hour)}
	st.timer.Stop()
	// Stop may have written .stop before running.json existed, and then
	// could not signal this shim: look now that running.json is there.
	if rec, ok, _ := readStop(s.idir); ok {
		st.stop(rec.Deadline)
	}
	// A container whose folder was deleted (by hand, or a test's temporary
	// folder) has nobody to report to: it is killed.
	orphan := time.NewTicker(orphanPoll)
	defer orphan.Stop()
	orphaned := false
	done := ctx.Done()
loop:
	for {
		select {
		case <-orphan.C:
			if !orphaned && !exists(s.cdir) {
				orphaned = true
				st.kill()
			}
		case <-sigs:
			st.stop(s.deadline())
		case <-done:
			done = nil
			st.stop(s.deadline())
		case <-st.timer.C:
			st.kill()
		case <-zombie:
			break loop
		}
	}
	// Like the end of a container's pid namespace: nothing outlives the process.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_, ws, err := wait4(pid, 0)
	finished := time.Now()
	st.timer.Stop()
	rec := exitRecord{PID: pid, StartedAt: started, FinishedAt: finished}
	switch {
	case err != nil:
		rec.ExitCode, rec.Reason, rec.Message = 128, ReasonError, fmt.Sprintf("waiting for the process: %v", err)
	case ws.Signaled():
		rec.ExitCode = 128 + int(ws.Signal())
		rec.Reason = ReasonError
		if st.killed && ws.Signal() == syscall.SIGKILL {
			rec.Reason, rec.Message = ReasonKilled, st.killMessage()
		}
	default:
		rec.ExitCode = ws.ExitStatus()
		rec.Reason = ReasonError
		if rec.ExitCode == 0 {
			rec.Reason = ReasonCompleted
		}
	}
	select {
	case <-copied:
	case <-time.After(logDrainWait):
		pr.Close()
		<-copied
	}
	pr.Close()
	if orphaned {
		return nil
	}
	return s.finish(rec)
}

// lazyFile is a log file opened for appending on its first write.
type lazyFile struct {
	path string
	f    *os.File
	err  error
}

func (l *lazyFile) Write(p []byte) (int, error) {
	if l.f == nil && l.err == nil {
		l.f, l.err = os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.f.Write(p)
}

func (l *lazyFile) Close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// writeRunning writes running.json in place: one file operation less than
// writeJSON; readers take a file cut short for one not written yet.
func writeRunning(path string, run runningRecord) error {
	data, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// deadline returns when to SIGKILL: the deadline of the instance's .stop
// file, or the default grace from now for a SIGTERM not sent by Stop.
func (s *shim) deadline() time.Time {
	if rec, ok, _ := readStop(s.idir); ok {
		return rec.Deadline
	}
	return time.Now().Add(s.spec.Grace)
}

// stopper sends the stop signals to a process group: SIGTERM once, SIGKILL at
// the earliest deadline it was given.
type stopper struct {
	pgid     int
	timer    *time.Timer
	termSent bool
	killAt   time.Time // zero until a stop was asked
	termAt   time.Time
	killed   bool
}

func (st *stopper) stop(deadline time.Time) {
	if st.killed {
		return
	}
	now := time.Now()
	if !deadline.After(now) {
		if st.termAt.IsZero() {
			st.termAt = now
		}
		st.kill()
		return
	}
	if !st.termSent {
		st.termSent, st.termAt = true, now
		_ = syscall.Kill(-st.pgid, syscall.SIGTERM)
	}
	if st.killAt.IsZero() || deadline.Before(st.killAt) {
		st.killAt = deadline
		st.timer.Stop()
		st.timer.Reset(deadline.Sub(now))
	}
}

func (st *stopper) kill() {
	st.killed = true
	_ = syscall.Kill(-st.pgid, syscall.SIGKILL)
}

func (st *stopper) killMessage() string {
	if st.termSent {
		return fmt.Sprintf("killed: still running %v after SIGTERM", st.killAt.Sub(st.termAt).Round(time.Millisecond))
	}
	return "killed: stopped without a grace period"
}

// containerEnv returns the environment of a container: a minimal one
// overridden by env, each name once.
func containerEnv(id string, env []string) []string {
	all := append([]string{"PATH=" + defaultPath, "HOME=/", "HOSTNAME=" + id}, env...)
	index := make(map[string]int, len(all))
	out := make([]string, 0, len(all))
	for _, kv := range all {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// envValue returns the value of name in env.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// lookPath resolves file like a shell would with the container's PATH,
// relative paths against the working directory wd. A missing file gives an
// error satisfying errors.Is(err, fs.ErrNotExist).
func lookPath(file, path, wd string) (string, error) {
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory: %w", p, fs.ErrPermission)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not executable: %w", p, fs.ErrPermission)
		}
		return nil
	}
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(wd, p)
		}
		if err := check(p); err != nil {
			return "", fmt.Errorf("exec %s: %w", file, err)
		}
		return p, nil
	}
	var firstErr error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(wd, dir)
		}
		p := filepath.Join(dir, file)
		err := check(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", fmt.Errorf("exec %s: %w", file, firstErr)
	}
	return "", fmt.Errorf("exec %s: executable file not found in $PATH (%s): %w", file, path, fs.ErrNotExist)
}
