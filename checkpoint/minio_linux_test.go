package checkpoint

import "syscall"

// minioProcAttr kills the server if the test binary dies without cleanup.
func minioProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
