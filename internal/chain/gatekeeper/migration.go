package gatekeeper

import (
	"encoding/binary"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/migration"
	"github.com/phalago/phala/internal/chain/store"
)

// KeyHoldersOnOld counts the nodes holding key material of this chain
// that run a build migration m retires (docs/keys.md, "State migration"):
// the serving gatekeepers and the members of every adopted key set not
// retired, each counted once. migration.Progress.
func KeyHoldersOnOld(kv store.KV, m *api.RuntimeMigration) int {
	seen := map[crypto.PublicKey]bool{}
	count := func(k crypto.PublicKey) {
		if !seen[k] && migration.OnOldBuild(kv, m, k) {
			seen[k] = true
		}
	}
	for _, g := range Gatekeepers(kv) {
		count(g)
	}
	prefix := []byte("g/keyset/")
	store.Iterate(kv, prefix, func(k, _ []byte) bool {
		if len(k) != len(prefix)+8 {
			return true
		}
		era := binary.BigEndian.Uint64(k[len(prefix):])
		if Retired(kv, era) {
			return true
		}
		for _, mem := range KeySetOf(kv, era).Members {
			count(mem)
		}
		return true
	})
	return len(seen)
}
