// Package keys owns pRuntime's own secrets: the entity keys every pRuntime
// generates at first start (IdentityKey signs, EcdhKey agrees channel
// keys), and the expansion of a contract's seed into its keys. Secrets are
// created from crypto/rand, sealed to disk through package sealing, and
// never leave this process: only public keys, signatures and channel
// ciphertexts do. (A gatekeeper's MasterKey shares are
// internal/enclave/gatekeeper's, sealed in MasterFile.)
//
// # Contract keys
//
// A contract's seed is a threshold DH-PRF of its key era's MasterKey
// (docs/keys.md, internal/enclave/threshold). From the seed: the
// contract's IdentityKey ("identity"), EcdhKey ("ecdh") and StorageKey
// ("storage", the 32-byte seed of that junction), each a Substrate-style
// hard derivation (schnorrkel HDKD, the junction being the SCALE encoding
// of the bytes). testdata/contract_keys.json holds vectors.
package keys

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/enclave/platform"
	"github.com/phalago/phala/internal/enclave/sealing"
)

// File names under the data directory.
const (
	EntityFile = "entity.sealed"
	MasterFile = "master.sealed"
)

// Entity holds a pRuntime's own keys.
type Entity struct {
	Identity *crypto.KeyPair
	Ecdh     *crypto.KeyPair
	seeds    [2][crypto.SeedSize]byte
}

// EntityState says where LoadOrCreateEntity found the entity keys.
type EntityState int

// Entity states.
const (
	// EntityLoaded: sealed for this chain by an earlier start.
	EntityLoaded EntityState = iota
	// EntityCreated: created now, sealed for this chain.
	EntityCreated
	// EntityPreGenesis: created before the genesis (CreatePreGenesisEntity)
	// and not yet bound to a chain; the caller binds it with Bind once its
	// first-start work is done.
	EntityPreGenesis
)

// LoadOrCreateEntity loads the sealed entity keys from dir, or creates them
// if (and only if) the file does not exist. s is the sealer of the chain
// (binding without identity). Keys sealed for another chain fail with
// sealing.ErrOtherChain: they are never used, and never replaced.
func LoadOrCreateEntity(s *sealing.Sealer, dir string) (*Entity, EntityState, error) {
	path := filepath.Join(dir, EntityFile)
	st := EntityLoaded
	if b, err := sealing.ReadBinding(path); err == nil && b.PreGenesis() && !s.Binding().PreGenesis() {
		st, s = EntityPreGenesis, sealing.NewSealer(s.Platform(), sealing.Binding{})
	}
	data, err := s.Load(path)
	switch {
	case err == nil:
		seeds, err := decodeSeeds(data, 2)
		if err != nil {
			return nil, st, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, path, err)
		}
		e, err := entityFromSeeds(seeds[0], seeds[1])
		return e, st, err
	case errors.Is(err, sealing.ErrNotExist):
		var idSeed, ecdhSeed [crypto.SeedSize]byte
		e := Entity{}
		if e.Identity, idSeed, err = crypto.GenerateKeyPair(); err != nil {
			return nil, EntityCreated, err
		}
		if e.Ecdh, ecdhSeed, err = crypto.GenerateKeyPair(); err != nil {
			return nil, EntityCreated, err
		}
		e.seeds = [2][crypto.SeedSize]byte{idSeed, ecdhSeed}
		if err := s.Save(path, encodeSeeds(idSeed, ecdhSeed)); err != nil {
			return nil, EntityCreated, fmt.Errorf("save entity keys: %w", err)
		}
		return &e, EntityCreated, nil
	default:
		return nil, st, fmt.Errorf("load entity keys (refusing to create a new identity over an unreadable one): %w", err)
	}
}

// CreatePreGenesisEntity creates (or loads, if dir already holds them) the
// entity keys of a genesis gatekeeper before the genesis naming its
// identity exists: sealed with the pre-genesis binding, which the first
// pRuntime start binds to its chain for good.
func CreatePreGenesisEntity(p platform.Platform, dir string) (*Entity, error) {
	e, _, err := LoadOrCreateEntity(sealing.NewSealer(p, sealing.Binding{}), dir)
	return e, err
}

// LoadEntity reads the sealed entity keys in dir without creating or
// changing anything, with the binding found in the file (pre-genesis or a
// chain's), which it returns. sealing.ErrNotExist if dir holds no entity
// keys; sealing.ErrCorrupt or ErrForeign if they cannot be unsealed on p.
func LoadEntity(p platform.Platform, dir string) (*Entity, sealing.Binding, error) {
	path := filepath.Join(dir, EntityFile)
	b, err := sealing.ReadBinding(path)
	if err != nil {
		return nil, b, err
	}
	data, err := sealing.NewSealer(p, b).Load(path)
	if err != nil {
		return nil, b, err
	}
	seeds, err := decodeSeeds(data, 2)
	if err != nil {
		return nil, b, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, path, err)
	}
	e, err := entityFromSeeds(seeds[0], seeds[1])
	return e, b, err
}

// Bind seals the entity keys in dir for the chain of s (binding without
// identity), replacing a pre-genesis file.
func (e *Entity) Bind(s *sealing.Sealer, dir string) error {
	if s.Binding().PreGenesis() || s.Binding().Identity != (crypto.PublicKey{}) {
		return errors.New("entity keys are bound to a chain, without identity")
	}
	return s.Save(filepath.Join(dir, EntityFile), encodeSeeds(e.seeds[0], e.seeds[1]))
}

func entityFromSeeds(id, ecdh [crypto.SeedSize]byte) (*Entity, error) {
	i, err := crypto.KeyPairFromSeed(id[:])
	if err != nil {
		return nil, err
	}
	e, err := crypto.KeyPairFromSeed(ecdh[:])
	if err != nil {
		return nil, err
	}
	return &Entity{Identity: i, Ecdh: e, seeds: [2][crypto.SeedSize]byte{id, ecdh}}, nil
}

func encodeSeeds(seeds ...[crypto.SeedSize]byte) []byte {
	w := codec.NewWriter(1 + 32*len(seeds))
	w.U8(1)
	for _, s := range seeds {
		w.Fixed(s[:])
	}
	return w.Bytes()
}

func decodeSeeds(b []byte, n int) ([][crypto.SeedSize]byte, error) {
	r := codec.NewReader(b)
	if v := r.U8(); v != 1 {
		return nil, fmt.Errorf("key file version %d", v)
	}
	seeds := make([][crypto.SeedSize]byte, n)
	for i := range seeds {
		r.Fixed(seeds[i][:])
	}
	return seeds, r.Done()
}

// ContractKeys are the keys of one contract.
type ContractKeys struct {
	Seed     [crypto.SeedSize]byte // the ContractKey, provisioned to workers
	Identity *crypto.KeyPair
	Ecdh     *crypto.KeyPair
	Storage  [32]byte
}

// ContractKeysFromSeed expands a provisioned ContractKey.
func ContractKeysFromSeed(seed [crypto.SeedSize]byte) (*ContractKeys, error) {
	ck, err := crypto.KeyPairFromSeed(seed[:])
	if err != nil {
		return nil, err
	}
	child := func(name string) (*crypto.KeyPair, [32]byte, error) {
		s, err := ck.HardDeriveSeed([]byte(name))
		if err != nil {
			return nil, s, err
		}
		kp, err := crypto.KeyPairFromSeed(s[:])
		return kp, s, err
	}
	out := &ContractKeys{Seed: seed}
	if out.Identity, _, err = child("identity"); err != nil {
		return nil, err
	}
	if out.Ecdh, _, err = child("ecdh"); err != nil {
		return nil, err
	}
	if _, out.Storage, err = child("storage"); err != nil {
		return nil, err
	}
	return out, nil
}
