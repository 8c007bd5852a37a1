package app

import (
	"context"
	"errors"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/phalago/phala/api"
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
	if q := a.mux.Querier(req.Path); q != nil {
		res, err := q(a.store, req)
		if err != nil {
			return nil, notFound(err)
		}
		return res, nil
	}
	if !a.mux.StateQuery(req.Path) {
		return nil, fmt.Errorf("%w: unknown query path %q", api.ErrInvalidCall, req.Path)
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

func notFound(err error) error {
	if errors.Is(err, store.ErrNoVersion) {
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	}
	return err
}
