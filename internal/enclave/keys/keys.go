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

// Entity holds a pRuntime's own keys. Its EcdhKey rotates (docs/keys.md,
// "EcdhKey rotation"): a renewal of its registration carries a fresh
// Pending key (StartRotation), which replaces Ecdh once the chain adopted
// it (FinishRotation); the old secret is then gone from the sealed file.
type Entity struct {
	Identity *crypto.KeyPair
	Ecdh     *crypto.KeyPair
	Pending  *crypto.KeyPair // nil unless a rotation is under way
	seeds    [3][crypto.SeedSize]byte
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
		e, err := decodeEntity(data)
		if err != nil {
			return nil, st, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, path, err)
		}
		return e, st, nil
	case errors.Is(err, sealing.ErrNotExist):
		var idSeed, ecdhSeed [crypto.SeedSize]byte
		e := Entity{}
		if e.Identity, idSeed, err = crypto.GenerateKeyPair(); err != nil {
			return nil, EntityCreated, err
		}
		if e.Ecdh, ecdhSeed, err = crypto.GenerateKeyPair(); err != nil {
			return nil, EntityCreated, err
		}
		e.seeds = [3][crypto.SeedSize]byte{idSeed, ecdhSeed}
		if err := s.Save(path, encodeSeeds(1, idSeed, ecdhSeed)); err != nil {
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
	e, err := decodeEntity(data)
	if err != nil {
		return nil, b, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, path, err)
	}
	return e, b, nil
}

// decodeEntity reads an entity file: version 1, the identity and ECDH
// seeds; version 2, also a pending ECDH seed.
func decodeEntity(data []byte) (*Entity, error) {
	n := 2
	if len(data) > 0 && data[0] == 2 {
		n = 3
	}
	seeds, err := decodeSeeds(data, n)
	if err != nil {
		return nil, err
	}
	e, err := entityFromSeeds(seeds[0], seeds[1])
	if err != nil || n == 2 {
		return e, err
	}
	if e.Pending, err = crypto.KeyPairFromSeed(seeds[2][:]); err != nil {
		return nil, err
	}
	e.seeds[2] = seeds[2]
	return e, nil
}

// encode returns the entity file's plaintext.
func (e *Entity) encode() []byte {
	if e.Pending == nil {
		return encodeSeeds(1, e.seeds[0], e.seeds[1])
	}
	return encodeSeeds(2, e.seeds[0], e.seeds[1], e.seeds[2])
}

// StartRotation makes a fresh pending EcdhKey (once; a rotation under way
// keeps its key) and seals it in dir with s, the chain's sealer: the next
// registration carries it. Errors: the key generation's or the sealing's
// (nothing changes then).
func (e *Entity) StartRotation(s *sealing.Sealer, dir string) error {
	if e.Pending != nil {
		return nil
	}
	kp, seed, err := crypto.GenerateKeyPair()
	if err != nil {
		return err
	}
	old := *e
	e.Pending, e.seeds[2] = kp, seed
	if err := s.Save(filepath.Join(dir, EntityFile), e.encode()); err != nil {
		*e = old
		return fmt.Errorf("seal the pending ECDH key: %w", err)
	}
	return nil
}

// FinishRotation makes the pending EcdhKey the EcdhKey (the chain adopted
// the registration carrying it) and seals the keys without the old one.
// Errors: the sealing's (nothing changes then).
func (e *Entity) FinishRotation(s *sealing.Sealer, dir string) error {
	if e.Pending == nil {
		return nil
	}
	old := *e
	e.Ecdh, e.Pending = e.Pending, nil
	e.seeds[1], e.seeds[2] = e.seeds[2], [crypto.SeedSize]byte{}
	if err := s.Save(filepath.Join(dir, EntityFile), e.encode()); err != nil {
		*e = old
		return fmt.Errorf("seal the rotated ECDH key: %w", err)
	}
	return nil
}

// EcdhFor returns the key pair (current or pending) whose public key is
// pub, nil if neither is: what a peer sealed to this pRuntime's
// registered EcdhKey opens with the matching secret.
func (e *Entity) EcdhFor(pub crypto.PublicKey) *crypto.KeyPair {
	switch {
	case e.Ecdh.Public() == pub:
		return e.Ecdh
	case e.Pending != nil && e.Pending.Public() == pub:
		return e.Pending
	}
	return nil
}

// Bind seals the entity keys in dir for the chain of s (binding without
// identity), replacing a pre-genesis file.
func (e *Entity) Bind(s *sealing.Sealer, dir string) error {
	if s.Binding().PreGenesis() || s.Binding().Identity != (crypto.PublicKey{}) {
		return errors.New("entity keys are bound to a chain, without identity")
	}
	return s.Save(filepath.Join(dir, EntityFile), e.encode())
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
	return &Entity{Identity: i, Ecdh: e, seeds: [3][crypto.SeedSize]byte{id, ecdh}}, nil
}

func encodeSeeds(version uint8, seeds ...[crypto.SeedSize]byte) []byte {
	w := codec.NewWriter(1 + 32*len(seeds))
	w.U8(version)
	for _, s := range seeds {
		w.Fixed(s[:])
	}
	return w.Bytes()
}

func decodeSeeds(b []byte, n int) ([][crypto.SeedSize]byte, error) {
	r := codec.NewReader(b)
	if v := r.U8(); int(v) != n-1 {
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
