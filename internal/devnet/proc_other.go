//go:build !linux

package devnet

import "syscall"

// childAttr: only Linux can signal children when their parent dies;
// elsewhere Devnet.Stop is what stops them.
func childAttr() *syscall.SysProcAttr { return nil }
