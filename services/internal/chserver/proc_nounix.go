//go:build !unix

package chserver

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
