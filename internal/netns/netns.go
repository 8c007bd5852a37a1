// Package netns builds a small private network of Linux network namespaces
// for tests: each namespace is a host with its own IPv4 address on one
// /24, linked by a veth pair to a bridge that lives in a namespace of its
// own (the switch), so the machine's own interfaces and routes are left
// alone except for one veth that puts the test process itself on the
// network. A host's link can be cut and restored (its switch port set down
// and up), and programs run inside a host with `ip netns exec`.
//
// Everything a network creates carries its name prefix, which holds the
// pid of the process that made it: New removes what dead processes of the
// same kind left behind, and the test's cleanup removes the network
// (namespaces, veths, the bridge) even when the test fails. It needs root
// and the ip command (iproute2); Available says why not.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ErrUnavailable: network namespaces cannot be made here.
var ErrUnavailable = errors.New("network namespaces unavailable")

// Available reports whether this process can make network namespaces: it
// must be root and `ip netns add` must work. The error says why not.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (uid %d)", ErrUnavailable, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (iproute2): %v", ErrUnavailable, err)
	}
	name := "nsprobe" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns add: %v: %s", ErrUnavailable, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns del: %v: %s", ErrUnavailable, err, bytes.TrimSpace(out))
	}
	return nil
}

// Network is a switch namespace with its bridge, the hosts linked to it,
// and the test process' own port on it.
type Network struct {
	t      testing.TB
	prefix string       // of every namespace and of the root-side veth
	subnet netip.Prefix // a /24
	Local  netip.Addr   // the test process' address on the network
	hosts  []*Host
}

// Host is one namespace of a Network.
type Host struct {
	n    *Network
	Name string     // short name given to AddHost
	NS   string     // the namespace's name
	Addr netip.Addr // its address on the network
	port string     // its veth's name in the switch namespace
}

// kind is the fixed start of every name this package makes; the pid of
// the creating process follows it.
const kind = "phnet"

// New creates a network on subnet (a /24 of private addresses, e.g.
// 10.214.7.0/24) and removes it when the test ends. The test process gets
// the subnet's .254 address through a veth in its own namespace. Hosts
// get .1, .2, ... in the order they are added. It fails the test if a
// part cannot be made; call Available first to skip where namespaces
// cannot be made at all.
func New(t testing.TB, subnet netip.Prefix) *Network {
	t.Helper()
	if subnet.Bits() != 24 || !subnet.Addr().Is4() {
		t.Fatalf("netns: subnet %s: want an IPv4 /24", subnet)
	}
	removeLeftovers(t)
	n := &Network{t: t, prefix: kind + strconv.Itoa(os.Getpid()) + "-", subnet: subnet.Masked()}
	n.Local = n.addr(254)
	t.Cleanup(n.remove)
	sw := n.switchNS()
	n.run("ip", "netns", "add", sw)
	n.run("ip", "-n", sw, "link", "set", "lo", "up")
	n.run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	n.run("ip", "-n", sw, "link", "set", "br0", "up")
	// The test process' port: a veth from this namespace to the bridge.
	local := n.localLink()
	n.run("ip", "link", "add", local, "type", "veth", "peer", "name", "up0", "netns", sw)
	n.run("ip", "-n", sw, "link", "set", "up0", "master", "br0", "up")
	n.run("ip", "addr", "add", n.Local.String()+"/24", "dev", local)
	n.run("ip", "link", "set", local, "up")
	return n
}

func (n *Network) addr(last byte) netip.Addr {
	b := n.subnet.Addr().As4()
	b[3] = last
	return netip.AddrFrom4(b)
}

func (n *Network) switchNS() string { return n.prefix + "switch" }

// localLink is the name of the root-side veth: at most 15 bytes.
func (n *Network) localLink() string {
	s := "pn" + strconv.Itoa(os.Getpid())
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}

// AddHost creates a namespace named after name with the next address,
// linked to the switch, loopback up.
func (n *Network) AddHost(name string) *Host {
	n.t.Helper()
	i := len(n.hosts) + 1
	if i > 250 {
		n.t.Fatal("netns: at most 250 hosts")
	}
	h := &Host{n: n, Name: name, NS: n.prefix + name, Addr: n.addr(byte(i)), port: "p" + strconv.Itoa(i)}
	n.run("ip", "netns", "add", h.NS)
	n.run("ip", "-n", h.NS, "link", "set", "lo", "up")
	n.run("ip", "-n", h.NS, "link", "add", "eth0", "type", "veth", "peer", "name", h.port, "netns", n.switchNS())
	n.run("ip", "-n", n.switchNS(), "link", "set", h.port, "master", "br0", "up")
	n.run("ip", "-n", h.NS, "addr", "add", h.Addr.String()+"/24", "dev", "eth0")
	n.run("ip", "-n", h.NS, "link", "set", "eth0", "up")
	n.hosts = append(n.hosts, h)
	return h
}

// Cut takes the host off the network: its switch port goes down, so
// nothing reaches it or leaves it (connections stall, as when a cable is
// pulled) until Restore.
func (h *Host) Cut() error { return h.n.linkSet(h.port, "down") }

// Restore puts a cut host back on the network, and waits (up to 10 s)
// until its switch port is up: setting a link up takes effect
// asynchronously (carrier, then the bridge port's state).
func (h *Host) Restore() error {
	if err := h.n.linkSet(h.port, "up"); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", h.n.switchNS(), "-o", "link", "show", h.port).CombinedOutput()
		if err == nil && bytes.Contains(out, []byte("state UP")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns: %s not up 10 s after restoring it: %s", h.port, bytes.TrimSpace(out))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Network) linkSet(port, state string) error {
	if out, err := exec.Command("ip", "-n", n.switchNS(), "link", "set", port, state).CombinedOutput(); err != nil {
		return fmt.Errorf("netns: set %s %s: %v: %s", port, state, err, bytes.TrimSpace(out))
	}
	return nil
}

// Command returns a command that runs bin with args inside the host's
// namespace (`ip netns exec`, which execs bin: the command's process is
// bin's).
func (h *Host) Command(bin string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, bin}, args...)...)
}

func (n *Network) run(name string, args ...string) {
	n.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		n.t.Fatalf("netns: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// remove deletes every namespace of the network (their veths go with
// them, and the bridge with the switch namespace) and the root-side veth
// if it is still there.
func (n *Network) remove() {
	for _, ns := range namespaces(n.prefix) {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			n.t.Errorf("netns: remove %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.localLink())); err == nil {
		exec.Command("ip", "link", "del", n.localLink()).Run()
	}
}

// namespaces lists the named network namespaces whose names start with
// prefix.
func namespaces(prefix string) []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// removeLeftovers deletes the namespaces and root-side veths of networks
// whose creating process is gone (a run killed before its cleanup).
func removeLeftovers(t testing.TB) {
	dead := func(pid string) bool {
		_, err := os.Stat(filepath.Join("/proc", pid))
		return errors.Is(err, os.ErrNotExist)
	}
	for _, ns := range namespaces(kind) {
		pid, _, ok := strings.Cut(strings.TrimPrefix(ns, kind), "-")
		if !ok || dead(pid) {
			t.Logf("netns: removing %s, left by process %s", ns, pid)
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		if pid, ok := strings.CutPrefix(l.Name(), "pn"); ok && pid != "" && strings.Trim(pid, "0123456789") == "" && dead(pid) {
			t.Logf("netns: removing veth %s, left by process %s", l.Name(), pid)
			exec.Command("ip", "link", "del", l.Name()).Run()
		}
	}
}
