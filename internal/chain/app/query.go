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
	key, err := stateKey(req.Path, req.Data)
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

func stateKey(path string, data []byte) ([]byte, error) {
	key32 := func() (crypto.PublicKey, error) {
		var pk crypto.PublicKey
		if len(data) != crypto.PublicKeySize {
			return pk, fmt.Errorf("%w: %s takes a 32-byte public key, got %d bytes", api.ErrInvalidCall, path, len(data))
		}
		copy(pk[:], data)
		return pk, nil
	}
	switch path {
	case api.QueryAccount:
		pk, err := key32()
		return api.AccountKey(pk), err
	case api.QueryWorker:
		pk, err := key32()
		return api.WorkerKey(pk), err
	case api.QueryGatekeepers:
		return api.KeyGatekeepers, nil
	case api.QueryMasterKey:
		return api.KeyMasterKey, nil
	case api.QueryParams:
		return api.KeyParams, nil
	case api.QueryAttestation:
		return api.KeyAttestation, nil
	case api.QueryNextSeq:
		o, err := api.DecodeOrigin(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", api.ErrInvalidCall, err)
		}
		return api.NextSeqKey(o), nil
	}
	return nil, fmt.Errorf("%w: unknown query path %q", api.ErrInvalidCall, path)
}
