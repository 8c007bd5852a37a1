package client

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/phalago/phala/api"
)

// Proved reads of the key lifecycle (docs/keys.md): the serving key era,
// the key set of an era, the running DKG, and all of them at one height
// (KeyStatus).

// ServingKeyEra returns the era of the serving key set (new contracts are
// derived under it), proved, with the height it reflects; ok is false
// (proved absent) until the genesis MasterKey is announced.
func (c *Client) ServingKeyEra(ctx context.Context) (era uint64, ok bool, height int64, err error) {
	return c.servingKeyEraAt(ctx, 0)
}

// KeySet returns the key set of era, proved, with the height it reflects;
// nil (proved absent) when no key set of era was adopted.
func (c *Client) KeySet(ctx context.Context, era uint64) (*api.KeySet, int64, error) {
	return c.KeySetAt(ctx, era, 0)
}

// Dkg returns the running DKG of an elected set (api.DkgState), proved,
// with the height it reflects; nil (proved absent) when none runs.
func (c *Client) Dkg(ctx context.Context) (*api.DkgState, int64, error) {
	return c.dkgAt(ctx, 0)
}

// KeyStatus is the key lifecycle's state at one height (every field read
// from the state after block Height, each proved by header Height+1).
type KeyStatus struct {
	Height int64
	// HasEra is false before the genesis MasterKey is announced (no key
	// set serves); Era is then 0 and Serving nil.
	HasEra  bool
	Era     uint64      // the serving key era
	Serving *api.KeySet // the key set of Era
	// Dkg is the elected set's running DKG, nil when none runs.
	Dkg *api.DkgState
	// Election is the election record of the DKG's era when one runs,
	// else of the serving era (nil for era 0, the genesis set, which no
	// election made): its Confirmed members are the participants whose
	// DKG result was adopted.
	Election *api.ElectionRecord
	// Params are the chain parameters at Height (the DKG's deadlines
	// come from them: Params.DkgPhase, Params.DkgDealWindow).
	Params api.Params
	// Migration is the running runtime migration (nil: none);
	// LastMigration the last completed one (nil: none).
	Migration     *api.RuntimeMigration
	LastMigration *api.RuntimeMigrated
}

// KeyStatus reads the serving key era and its key set, the running DKG,
// the election record of the era it concerns, the parameters, and the
// running and last runtime migrations, all
// at the node's latest committed height, proved. Errors: those of Prove;
// api.ErrBadProof if the chain's state contradicts itself (a serving era
// without its key set, a record naming another era).
func (c *Client) KeyStatus(ctx context.Context) (*KeyStatus, error) {
	era, ok, h, err := c.servingKeyEraAt(ctx, 0)
	if err != nil {
		return nil, err
	}
	st := &KeyStatus{Height: h, HasEra: ok, Era: era}
	if ok {
		if st.Serving, _, err = c.KeySetAt(ctx, era, h); err != nil {
			return nil, err
		}
		if st.Serving == nil {
			return nil, fmt.Errorf("%w: the serving key era is %d but its key set is absent at height %d", api.ErrBadProof, era, h)
		}
	}
	if st.Dkg, _, err = c.dkgAt(ctx, h); err != nil {
		return nil, err
	}
	recEra, wantRec := era, ok && era > 0
	if st.Dkg != nil {
		recEra, wantRec = st.Dkg.Era, true
	}
	if wantRec {
		if st.Election, err = c.electionAt(ctx, recEra, h); err != nil {
			return nil, err
		}
	}
	pv, err := c.ProveAt(ctx, api.QueryParams, nil, h)
	if err != nil {
		return nil, err
	}
	p, err := api.DecodeParams(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("parameters at height %d: %w", h, err)
	}
	st.Params = p
	if st.Migration, st.LastMigration, _, err = c.Migrations(ctx, h); err != nil {
		return nil, err
	}
	return st, nil
}

// prove is Prove at the latest height (height 0) or ProveAt height.
func (c *Client) prove(ctx context.Context, path string, data []byte, height int64) (*ProvedValue, error) {
	if height == 0 {
		return c.Prove(ctx, path, data)
	}
	return c.ProveAt(ctx, path, data, height)
}

func (c *Client) servingKeyEraAt(ctx context.Context, height int64) (uint64, bool, int64, error) {
	pv, err := c.prove(ctx, api.QueryKeyEra, nil, height)
	if err != nil {
		return 0, false, 0, err
	}
	if pv.Value == nil {
		return 0, false, pv.Height, nil
	}
	era, n := binary.Uvarint(pv.Value)
	if n <= 0 || n != len(pv.Value) {
		return 0, false, pv.Height, fmt.Errorf("%w: serving key era at height %d is not a uvarint", api.ErrMalformed, pv.Height)
	}
	return era, true, pv.Height, nil
}

// KeySetAt is KeySet as of the state after block height (0: the latest),
// proved by header height+1 (see ProveAt).
func (c *Client) KeySetAt(ctx context.Context, era uint64, height int64) (*api.KeySet, int64, error) {
	pv, err := c.prove(ctx, api.QueryKeySet, binary.BigEndian.AppendUint64(nil, era), height)
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, nil
	}
	s, err := api.DecodeKeySet(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("key set of era %d at height %d: %w", era, pv.Height, err)
	}
	if s.Era != era {
		return nil, pv.Height, fmt.Errorf("%w: the key set of era %d names era %d", api.ErrBadProof, era, s.Era)
	}
	return s, pv.Height, nil
}

// KeyEraRetiredAt returns era's retirement (height and reason: its key
// set is no longer counted and its holders destroyed their shares) as of
// the state after block height (0: the latest), proved; nil (proved
// absent) while the era is not retired. Errors: those of Prove;
// api.ErrMalformed for a record that does not decode.
func (c *Client) KeyEraRetiredAt(ctx context.Context, era uint64, height int64) (*api.KeyEraRetirement, error) {
	pv, err := c.prove(ctx, api.QueryKeyEraRetired, binary.BigEndian.AppendUint64(nil, era), height)
	if err != nil || pv.Value == nil {
		return nil, err
	}
	r, err := api.DecodeKeyEraRetirement(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("retirement of key era %d at height %d: %w", era, pv.Height, err)
	}
	return &r, nil
}

func (c *Client) dkgAt(ctx context.Context, height int64) (*api.DkgState, int64, error) {
	pv, err := c.prove(ctx, api.QueryKeyDkg, nil, height)
	if err != nil {
		return nil, 0, err
	}
	if pv.Value == nil {
		return nil, pv.Height, nil
	}
	s, err := api.DecodeDkgState(pv.Value)
	if err != nil {
		return nil, pv.Height, fmt.Errorf("running DKG at height %d: %w", pv.Height, err)
	}
	return s, pv.Height, nil
}

func (c *Client) electionAt(ctx context.Context, era uint64, height int64) (*api.ElectionRecord, error) {
	pv, err := c.prove(ctx, api.QueryGatekeeperEra, binary.BigEndian.AppendUint64(nil, era), height)
	if err != nil || pv.Value == nil {
		return nil, err
	}
	rec, err := api.DecodeElectionRecord(pv.Value)
	if err != nil {
		return nil, fmt.Errorf("election of era %d at height %d: %w", era, pv.Height, err)
	}
	if rec.Era != era {
		return nil, fmt.Errorf("%w: the record of era %d names era %d", api.ErrBadProof, era, rec.Era)
	}
	return rec, nil
}
