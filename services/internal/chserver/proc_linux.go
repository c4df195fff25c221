package chserver

import "syscall"

// sysProcAttr puts the server in its own process group (a terminal's Ctrl-C
// reaches the service, which stops the server in order) and asks the kernel to
// SIGTERM it if the process that started it dies, so no orphan keeps the port
// and the data directory. (Pdeathsig fires when the starting OS thread exits;
// Go only retires threads of goroutines that exit while locked to them.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
