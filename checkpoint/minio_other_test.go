//go:build !linux

package checkpoint

import "syscall"

func minioProcAttr() *syscall.SysProcAttr { return nil }
