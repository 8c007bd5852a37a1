package gatekeeper

// Key era retirement (docs/keys.md, "The epoch protocol, decided", 5): a
// key era other than the serving one is retired once no contract is
// under it or migrating from it, or anyway key_migration_eras eras
// (era_length blocks each) after its successor was adopted. Its members
// then destroy their shares (api.TopicKeyEraRetired), and the chain
// counts no more partials of it.

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/internal/chain/block"
	"github.com/phalago/phala/internal/chain/eras"
	"github.com/phalago/phala/internal/chain/mq"
	"github.com/phalago/phala/internal/chain/store"
)

// keySetAdoptedKey is the state key of the block that adopted era's key
// set ("g/keyadopted/" ‖ era, 8 bytes big-endian; value varint height).
func keySetAdoptedKey(era uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("g/keyadopted/"), era)
}

// keySetAdopted returns the block that adopted era's key set, ok false if
// none is recorded.
func keySetAdopted(kv store.KV, era uint64) (int64, bool) {
	v := kv.Get(keySetAdoptedKey(era))
	if v == nil {
		return 0, false
	}
	h, n := binary.Varint(v)
	if n != len(v) {
		panic(fmt.Sprintf("corrupt adoption height of the key set of era %d", era))
	}
	return h, true
}

// Retirement reasons (the second field of api.KeyEraRetiredKey's value).
const (
	// RetiredUnused: no contract was under the era or migrating from it.
	RetiredUnused = api.KeyEraRetiredUnused
	// RetiredDeadline: key_migration_eras eras passed since the era's
	// successor was adopted; contracts still under it are stranded.
	RetiredDeadline = api.KeyEraRetiredDeadline
)

// Retired reports whether era's key set is retired (its partials are not
// counted any more).
func Retired(kv store.KV, era uint64) bool {
	return kv.Get(api.KeyEraRetiredKey(era)) != nil
}

// Retirement is one key era retired by RetireEras.
type Retirement struct {
	Era uint64
	// Deadline: retired at its deadline although contracts were still
	// under it (they are stranded).
	Deadline bool
}

// RetireEras retires every adopted key era other than the serving one
// that is not retired yet and that no contract needs (inUse false: no
// contract record has it as KeyEra, or as PrevKeyEra while migrating), or
// whose deadline passed: key_migration_eras·L blocks since its
// successor (the next adopted key set) was adopted, L the length of the
// era of that adoption (package eras: fixed once the era started). Each is recorded
// (api.KeyEraRetiredKey: varint height ‖ reason byte, RetiredUnused or
// RetiredDeadline), announced once (api.TopicKeyEraRetired, payload
// uvarint era, origin module gatekeeper) with event key_era_retired
// {era, reason "unused" | "deadline"}. It returns the eras retired, in
// ascending order. The contracts module calls it every
// ReplicaCheckInterval blocks with the eras its records name (the
// gatekeeper module reads no contract).
//
// hold (nil: never) postpones a deadline: while hold(era) is true (a
// contract under era lost every worker and a replacement can still be
// provisioned under era: docs/keys.md, "A contract that loses its last
// worker"), era is not retired at its deadline, for at most one more
// window of the same length; then it is retired anyway (P2 bounds how
// long a retired set's shares live).
func RetireEras(ctx *block.Context, inUse, hold func(era uint64) bool) []Retirement {
	serving, ok := ServingKeyEra(ctx.KV)
	if !ok {
		return nil
	}
	var keyEras []uint64
	prefix := []byte("g/keyset/")
	store.Iterate(ctx.KV, prefix, func(k, _ []byte) bool {
		if len(k) == len(prefix)+8 {
			keyEras = append(keyEras, binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return true
	})
	sched := eras.Of(ctx)
	var out []Retirement
	for i, era := range keyEras {
		if era == serving || Retired(ctx.KV, era) {
			continue
		}
		deadline := false
		if inUse(era) {
			if i+1 >= len(keyEras) {
				continue
			}
			adopted, ok := keySetAdopted(ctx.KV, keyEras[i+1])
			if !ok || ctx.Height < adopted {
				continue
			}
			// The window's eras are as long as the era of the adoption
			// (fixed once it started: package eras).
			overflow, window := bits.Mul64(ctx.Params.KeyMigrationEras, sched.Length(sched.EraOf(adopted)))
			if overflow != 0 || uint64(ctx.Height-adopted) < window {
				continue
			}
			if hold != nil && window <= math.MaxUint64/2 && uint64(ctx.Height-adopted) < 2*window && hold(era) {
				continue
			}
			deadline = true
		}
		retire(ctx, era, deadline)
		out = append(out, Retirement{Era: era, Deadline: deadline})
	}
	return out
}

func retire(ctx *block.Context, era uint64, deadline bool) {
	reason, why := RetiredUnused, "unused"
	if deadline {
		reason, why = RetiredDeadline, "deadline"
	}
	ctx.KV.Set(api.KeyEraRetiredKey(era), api.KeyEraRetirement{Height: ctx.Height, Reason: reason}.Encode())
	ctx.Event("key_era_retired", "era", strconv.FormatUint(era, 10), "reason", why)
	if err := mq.Emit(ctx, api.ModuleOrigin(Name), api.TopicKeyEraRetired, binary.AppendUvarint(nil, era)); err != nil {
		panic(fmt.Sprintf("announce the retirement of key era %d: %v", era, err)) // a module message of bounded size
	}
}
