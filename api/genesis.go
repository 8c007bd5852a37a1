package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

// The native token.
const (
	TokenSymbol   = "PHA"
	TokenDecimals = 12
	Unit          = uint64(1_000_000_000_000) // one PHA in its smallest units
)

// DevAccounts are the names of Substrate's development accounts; "//Alice"
// etc. derive their keys from the development phrase.
var DevAccounts = []string{"Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"}

// DevAttestationURI derives the development attestation key with which the
// sim platform signs its quotes. It is public on purpose: sim attestation
// proves nothing and is accepted only where the genesis allows it.
const DevAttestationURI = "//PhalaDevAttestation"

// GenesisState is the application part ("app_state") of the CometBFT genesis.
type GenesisState struct {
	Accounts    []GenesisAccount    `json:"accounts"`
	Gatekeepers []crypto.PublicKey  `json:"gatekeepers"`
	Attestation AttestationSettings `json:"attestation"`
	Params      Params              `json:"params"`
	// Governance is the genesis council (empty: no governance).
	Governance GovernanceGenesis `json:"governance"`
}

// GenesisAccount is a funded account.
type GenesisAccount struct {
	Address crypto.PublicKey `json:"address"`
	Balance uint64           `json:"balance,string"`
}

// AttestationSettings say which attestation reports the registry accepts.
type AttestationSettings struct {
	AllowSim            bool             `json:"allow_sim"`
	DevPublicKey        crypto.PublicKey `json:"dev_public_key"`
	Measurements        []HexBytes       `json:"measurements"`
	MaxReportAgeSeconds uint64           `json:"max_report_age_seconds"`
}

// Params are the chain parameters.
type Params struct {
	EraLength            uint64 `json:"era_length"`            // blocks per era (key rotation, elections, heartbeats); a change applies from the next era boundary (EraSchedule)
	RegistrationLifetime uint64 `json:"registration_lifetime"` // blocks a worker registration stays valid
	FeeBase              uint64 `json:"fee_base,string"`       // fee of any transaction, in units
	FeePerByte           uint64 `json:"fee_per_byte,string"`   // plus this per encoded byte
	MaxTxBytes           uint64 `json:"max_tx_bytes"`          // largest transaction accepted
	// AttestationWindow is how many blocks back the block a registration's
	// report cites (WorkerInfo.BlockHeight) may lie, and how many recent
	// block hashes the chain keeps in state to check it.
	AttestationWindow uint64 `json:"attestation_window"`
	// GovVotingPeriod is how many blocks a governance motion takes votes
	// before it expires unapproved.
	GovVotingPeriod uint64 `json:"gov_voting_period"`

	// The computation economy (docs/economy.md). Zero turns a feature
	// off where its comment says so.

	// UnbondingPeriod: blocks before unbonded stake can be withdrawn.
	UnbondingPeriod uint64 `json:"unbonding_period"`
	// MinWorkerStake: units a worker's stake must reach for it to be
	// assigned contracts (0: no minimum).
	MinWorkerStake uint64 `json:"min_worker_stake,string"`
	// MinGatekeeperStake: units a gatekeeper candidate's stake must reach
	// to stand in the election (0: no minimum).
	MinGatekeeperStake uint64 `json:"min_gatekeeper_stake,string"`
	// HeartbeatsPerEra: expected heartbeat challenges per node per era
	// (0: no challenges); at most EraLength.
	HeartbeatsPerEra uint64 `json:"heartbeats_per_era"`
	// HeartbeatWindow: blocks a challenged node has to answer.
	HeartbeatWindow uint64 `json:"heartbeat_window"`
	// OfflineSlashPPM: parts per million of its stake an unresponsive
	// node (the 1/4 rule) loses at the end of an era.
	OfflineSlashPPM uint64 `json:"offline_slash_ppm"`
	// TimeoutPenaltyPPM: parts per million of its stake a replica that
	// misses a contract's execution timeout loses.
	TimeoutPenaltyPPM uint64 `json:"timeout_penalty_ppm"`
	// EraInflationPPB: parts per billion of total issuance minted as
	// rewards at the end of each era.
	EraInflationPPB uint64 `json:"era_inflation_ppb"`
	// GatekeeperRewardPPM: the gatekeepers' share of an era's rewards,
	// parts per million; the rest goes to workers.
	GatekeeperRewardPPM uint64 `json:"gatekeeper_reward_ppm"`
	// NGatekeepers: the size of the elected gatekeeper set (0: no
	// election; the genesis list stays).
	NGatekeepers uint64 `json:"n_gatekeepers"`
	// GasPricePerMGas: units a command's sender pays per million gas of
	// its declared gas limit (0: gas is free).
	GasPricePerMGas uint64 `json:"gas_price_per_mgas,string"`
	// MaxCommandGas: the largest gas limit one command may declare
	// (at least 1).
	MaxCommandGas uint64 `json:"max_command_gas"`
	// MaxWorkerGasPerBlock: the most gas (sum of declared limits) the
	// commands of one block may ask of one worker (0: no bound).
	MaxWorkerGasPerBlock uint64 `json:"max_worker_gas_per_block"`

	// State update arbitration (docs/availability.md, "Arbitration").
	// ArbitrationWindow: blocks after a state update is accepted during
	// which it may be disputed (0: no arbitration).
	ArbitrationWindow uint64 `json:"arbitration_window"`
	// ArbitrationBond: units someone other than the contract's deployer
	// posts with a request, lost if the arbiters uphold the update.
	ArbitrationBond uint64 `json:"arbitration_bond,string"`
	// ArbitrationSlashPPM: parts per million of its stake a worker loses
	// whose vote for a state update the arbiters overturn.
	ArbitrationSlashPPM uint64 `json:"arbitration_slash_ppm"`
	// Arbiters: extra workers a gatekeeper assigns to recompute a
	// disputed update (at most MaxReplicas; fewer if fewer are eligible).
	Arbiters uint64 `json:"arbiters"`
	// ArbitrationTimeout: blocks an open arbitration waits for its
	// verdict before it expires (the bond returned, nothing changed).
	ArbitrationTimeout uint64 `json:"arbitration_timeout"`

	// Key rotation (docs/keys.md, "Rotation per era").
	// DkgTimeout: blocks each phase of an elected set's DKG may take (its
	// members' keys, then its deals and responses) before the chain moves
	// on without the members that are late; a DKG not adopted after three
	// of them fails (the late members slashed offline_slash_ppm, the
	// serving set stays). At most a third of era_length is used
	// (DkgPhase), so a DKG ends within its era; at least MinDkgPhase.
	DkgTimeout uint64 `json:"dkg_timeout"`
	// ContractKeyEpoch: blocks after which a contract's key epoch rises
	// even without a rotation (0: only when the serving key era changes).
	ContractKeyEpoch uint64 `json:"contract_key_epoch"`
	// ReencryptPerBlock: entries a worker re-encrypts per block and
	// migrating contract (at least 1).
	ReencryptPerBlock uint64 `json:"reencrypt_per_block"`
	// KeyMigrationEras: eras after its successor's adoption that a key
	// era's shares are kept for the contracts still under it; then they
	// are destroyed and such contracts are stranded.
	KeyMigrationEras uint64 `json:"key_migration_eras"`
}

// DkgDealWindow returns the blocks after the dealing phase began during
// which deals count (half the phase, at least 1): the responses to a deal
// need the rest of it to reach every member before the timeout, so all
// members certify the same deals.
func (p *Params) DkgDealWindow() int64 { return max(p.DkgPhase()/2, 1) }

// DkgPhase returns the blocks one DKG phase may take: dkg_timeout (which
// Validate keeps at least MinDkgPhase), at most a third of era_length, at
// least MinDkgPhase (the floor matters for an era_length under 12) (the dealing phase
// carries deals, then responses, then justifications, then results, each
// processed by the members a block after the previous: fewer blocks would
// time out honest runs).
func (p *Params) DkgPhase() int64 {
	t := min(p.DkgTimeout, p.EraLength/3)
	return int64(max(t, MinDkgPhase))
}

// MinDkgPhase is DkgPhase's floor, in blocks.
const MinDkgPhase = 4

// Upper bounds of parameters, so that block arithmetic cannot overflow.
const (
	MaxRegistrationLifetime = 1 << 40
	MaxReportAge            = 365 * 24 * 3600
	MaxAttestationWindow    = 100_000 // blocks; bounds the block hashes kept in state
	MaxGatekeepers          = 100     // the elected set's size
	MaxGasLimit             = 1 << 40 // gas
)

// DefaultParams are the parameters `phala-node init` writes.
func DefaultParams() Params {
	return Params{
		EraLength:            600,
		RegistrationLifetime: 100_000,
		FeeBase:              1_000_000,
		FeePerByte:           1_000,
		MaxTxBytes:           4 << 20,
		AttestationWindow:    200,
		GovVotingPeriod:      14_400,
		UnbondingPeriod:      1_200,
		MinWorkerStake:       100 * Unit,
		MinGatekeeperStake:   10_000 * Unit,
		HeartbeatsPerEra:     20,
		HeartbeatWindow:      20,
		OfflineSlashPPM:      10_000,
		TimeoutPenaltyPPM:    1_000,
		EraInflationPPB:      10_000,
		GatekeeperRewardPPM:  200_000,
		NGatekeepers:         3,
		// Calibrated on the development machine (docs/benchmarks.md, "Gas
		// calibration"): at worst ~1,200 Mgas per second of one core (a
		// one-branch loop; Go code and token transfers run ~2,000). A
		// command runs at most 100 Mgas (≤ ~85 ms); one block asks at most
		// 300 Mgas (≤ 250 ms) of a worker; a second of a worker's CPU
		// (1,200-2,000 Mgas) costs 0.006-0.01 PHA, a command that runs
		// out of 100 Mgas 0.0005 PHA.
		GasPricePerMGas:      5_000_000,
		MaxCommandGas:        100_000_000,
		MaxWorkerGasPerBlock: 300_000_000,
		ArbitrationWindow:    200,
		ArbitrationBond:      10 * Unit,
		ArbitrationSlashPPM:  100_000,
		Arbiters:             2,
		ArbitrationTimeout:   200,
		DkgTimeout:           20,
		ContractKeyEpoch:     0,
		ReencryptPerBlock:    256,
		KeyMigrationEras:     1,
	}
}

// MinFee is the lowest fee a transaction of n encoded bytes may declare
// (its size fee; a command adds its gas fee: TxMinFee).
func (p Params) MinFee(n int) uint64 { return p.FeeBase + p.FeePerByte*uint64(n) }

// GasFee is what a command declaring gasLimit gas pays for execution, in
// units: ⌈gasLimit · GasPricePerMGas / 10^6⌉, computed without overflow
// (128-bit product), saturating at math.MaxUint64 (a fee nobody can pay).
func (p Params) GasFee(gasLimit uint64) uint64 {
	hi, lo := bits.Mul64(gasLimit, p.GasPricePerMGas)
	if hi >= 1_000_000 {
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, 1_000_000)
	if r > 0 {
		if q == math.MaxUint64 {
			return math.MaxUint64
		}
		q++
	}
	return q
}

// ExecFee is the fee a call pays on top of its size fee: GasFee of a
// command's declared gas limit, zero for every other call.
func (p Params) ExecFee(c Call) uint64 {
	if cc, ok := c.(*ContractCommand); ok {
		return p.GasFee(cc.GasLimit)
	}
	return 0
}

// TxMinFee is the lowest fee a transaction of n encoded bytes carrying
// call may declare: MinFee(n) + ExecFee(call), saturating at
// math.MaxUint64.
func (p Params) TxMinFee(call Call, n int) uint64 {
	size, exec := p.MinFee(n), p.ExecFee(call)
	if size > math.MaxUint64-exec {
		return math.MaxUint64
	}
	return size + exec
}

// CheckGasLimit checks a command's declared gas limit against the
// parameters. Errors: ErrInvalidCall (zero, or over MaxCommandGas).
func (p Params) CheckGasLimit(gasLimit uint64) error {
	switch {
	case gasLimit == 0:
		return fmt.Errorf("%w: the command declares no gas limit (gas_limit 0); declare one in [1, %d]", ErrInvalidCall, p.MaxCommandGas)
	case gasLimit > p.MaxCommandGas:
		return fmt.Errorf("%w: gas limit %d exceeds the chain's max_command_gas %d", ErrInvalidCall, gasLimit, p.MaxCommandGas)
	}
	return nil
}

// Validate checks the parameters.
func (p Params) Validate() error {
	var errs []error
	if p.EraLength == 0 || p.EraLength > MaxEraLength {
		errs = append(errs, fmt.Errorf("era_length must be in [1, %d] blocks", MaxEraLength))
	}
	if p.RegistrationLifetime == 0 {
		errs = append(errs, errors.New("registration_lifetime must be positive"))
	}
	if p.MaxTxBytes < 256 || p.MaxTxBytes > MaxTxBytes {
		errs = append(errs, fmt.Errorf("max_tx_bytes must be in [256, %d]", MaxTxBytes))
	}
	if p.MaxTxBytes > 0 && p.FeePerByte > (math.MaxUint64-p.FeeBase)/p.MaxTxBytes {
		errs = append(errs, errors.New("fee_base + fee_per_byte * max_tx_bytes overflows"))
	}
	if p.RegistrationLifetime > MaxRegistrationLifetime {
		errs = append(errs, fmt.Errorf("registration_lifetime must be at most %d blocks", MaxRegistrationLifetime))
	}
	if p.AttestationWindow == 0 || p.AttestationWindow > MaxAttestationWindow {
		errs = append(errs, fmt.Errorf("attestation_window must be in [1, %d] blocks", MaxAttestationWindow))
	}
	if p.GovVotingPeriod == 0 || p.GovVotingPeriod > MaxRegistrationLifetime {
		errs = append(errs, fmt.Errorf("gov_voting_period must be in [1, %d] blocks", MaxRegistrationLifetime))
	}
	if p.UnbondingPeriod > MaxRegistrationLifetime {
		errs = append(errs, fmt.Errorf("unbonding_period must be at most %d blocks", MaxRegistrationLifetime))
	}
	if p.HeartbeatsPerEra > p.EraLength {
		errs = append(errs, errors.New("heartbeats_per_era must be at most era_length"))
	}
	if p.HeartbeatsPerEra > 0 && (p.HeartbeatWindow == 0 || p.HeartbeatWindow > p.EraLength) {
		errs = append(errs, errors.New("heartbeat_window must be in [1, era_length] when heartbeats are on"))
	}
	for name, v := range map[string]uint64{"offline_slash_ppm": p.OfflineSlashPPM, "timeout_penalty_ppm": p.TimeoutPenaltyPPM, "gatekeeper_reward_ppm": p.GatekeeperRewardPPM} {
		if v > 1_000_000 {
			errs = append(errs, fmt.Errorf("%s must be at most 1000000 (all of it)", name))
		}
	}
	if p.EraInflationPPB > 1_000_000_000 {
		errs = append(errs, errors.New("era_inflation_ppb must be at most 1000000000"))
	}
	if p.NGatekeepers > MaxGatekeepers {
		errs = append(errs, fmt.Errorf("n_gatekeepers must be at most %d", MaxGatekeepers))
	}
	if p.MaxCommandGas == 0 || p.MaxCommandGas > MaxGasLimit || p.MaxWorkerGasPerBlock > MaxGasLimit {
		errs = append(errs, fmt.Errorf("max_command_gas must be in [1, %d], max_worker_gas_per_block at most %d", uint64(MaxGasLimit), uint64(MaxGasLimit)))
	}
	if p.MaxWorkerGasPerBlock > 0 && p.MaxWorkerGasPerBlock < p.MaxCommandGas {
		errs = append(errs, errors.New("max_worker_gas_per_block must be 0 (no bound) or at least max_command_gas (else the largest command never fits)"))
	}
	if p.MaxCommandGas > 0 && p.GasPricePerMGas > math.MaxUint64/p.MaxCommandGas {
		errs = append(errs, errors.New("gas_price_per_mgas * max_command_gas overflows"))
	}
	if p.ArbitrationWindow > MaxRegistrationLifetime || p.ArbitrationTimeout > MaxRegistrationLifetime {
		errs = append(errs, fmt.Errorf("arbitration_window and arbitration_timeout must be at most %d blocks", MaxRegistrationLifetime))
	}
	if p.ArbitrationWindow > MaxRecoverBlocks/2 {
		// A pRuntime keeps a contract's input heights back to its oldest
		// disputable checkpoint (docs/availability.md, "Arbitration"); over
		// MaxRecoverBlocks a rollback would leave the contract unrecoverable.
		errs = append(errs, fmt.Errorf("arbitration_window must be at most %d blocks (max recover blocks / 2)", MaxRecoverBlocks/2))
	}
	if p.ArbitrationWindow > 0 && (p.Arbiters == 0 || p.Arbiters > MaxReplicas || p.ArbitrationTimeout == 0) {
		errs = append(errs, fmt.Errorf("arbiters must be in [1, %d] and arbitration_timeout positive when arbitration is on", MaxReplicas))
	}
	if p.DkgTimeout < MinDkgPhase || p.DkgTimeout > MaxRegistrationLifetime {
		// Below MinDkgPhase DkgPhase would raise it anyway: refused, not
		// silently changed.
		errs = append(errs, fmt.Errorf("dkg_timeout must be in [%d, %d] blocks (a DKG phase needs at least %d)", MinDkgPhase, MaxRegistrationLifetime, MinDkgPhase))
	}
	if p.ContractKeyEpoch > MaxRegistrationLifetime || p.KeyMigrationEras > 1_000 {
		errs = append(errs, fmt.Errorf("contract_key_epoch must be at most %d blocks, key_migration_eras at most 1000", MaxRegistrationLifetime))
	}
	if p.ReencryptPerBlock == 0 || p.ReencryptPerBlock > 65_536 {
		errs = append(errs, errors.New("reencrypt_per_block must be in [1, 65536]"))
	}
	if p.ArbitrationSlashPPM > 1_000_000 {
		errs = append(errs, errors.New("arbitration_slash_ppm must be at most 1000000 (all of it)"))
	}
	return errors.Join(errs...)
}

// economy returns the economy parameters in their encoding order.
func (p *Params) economy() []*uint64 {
	return []*uint64{&p.UnbondingPeriod, &p.MinWorkerStake, &p.MinGatekeeperStake, &p.HeartbeatsPerEra,
		&p.HeartbeatWindow, &p.OfflineSlashPPM, &p.TimeoutPenaltyPPM, &p.EraInflationPPB,
		&p.GatekeeperRewardPPM, &p.NGatekeepers, &p.GasPricePerMGas, &p.MaxCommandGas, &p.MaxWorkerGasPerBlock,
		&p.ArbitrationWindow, &p.ArbitrationBond, &p.ArbitrationSlashPPM, &p.Arbiters, &p.ArbitrationTimeout, &p.DkgTimeout,
		&p.ContractKeyEpoch, &p.ReencryptPerBlock, &p.KeyMigrationEras}
}

// Encode returns the canonical bytes (the state value).
func (p Params) Encode() []byte {
	w := codec.NewWriter(32)
	w.Uvarint(p.EraLength)
	w.Uvarint(p.RegistrationLifetime)
	w.Uvarint(p.FeeBase)
	w.Uvarint(p.FeePerByte)
	w.Uvarint(p.MaxTxBytes)
	w.Uvarint(p.AttestationWindow)
	w.Uvarint(p.GovVotingPeriod)
	for _, v := range p.economy() {
		w.Uvarint(*v)
	}
	return w.Bytes()
}

// DecodeParams strictly decodes parameters.
func DecodeParams(b []byte) (Params, error) {
	var p Params
	r := codec.NewReader(b)
	p.EraLength = r.Uvarint()
	p.RegistrationLifetime = r.Uvarint()
	p.FeeBase = r.Uvarint()
	p.FeePerByte = r.Uvarint()
	p.MaxTxBytes = r.Uvarint()
	p.AttestationWindow = r.Uvarint()
	p.GovVotingPeriod = r.Uvarint()
	for _, v := range p.economy() {
		*v = r.Uvarint()
	}
	if err := r.Done(); err != nil {
		return p, fmt.Errorf("%w: params: %v", ErrMalformed, err)
	}
	return p, nil
}

// Encode returns the canonical bytes (the state value).
func (a *AttestationSettings) Encode() []byte {
	w := codec.NewWriter(64)
	w.Bool(a.AllowSim)
	w.Fixed(a.DevPublicKey[:])
	w.Uvarint(uint64(len(a.Measurements)))
	for _, m := range a.Measurements {
		w.BytesField(m)
	}
	w.Uvarint(a.MaxReportAgeSeconds)
	return w.Bytes()
}

// DecodeAttestationSettings strictly decodes attestation settings.
func DecodeAttestationSettings(b []byte) (*AttestationSettings, error) {
	a := &AttestationSettings{}
	r := codec.NewReader(b)
	a.AllowSim = r.Bool()
	r.Fixed(a.DevPublicKey[:])
	n := r.Uvarint()
	if n > uint64(r.Remaining()) {
		r.Fail(codec.ErrTooLong)
	}
	for i := uint64(0); r.Err() == nil && i < n; i++ {
		a.Measurements = append(a.Measurements, r.BytesField(MaxMeasurementBytes))
	}
	a.MaxReportAgeSeconds = r.Uvarint()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: attestation settings: %v", ErrMalformed, err)
	}
	return a, nil
}

// MeasurementAllowed reports whether m is on the allowlist.
func (a *AttestationSettings) MeasurementAllowed(m []byte) bool {
	for _, x := range a.Measurements {
		if string(x) == string(m) {
			return true
		}
	}
	return false
}

// Validate checks the genesis state.
func (g *GenesisState) Validate() error {
	var errs []error
	if err := g.Params.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("params: %w", err))
	}
	seen := map[crypto.PublicKey]bool{}
	var total uint64
	for _, a := range g.Accounts {
		if seen[a.Address] {
			errs = append(errs, fmt.Errorf("account %s listed twice", a.Address))
		}
		seen[a.Address] = true
		if total+a.Balance < total {
			errs = append(errs, errors.New("total balance overflows"))
		}
		total += a.Balance
	}
	gk := map[crypto.PublicKey]bool{}
	for _, k := range g.Gatekeepers {
		if gk[k] {
			errs = append(errs, fmt.Errorf("gatekeeper %s listed twice", k))
		}
		gk[k] = true
	}
	if a := g.Attestation.MaxReportAgeSeconds; a == 0 || a > MaxReportAge {
		errs = append(errs, fmt.Errorf("attestation.max_report_age_seconds must be in [1, %d]", MaxReportAge))
	}
	for _, m := range g.Attestation.Measurements {
		if len(m) == 0 || len(m) > MaxMeasurementBytes {
			errs = append(errs, fmt.Errorf("measurement of %d bytes", len(m)))
		}
	}
	gc := Council{Members: g.Governance.Council, Threshold: g.Governance.Threshold}
	if err := gc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("governance: %w", err))
	}
	if g.Attestation.AllowSim && !g.Attestation.DevPublicKey.Valid() {
		errs = append(errs, errors.New("allow_sim needs a valid dev_public_key"))
	}
	return errors.Join(errs...)
}

// DecodeGenesisState parses and validates the JSON app state.
func DecodeGenesisState(b []byte) (*GenesisState, error) {
	var g GenesisState
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("genesis app_state: %w", err)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("genesis app_state: %w", err)
	}
	return &g, nil
}

// HexBytes is a byte string that JSON encodes as 0x-prefixed hex.
type HexBytes []byte

// MarshalText encodes as 0x-hex.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte("0x" + hex.EncodeToString(h)), nil }

// UnmarshalText decodes 0x-hex.
func (h *HexBytes) UnmarshalText(b []byte) error {
	s := strings.TrimPrefix(string(b), "0x")
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex bytes: %w", err)
	}
	*h = v
	return nil
}

func (h HexBytes) String() string { return "0x" + hex.EncodeToString(h) }
