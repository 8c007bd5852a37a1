// Package lightclient is pRuntime's verifier of the chain: it accepts a
// header only if CometBFT's light verifier (light.VerifyAdjacent) accepts it
// on top of the last verified one, starting from the validators of the
// trusted genesis and following every validator-set change. It is pure: no
// network, and time comes from the verified headers, never the host clock.
package lightclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cometbft/cometbft/light"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api/codec"
)

// Errors.
var (
	ErrNotNext   = errors.New("header is not the next height")
	ErrUntrusted = errors.New("header does not verify")
	// ErrFork (wrapped in ErrUntrusted) means a header's LastBlockID is not
	// the hash of the trusted header: it belongs to another fork.
	ErrFork = errors.New("header does not extend the trusted header")
)

// The trusting period is irrelevant when every header is verified in order
// (adjacent verification); it is set beyond any chain's life because the
// enclave has no trusted clock to measure it against.
const trustingPeriod = 100 * 365 * 24 * time.Hour

// Genesis is what pRuntime trusts before it has verified anything.
type Genesis struct {
	ChainID string
	Hash    [32]byte // GenesisHash of the document

	InitialHeight int64
	Time          time.Time
	Validators    *cmttypes.ValidatorSet
}

// GenesisFromDoc extracts the trust root from a CometBFT genesis document.
func GenesisFromDoc(doc *cmttypes.GenesisDoc) (*Genesis, error) {
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	vals := make([]*cmttypes.Validator, len(doc.Validators))
	for i, v := range doc.Validators {
		vals[i] = cmttypes.NewValidator(v.PubKey, v.Power)
	}
	h, err := GenesisHash(doc)
	if err != nil {
		return nil, err
	}
	return &Genesis{ChainID: doc.ChainID, Hash: h, InitialHeight: doc.InitialHeight, Time: doc.GenesisTime, Validators: cmttypes.NewValidatorSet(vals)}, nil
}

// GenesisHash identifies a chain with its ChainID: SHA-256 over a canonical
// encoding (api/codec) of the CometBFT genesis document after
// ValidateAndComplete: the context "phala/genesis v1", chain id, initial
// height, genesis time (unix nanoseconds), each validator (key type, key
// bytes, voting power; names are not covered), the consensus parameters
// (protobuf), the initial app hash and the app state (JSON, compacted, so
// whitespace does not matter). Two documents differing in any of these are
// different chains. pRuntime binds every sealed file to it.
func GenesisHash(doc *cmttypes.GenesisDoc) ([32]byte, error) {
	if err := doc.ValidateAndComplete(); err != nil {
		return [32]byte{}, fmt.Errorf("genesis: %w", err)
	}
	w := codec.NewWriter(1024 + len(doc.AppState))
	w.String("phala/genesis v1")
	w.String(doc.ChainID)
	w.Varint(doc.InitialHeight)
	w.Varint(doc.GenesisTime.UnixNano())
	w.Uvarint(uint64(len(doc.Validators)))
	for _, v := range doc.Validators {
		w.String(v.PubKey.Type())
		w.BytesField(v.PubKey.Bytes())
		w.Varint(v.Power)
	}
	var params []byte
	if doc.ConsensusParams != nil {
		pp := doc.ConsensusParams.ToProto()
		b, err := pp.Marshal()
		if err != nil {
			return [32]byte{}, fmt.Errorf("genesis consensus params: %w", err)
		}
		params = b
	}
	w.BytesField(params)
	w.BytesField(doc.AppHash)
	var app bytes.Buffer
	if len(doc.AppState) > 0 {
		if err := json.Compact(&app, doc.AppState); err != nil {
			return [32]byte{}, fmt.Errorf("genesis app_state: %w", err)
		}
	}
	w.BytesField(app.Bytes())
	return sha256.Sum256(w.Bytes()), nil
}

// Client holds the last verified header.
type Client struct {
	genesis *Genesis
	trusted *cmttypes.SignedHeader // nil before the first header

	// trustedHash is trusted.Hash() once VerifyBatch has needed it (nil
	// until then; Verify resets it).
	trustedHash []byte
}

// New returns a client at genesis, or resumed at a previously verified
// header (as returned by Trusted).
func New(g *Genesis, trusted *cmttypes.SignedHeader) *Client {
	return &Client{genesis: g, trusted: trusted}
}

// Height is the height of the last verified header (InitialHeight-1 before
// the first).
func (c *Client) Height() int64 {
	if c.trusted == nil {
		return c.genesis.InitialHeight - 1
	}
	return c.trusted.Height
}

// Trusted returns the last verified header (nil before the first).
func (c *Client) Trusted() *cmttypes.SignedHeader { return c.trusted }

// Time returns the time of the last verified header (genesis time before).
func (c *Client) Time() time.Time {
	if c.trusted == nil {
		return c.genesis.Time
	}
	return c.trusted.Time
}

// Verify accepts sh, signed by vals, as the next header. On error nothing
// changes.
func (c *Client) Verify(sh *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet) error {
	if sh == nil || sh.Header == nil || sh.Commit == nil || vals == nil {
		return fmt.Errorf("%w: incomplete header", ErrUntrusted)
	}
	if want := c.Height() + 1; sh.Height != want {
		return fmt.Errorf("%w: got height %d, expected %d", ErrNotNext, sh.Height, want)
	}
	if c.trusted == nil {
		if err := c.verifyFirst(sh, vals); err != nil {
			return fmt.Errorf("%w: height %d: %v", ErrUntrusted, sh.Height, err)
		}
	} else {
		// VerifyAdjacent checks signatures and the validator-set hand-over,
		// not that sh extends the trusted block: without this, a header of
		// another chain from the same genesis (a fork signed by the same
		// validators) would be accepted on top of ours.
		if want := c.trusted.Hash(); !bytes.Equal(sh.LastBlockID.Hash, want) {
			return fmt.Errorf("%w: height %d: %v: it extends block %X, the trusted block %d is %X", ErrUntrusted, sh.Height, ErrFork, sh.LastBlockID.Hash, c.trusted.Height, want)
		}
		if err := light.VerifyAdjacent(c.trusted, sh, vals, trustingPeriod, sh.Time, time.Second); err != nil {
			return fmt.Errorf("%w: height %d: %v", ErrUntrusted, sh.Height, err)
		}
	}
	c.trusted, c.trustedHash = sh, nil
	return nil
}

// verifyFirst checks the first header against the genesis validators.
func (c *Client) verifyFirst(sh *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet) error {
	g := c.genesis
	if err := sh.ValidateBasic(g.ChainID); err != nil {
		return err
	}
	if !bytes.Equal(vals.Hash(), g.Validators.Hash()) || !bytes.Equal(sh.ValidatorsHash, g.Validators.Hash()) {
		return errors.New("first header is not signed by the genesis validators")
	}
	if sh.Time.Before(g.Time) {
		return errors.New("first header predates genesis")
	}
	return g.Validators.VerifyCommitLight(g.ChainID, sh.Commit.BlockID, sh.Height, sh.Commit)
}

// EncodeHeader encodes a signed header with its validator set (protobuf),
// as the relayer sends them.
func EncodeHeader(sh *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet) ([]byte, []byte, error) {
	shb, err := sh.ToProto().Marshal()
	if err != nil {
		return nil, nil, err
	}
	vp, err := vals.ToProto()
	if err != nil {
		return nil, nil, err
	}
	vb, err := vp.Marshal()
	return shb, vb, err
}

// DecodeHeader decodes untrusted protobuf bytes of a signed header and its
// validator set and checks their structure (not their signatures).
func DecodeHeader(shb, vb []byte) (*cmttypes.SignedHeader, *cmttypes.ValidatorSet, error) {
	var shp cmtproto.SignedHeader
	if err := shp.Unmarshal(shb); err != nil {
		return nil, nil, fmt.Errorf("%w: decode header: %v", ErrUntrusted, err)
	}
	sh, err := cmttypes.SignedHeaderFromProto(&shp)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: decode header: %v", ErrUntrusted, err)
	}
	var vp cmtproto.ValidatorSet
	if err := vp.Unmarshal(vb); err != nil {
		return nil, nil, fmt.Errorf("%w: decode validators: %v", ErrUntrusted, err)
	}
	vals, err := cmttypes.ValidatorSetFromProto(&vp)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: decode validators: %v", ErrUntrusted, err)
	}
	return sh, vals, nil
}

// DecodeHeaderOnly decodes a signed header checkpointed by pRuntime itself.
func DecodeHeaderOnly(shb []byte) (*cmttypes.SignedHeader, *cmttypes.ValidatorSet, error) {
	var shp cmtproto.SignedHeader
	if err := shp.Unmarshal(shb); err != nil {
		return nil, nil, err
	}
	sh, err := cmttypes.SignedHeaderFromProto(&shp)
	return sh, nil, err
}
