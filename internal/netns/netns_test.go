package netns

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary re-run inside a host dials the address in this variable
// and exits 0 if it connects within a second.
const dialEnv = "NETNS_TEST_DIAL"

func TestMain(m *testing.M) {
	if addr := os.Getenv(dialEnv); addr != "" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			os.Exit(3)
		}
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A host reaches the test process over the switch; cut, it reaches
// nothing; restored, it does again; its namespace is gone after cleanup.
func TestHostsCutRestore(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipped: network namespaces cannot be made here: %v", err)
	}
	pid := os.Getpid()
	var nsName string
	t.Run("network", func(t *testing.T) {
		n := New(t, netip.MustParsePrefix("10.99."+strconv.Itoa(pid%250)+".0/24"))
		a, b := n.AddHost("a"), n.AddHost("b")
		nsName = a.NS
		if a.Addr == b.Addr || a.Addr == n.Local {
			t.Fatalf("addresses %s %s %s", a.Addr, b.Addr, n.Local)
		}
		l, err := net.Listen("tcp", n.Local.String()+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		dial := func(h *Host) bool {
			cmd := h.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), dialEnv+"="+l.Addr().String())
			return cmd.Run() == nil
		}
		if !dial(a) || !dial(b) {
			t.Fatal("a host cannot reach the test process")
		}
		if err := a.Cut(); err != nil {
			t.Fatal(err)
		}
		if dial(a) {
			t.Fatal("a cut host reached the test process")
		}
		if !dial(b) {
			t.Fatal("cutting a cut b too")
		}
		if err := a.Restore(); err != nil {
			t.Fatal(err)
		}
		// The route back may take a moment more than the port (neighbour
		// entries, the bridge learning the host's address again).
		for deadline := time.Now().Add(10 * time.Second); !dial(a); {
			if time.Now().After(deadline) {
				t.Fatal("a restored host cannot reach the test process")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), nsName) {
		t.Fatalf("namespace %s left after the test:\n%s", nsName, out)
	}
	if _, err := os.Stat("/sys/class/net/pn" + strconv.Itoa(pid)); err == nil {
		t.Fatal("the test process' veth left after the test")
	}
}
