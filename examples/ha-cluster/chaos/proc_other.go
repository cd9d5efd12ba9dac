//go:build !linux

package main

import "syscall"

// childAttr: without Linux's parent-death signal, the harness stops its
// node processes itself when it ends (an interrupted run may leave them).
func childAttr() *syscall.SysProcAttr { return nil }
