package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmttypes "github.com/cometbft/cometbft/types"
)

// MaxTrustedBytes bounds a stored light block (a header, its commit and
// its validator set: up to maxValidators validators).
const MaxTrustedBytes = 4 << 20

// FileStore is a TrustStore in a directory: one file per chain and trust
// root, <Dir>/<ChainDir(chain id)>/trusted-<root>.pb, holding the newest
// verified light block in CometBFT's protobuf encoding.
type FileStore struct{ Dir string }

var safeChainID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ChainDir is the directory name of a chain id: the id itself when it is
// a safe file name, else "x" and its hex.
func ChainDir(chainID string) string {
	if safeChainID.MatchString(chainID) {
		return chainID
	}
	return "x" + hex.EncodeToString([]byte(chainID))
}

// File is the path of the file holding chainID's header verified from
// root.
func (s FileStore) File(chainID, root string) string { return s.path(chainID, root) }

func (s FileStore) path(chainID, root string) string {
	if len(root) > 16 {
		root = root[:16]
	}
	return filepath.Join(s.Dir, ChainDir(chainID), "trusted-"+root+".pb")
}

// Load implements TrustStore. A missing file is no block and no error.
func (s FileStore) Load(chainID, root string) (*cmttypes.LightBlock, error) {
	p := s.path(chainID, root)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTrustedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	lb, err := DecodeTrusted(chainID, b)
	if err != nil {
		return nil, fmt.Errorf("%s (delete it to verify again from the trust root): %w", p, err)
	}
	return lb, nil
}

// Save implements TrustStore: it writes the file atomically (a temporary
// file renamed over it), readable by the user only.
func (s FileStore) Save(chainID, root string, lb *cmttypes.LightBlock) error {
	b, err := EncodeTrusted(lb)
	if err != nil {
		return err
	}
	p := s.path(chainID, root)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".trusted-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// EncodeTrusted encodes a light block (CometBFT protobuf).
func EncodeTrusted(lb *cmttypes.LightBlock) ([]byte, error) {
	pb, err := lb.ToProto()
	if err != nil {
		return nil, err
	}
	return pb.Marshal()
}

// DecodeTrusted decodes a stored light block of chainID and checks its
// structure (at most MaxTrustedBytes; header, commit and validator set
// consistent). It checks no signatures: a stored block was verified when
// it was stored.
func DecodeTrusted(chainID string, b []byte) (*cmttypes.LightBlock, error) {
	if len(b) > MaxTrustedBytes {
		return nil, fmt.Errorf("trusted header: %d bytes, at most %d", len(b), MaxTrustedBytes)
	}
	var pb cmtproto.LightBlock
	if err := pb.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("trusted header: %w", err)
	}
	lb, err := cmttypes.LightBlockFromProto(&pb)
	if err != nil {
		return nil, fmt.Errorf("trusted header: %w", err)
	}
	if err := lb.ValidateBasic(chainID); err != nil {
		return nil, fmt.Errorf("trusted header: %w", err)
	}
	if len(lb.ValidatorSet.Validators) > maxValidators {
		return nil, fmt.Errorf("trusted header: %d validators", len(lb.ValidatorSet.Validators))
	}
	return lb, nil
}
