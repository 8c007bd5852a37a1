package app

import (
	"context"
	"errors"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chain/store"
)

// Query answers the paths listed in package api. With Prove set, state
// answers carry proof ops for api.VerifyStateProof against the app hash of
// the header at the answer's height + 1.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	res, err := a.query(req)
	if err != nil {
		return &abci.ResponseQuery{Code: uint32(api.CodeOf(err)), Codespace: api.Codespace, Log: err.Error(), Height: req.Height}, nil
	}
	return res, nil
}

func (a *App) query(req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if req.Path == api.QueryMessages {
		h := req.Height
		if h == 0 {
			h = a.store.Height()
		}
		bm, err := a.store.Messages(h)
		if err != nil {
			return nil, notFound(err)
		}
		return &abci.ResponseQuery{Height: h, Value: bm.Encode()}, nil
	}
	if req.Path == api.QueryWorkers {
		snap, err := a.store.Snapshot(req.Height)
		if err != nil {
			return nil, notFound(err)
		}
		var ids []crypto.PublicKey
		err = snap.Prefix([]byte("w/"), maxListing, func(k, _ []byte) bool {
			var pk crypto.PublicKey
			copy(pk[:], k[2:])
			ids = append(ids, pk)
			return true
		})
		if err != nil {
			return nil, err
		}
		return &abci.ResponseQuery{Height: snap.Height(), Value: api.EncodeKeys(ids)}, nil
	}
	key, err := api.QueryKey(req.Path, req.Data)
	if err != nil {
		return nil, err
	}
	if req.Height < 0 {
		return nil, fmt.Errorf("%w: negative height", api.ErrInvalidCall)
	}
	snap, err := a.store.Snapshot(req.Height)
	if err != nil {
		return nil, notFound(err)
	}
	res := &abci.ResponseQuery{Height: snap.Height(), Key: key}
	if req.Prove {
		res.Value, res.ProofOps, err = snap.Prove(key)
		if err != nil {
			return nil, err
		}
	} else {
		res.Value = snap.Get(key)
	}
	if res.Value == nil {
		res.Log = "not found"
	}
	return res, nil
}

// maxListing bounds listings.
const maxListing = 10_000

func notFound(err error) error {
	if errors.Is(err, store.ErrNoVersion) {
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	}
	return err
}
