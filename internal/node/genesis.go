package node

import (
	"encoding/json"
	"fmt"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// DevBalance is what each development account gets in a generated genesis.
const DevBalance = 1_000_000 * api.Unit

// DevGenesisState returns the app state of a development chain: the dev
// accounts funded, sim attestation accepted with the development key, the
// given measurements allowed, no gatekeepers yet, and a governance council
// of //Alice, //Bob and //Charlie approving motions with 2 ayes.
func DevGenesisState(measurements ...api.HexBytes) *api.GenesisState {
	params := api.DefaultParams()
	// Tests not about the economy need no stake, no election and no
	// heartbeats (docs/economy.md); `phala devnet` turns them on.
	params.MinWorkerStake, params.MinGatekeeperStake, params.NGatekeepers, params.HeartbeatsPerEra = 0, 0, 0, 0
	g := &api.GenesisState{
		Params: params,
		Attestation: api.AttestationSettings{
			AllowSim:            true,
			DevPublicKey:        crypto.MustKeyPairFromURI(api.DevAttestationURI).Public(),
			Measurements:        measurements,
			MaxReportAgeSeconds: 3600,
		},
		Gatekeepers: []crypto.PublicKey{},
	}
	for _, name := range api.DevAccounts[:3] {
		g.Governance.Council = append(g.Governance.Council, crypto.MustKeyPairFromURI("//"+name).Public())
	}
	g.Governance.Threshold = 2
	for _, name := range api.DevAccounts {
		g.Accounts = append(g.Accounts, api.GenesisAccount{
			Address: crypto.MustKeyPairFromURI("//" + name).Public(),
			Balance: DevBalance,
		})
	}
	return g
}

// AppVersion is the application protocol version the chain's app reports in
// Info (app.App.Info's AppVersion). The genesis consensus parameters declare
// it too: CometBFT's rollback takes a rolled-back state's app version from
// the consensus parameters, and a mismatch with the blocks' header version
// stops the node at the next start.
const AppVersion = 1

// NewGenesisDoc assembles a CometBFT genesis document.
func NewGenesisDoc(chainID string, vals []cmttypes.GenesisValidator, state *api.GenesisState) (*cmttypes.GenesisDoc, error) {
	if err := state.Validate(); err != nil {
		return nil, err
	}
	appState, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return nil, err
	}
	doc := &cmttypes.GenesisDoc{
		ChainID:         chainID,
		GenesisTime:     time.Now().UTC().Truncate(time.Millisecond),
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		Validators:      vals,
		AppState:        appState,
	}
	doc.ConsensusParams.Block.MaxBytes = 8 << 20
	doc.ConsensusParams.Block.MaxGas = -1
	doc.ConsensusParams.Version.App = AppVersion
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	return doc, nil
}
