//go:build unix && !linux

package chserver

import "syscall"

// sysProcAttr puts the server in its own process group, so that a terminal's
// Ctrl-C reaches the service, which stops the server in order.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
