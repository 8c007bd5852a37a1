package devnet

import "syscall"

// childAttr makes the kernel send a child process SIGTERM (its clean
// shutdown) if the devnet's process dies without stopping it (SIGKILL, a
// crash), so no pRuntime or pherry outlives its devnet. Linux ties the
// signal to the thread that started the child; the Go runtime keeps its
// threads for the life of the process unless a goroutine locked to one
// exits, which nothing here does.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
