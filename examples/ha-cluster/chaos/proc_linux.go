package main

import "syscall"

// childAttr makes a node process die with the harness, so that an
// interrupted run leaves no cluster behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
