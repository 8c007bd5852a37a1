package loadgen

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/contract/contracttest"
)

// A short soak (the 30-minute one is `phala bench soak`, recorded in
// docs/benchmarks.md): load flows, a process is killed and restarted,
// the replicas' roots are compared and agree, the balances are exact.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a devnet of processes")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "../../cmd/pruntime", "../../cmd/pherry").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := RunSoak(ctx, SoakConfig{
		Home: t.TempDir(), PRuntimeBinary: filepath.Join(bin, "pruntime"), PherryBinary: filepath.Join(bin, "pherry"),
		TokenCode: contracttest.Build(t, filepath.Join("..", "..", "examples", "contracts", "token")),
		Duration:  30 * time.Second, Interval: 10 * time.Second, KillEvery: 12 * time.Second, RestartAfter: 2 * time.Second,
		Transfers: 2, Commands: 2, Queries: 1, TimeoutCommit: 200 * time.Millisecond, Seed: 7, Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Divergences) > 0 || !res.BalancesExact || len(res.Kills) == 0 || res.RootsCompared == 0 || len(res.Samples) != 3 ||
		res.Commands == 0 || res.Transfers == 0 || res.Queries == 0 || res.Samples[0].RSSMiB["worker1"] == 0 {
		t.Fatalf("soak result %+v\n%s", res, out.String())
	}
	for _, k := range res.Kills {
		// The killed process alone, by its role's pid.
		if !strings.Contains(k, "(pid ") || strings.Contains(k, "(pid 0)") {
			t.Errorf("kill event %q does not name the killed process's pid", k)
		}
	}
	t.Log(out.String())
}
