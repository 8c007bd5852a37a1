// Package keys owns pRuntime's secrets: the entity keys every pRuntime
// generates at first start (IdentityKey signs, EcdhKey agrees channel keys),
// the gatekeepers' MasterKey, and the derivation of contract keys from it.
// Secrets are created from crypto/rand, sealed to disk through package
// sealing, and never leave this process: only public keys, signatures and
// channel ciphertexts do.
//
// # Contract keys
//
// ContractKey = MasterKey / "phala/contract" / deployer / code hash / sequence,
// each step a Substrate-style hard derivation (schnorrkel HDKD, the
// junction being the SCALE encoding of the bytes, hashed with blake2b-256
// when longer than 32 bytes, as Substrate does for long junctions). From the
// ContractKey: the contract's IdentityKey ("identity"), EcdhKey ("ecdh")
// and StorageKey ("storage", the 32-byte seed of that junction) by their own
// hard junctions. testdata/contract_keys.json holds vectors.
package keys

import (
	"encoding/binary"
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
}

// LoadOrCreateEntity loads the sealed entity keys from dir, or creates them
// if (and only if) the file does not exist. created reports which.
func LoadOrCreateEntity(p platform.Platform, dir string) (e *Entity, created bool, err error) {
	path := filepath.Join(dir, EntityFile)
	data, err := sealing.Load(p, path)
	switch {
	case err == nil:
		seeds, err := decodeSeeds(data, 2)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, path, err)
		}
		e, err := entityFromSeeds(seeds[0], seeds[1])
		return e, false, err
	case errors.Is(err, sealing.ErrNotExist):
		var idSeed, ecdhSeed [crypto.SeedSize]byte
		var e Entity
		if e.Identity, idSeed, err = crypto.GenerateKeyPair(); err != nil {
			return nil, false, err
		}
		if e.Ecdh, ecdhSeed, err = crypto.GenerateKeyPair(); err != nil {
			return nil, false, err
		}
		if err := sealing.Save(p, path, encodeSeeds(idSeed, ecdhSeed)); err != nil {
			return nil, false, fmt.Errorf("save entity keys: %w", err)
		}
		return &e, true, nil
	default:
		return nil, false, fmt.Errorf("load entity keys (refusing to create a new identity over an unreadable one): %w", err)
	}
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
	return &Entity{Identity: i, Ecdh: e}, nil
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

// Master is the MasterKey, held only by gatekeepers.
type Master struct {
	key  *crypto.KeyPair
	seed [crypto.SeedSize]byte
}

// GenerateMaster creates a new MasterKey from crypto/rand.
func GenerateMaster() (*Master, error) {
	kp, seed, err := crypto.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	return &Master{key: kp, seed: seed}, nil
}

// MasterFromSeed rebuilds a MasterKey (received from another gatekeeper).
func MasterFromSeed(seed [crypto.SeedSize]byte) (*Master, error) {
	kp, err := crypto.KeyPairFromSeed(seed[:])
	if err != nil {
		return nil, err
	}
	return &Master{key: kp, seed: seed}, nil
}

// Public returns the master public key.
func (m *Master) Public() crypto.PublicKey { return m.key.Public() }

// Seed returns the secret seed, for sealing and for sharing over a channel
// to another gatekeeper only.
func (m *Master) Seed() [crypto.SeedSize]byte { return m.seed }

// Save seals the MasterKey into dir.
func (m *Master) Save(p platform.Platform, dir string) error {
	return sealing.Save(p, filepath.Join(dir, MasterFile), encodeSeeds(m.seed))
}

// LoadMaster loads the sealed MasterKey from dir; sealing.ErrNotExist if
// this pRuntime holds none.
func LoadMaster(p platform.Platform, dir string) (*Master, error) {
	path := filepath.Join(dir, MasterFile)
	data, err := sealing.Load(p, path)
	if err != nil {
		return nil, err
	}
	seeds, err := decodeSeeds(data, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", sealing.ErrCorrupt, path, err)
	}
	return MasterFromSeed(seeds[0])
}

// ContractKeys are the keys of one contract.
type ContractKeys struct {
	Seed     [crypto.SeedSize]byte // the ContractKey, provisioned to workers
	Identity *crypto.KeyPair
	Ecdh     *crypto.KeyPair
	Storage  [32]byte
}

// ContractKey derives the keys of the contract uploaded by deployer with
// codeHash as the deployer's sequence-th upload.
func (m *Master) ContractKey(deployer crypto.PublicKey, codeHash [32]byte, sequence uint64) (*ContractKeys, error) {
	kp := m.key
	var seed [crypto.SeedSize]byte
	for _, j := range [][]byte{[]byte("phala/contract"), deployer[:], codeHash[:], binary.LittleEndian.AppendUint64(nil, sequence)} {
		var err error
		if seed, err = kp.HardDeriveSeed(j); err != nil {
			return nil, err
		}
		if kp, err = crypto.KeyPairFromSeed(seed[:]); err != nil {
			return nil, err
		}
	}
	return ContractKeysFromSeed(seed)
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
