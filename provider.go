package flink

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// ResourceProvider starts and stops TaskManagers for the ResourceManager,
// as Flink's resource managers for YARN or Kubernetes do. The
// ResourceManager asks for more TaskManagers when slot requests exceed the
// free slots, and stops provider-started TaskManagers idle past the idle
// timeout. Methods may block until ctx ends and are called from one
// goroutine at a time.
type ResourceProvider interface {
	// StartTaskManager starts one TaskManager with the given id; it
	// registers with the ResourceManager once it is up.
	StartTaskManager(ctx context.Context, id ResourceID) error
	// StopTaskManager stops a TaskManager this provider started.
	StopTaskManager(ctx context.Context, id ResourceID) error
	// SlotsPerTaskManager is the number of slots each started TaskManager
	// offers, so the ResourceManager knows how many to start.
	SlotsPerTaskManager() int
	// Close stops every TaskManager the provider started.
	Close() error
}

// LocalProcessProvider starts TaskManagers as child processes of this
// binary: the binary is the JAR, so the child runs the same jobs. Command
// builds the command for a TaskManager id; the default re-executes
// os.Args[0] with FLINK_ROLES=taskmanager, FLINK_NODE_ID, FLINK_SLOTS and
// FLINK_JOBMANAGER_ADDR set, which NodeConfigFromEnv reads.
type LocalProcessProvider struct {
	// JobManagerAddr is the RPC address children register with.
	JobManagerAddr string
	// Slots per child TaskManager.
	Slots int
	// Command overrides how a child is started.
	Command func(id ResourceID) *exec.Cmd

	mu    sync.Mutex
	procs map[ResourceID]*exec.Cmd
}

// StartTaskManager implements ResourceProvider.
func (p *LocalProcessProvider) StartTaskManager(ctx context.Context, id ResourceID) error {
	var cmd *exec.Cmd
	if p.Command != nil {
		cmd = p.Command(id)
	} else {
		cmd = exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(),
			"FLINK_ROLES=taskmanager", "FLINK_NODE_ID="+string(id),
			fmt.Sprintf("FLINK_SLOTS=%d", p.Slots), "FLINK_JOBMANAGER_ADDR="+p.JobManagerAddr,
			"FLINK_BIND_ADDR=127.0.0.1:0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("flink: starting task manager %s: %w", id, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.procs == nil {
		p.procs = make(map[ResourceID]*exec.Cmd)
	}
	p.procs[id] = cmd
	return nil
}

// StopTaskManager implements ResourceProvider: SIGTERM, then wait.
func (p *LocalProcessProvider) StopTaskManager(ctx context.Context, id ResourceID) error {
	p.mu.Lock()
	cmd, ok := p.procs[id]
	delete(p.procs, id)
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("flink: task manager %s was not started by this provider", id)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

// SlotsPerTaskManager implements ResourceProvider.
func (p *LocalProcessProvider) SlotsPerTaskManager() int { return p.Slots }

// Running returns the ids of the children that run.
func (p *LocalProcessProvider) Running() []ResourceID {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []ResourceID
	for id := range p.procs {
		ids = append(ids, id)
	}
	return ids
}

// Close implements ResourceProvider.
func (p *LocalProcessProvider) Close() error {
	for _, id := range p.Running() {
		p.StopTaskManager(context.Background(), id)
	}
	return nil
}
