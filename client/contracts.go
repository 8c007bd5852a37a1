package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/crypto/channel"
)

// Errors of contract reads.
var (
	// ErrNotDeployed means an upload has not been provisioned to a worker
	// yet.
	ErrNotDeployed = errors.New("contract not deployed yet")
	// ErrNoSuchContract means no contract has the id (proved absent).
	ErrNoSuchContract = errors.New("no such contract")
	// ErrNoWorker means a deployed contract's record names no worker
	// right now: every worker was removed (expired, unstaked,
	// unresponsive, reassigned by the deployer or by an arbitration) and
	// a gatekeeper assigns a replacement once one is eligible
	// (docs/availability.md, "Reassignment"). Not an upload still pending
	// (ErrNotDeployed).
	ErrNoWorker = errors.New("the contract has no worker right now")
)

// Hints added to a worker's error (explainWorkerError).
const (
	// notRunningHint: a worker the contract's record names says it does
	// not run the contract (a worker recovering it says so itself).
	notRunningHint = "the record names this worker, but it does not run the contract: it may have lost its data; the deployer can replace it with `phala contract reassign`"
	// downHint: the worker's endpoint does not answer.
	downHint = "the worker does not answer: it may be down; the deployer can replace it with `phala contract reassign`, and `phala contract query --on-chain` asks the replicas through the chain"
)

// explainWorkerError adds a hint to a worker's error that says it does
// not run the contract, or that shows its endpoint does not answer.
func explainWorkerError(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	switch {
	case strings.Contains(err.Error(), "does not run contract"):
		return fmt.Errorf("%w (%s)", err, notRunningHint)
	case errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (%s)", err, downHint)
	}
	return err
}

// Upload uploads contract code (raw WebAssembly; compressed here) to run on
// replicas workers, and returns its upload id. The contract's keys exist
// once a gatekeeper has provisioned it: see WaitContract.
func (s *Signer) Upload(ctx context.Context, code []byte, replicas uint8, initInput []byte) ([32]byte, *TxResult, error) {
	return s.UploadWith(ctx, code, UploadOptions{Replicas: replicas, InitInput: initInput})
}

// UploadOptions are an upload's settings besides its code.
type UploadOptions struct {
	Replicas  uint8  // workers to run it (0: 1)
	InitInput []byte // public
	// ExecTimeout: blocks within which each replica must acknowledge
	// executing a command, or pay a penalty (0: none; docs/economy.md).
	ExecTimeout uint64
	// CheckpointInterval: blocks between the contract's state updates on
	// chain (0: the chain's default; docs/availability.md).
	CheckpointInterval uint64
	// Requirements on the workers that may run it (zero: none): a subnet,
	// a platform, minimum declared cores, memory and pRuntime version.
	Requirements api.Requirements
}

// UploadWith is Upload with every setting.
func (s *Signer) UploadWith(ctx context.Context, code []byte, o UploadOptions) ([32]byte, *TxResult, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(code)
	zw.Close()
	seq, err := s.c.deployerSeq(ctx, s.key.Public())
	if err != nil {
		return [32]byte{}, nil, err
	}
	res, err := s.Submit(ctx, &api.UploadContract{Code: buf.Bytes(), Replicas: o.Replicas, InitInput: o.InitInput, ExecTimeout: o.ExecTimeout, Requirements: o.Requirements, CheckpointInterval: o.CheckpointInterval})
	if err != nil {
		return [32]byte{}, res, err
	}
	return api.UploadID(s.key.Public(), sha256.Sum256(code), seq), res, nil
}

func (c *Client) proveValue(ctx context.Context, path string, data []byte) ([]byte, error) {
	pv, err := c.Prove(ctx, path, data)
	if err != nil {
		return nil, err
	}
	return pv.Value, nil
}

// proveRecentValue is proveValue with ProveRecent (no wait for a block).
func (c *Client) proveRecentValue(ctx context.Context, path string, data []byte) ([]byte, error) {
	pv, err := c.ProveRecent(ctx, path, data)
	if err != nil {
		return nil, err
	}
	return pv.Value, nil
}

// deployerSeq reads how many contracts deployer uploaded (the sequence of
// its next upload).
func (c *Client) deployerSeq(ctx context.Context, d crypto.PublicKey) (uint64, error) {
	v, err := c.proveValue(ctx, api.QueryDeployerSeq, d[:])
	if err != nil || len(v) != 8 {
		return 0, err
	}
	var n uint64
	for _, b := range v {
		n = n<<8 | uint64(b)
	}
	return n, nil
}

// Contract reads a deployed contract's record (proved, as of a recent
// block: see ProveRecent).
func (c *Client) Contract(ctx context.Context, id crypto.PublicKey) (*api.ContractRecord, error) {
	pv, err := c.ProveRecent(ctx, api.QueryContract, id[:])
	if err != nil {
		return nil, err
	}
	if pv.Value == nil {
		return nil, fmt.Errorf("%w %s on chain %s (proved absent at height %d): contract ids are what `phala contract upload` prints once the contract is deployed",
			ErrNoSuchContract, id.Hex(), c.chainID, pv.Height)
	}
	return api.DecodeContractRecord(pv.Value)
}

// ContractByUpload returns the record of the contract an upload became.
func (c *Client) ContractByUpload(ctx context.Context, upload [32]byte) (*api.ContractRecord, error) {
	v, err := c.proveRecentValue(ctx, api.QueryContractUpload, upload[:])
	if err != nil {
		return nil, err
	}
	if len(v) != crypto.PublicKeySize {
		return nil, ErrNotDeployed
	}
	return c.Contract(ctx, crypto.PublicKey(v))
}

// ErrContractFailed: the contract failed to start (validation,
// instantiation or init): see *DeployError.
var ErrContractFailed = errors.New("contract failed to start")

// DeployError is a contract its workers reported failed, with the reason
// the chain recorded (public: it is about public code and init input).
type DeployError struct {
	Record *api.ContractRecord
}

func (e *DeployError) Error() string {
	return fmt.Sprintf("%v: contract %s (upload at sequence %d) was reported failed at height %d: %s",
		ErrContractFailed, e.Record.Identity.Hex(), e.Record.Sequence, e.Record.StatusHeight, e.Record.Reason)
}

func (e *DeployError) Unwrap() error { return ErrContractFailed }

// UploadStatus is where an upload is: pending (no gatekeeper provisioned
// it yet: Pending set, Record nil), or deployed (Record set, its Status
// starting, running or failed). Reason says why it is not running yet, or
// why it failed.
type UploadStatus struct {
	Upload  [32]byte
	Pending *api.UploadPending
	Record  *api.ContractRecord
	Reason  string
	Height  int64 // the height the status was read at (proved)
}

// State is "pending", "starting", "running" or "failed".
func (s *UploadStatus) State() string {
	if s.Record == nil {
		return "pending"
	}
	return s.Record.Status.String()
}

// ErrNoSuchUpload: the chain holds no upload with the id.
var ErrNoSuchUpload = errors.New("no such upload")

// UploadStatus reads an upload's status (proved, as of a recent block). A
// pending upload's Reason is worked out from proved chain state: no
// MasterKey announced, no worker the chain admits to run it, or waiting
// for a gatekeeper's grant. Errors: ErrNoSuchUpload, the reads'.
func (c *Client) UploadStatus(ctx context.Context, upload [32]byte) (*UploadStatus, error) {
	pv, err := c.ProveRecent(ctx, api.QueryContractUpload, upload[:])
	if err != nil {
		return nil, err
	}
	st := &UploadStatus{Upload: upload, Height: pv.Height}
	if len(pv.Value) == crypto.PublicKeySize {
		rec, err := c.Contract(ctx, crypto.PublicKey(pv.Value))
		if err != nil {
			return nil, err
		}
		st.Record = rec
		switch rec.Status {
		case api.ContractStarting:
			st.Reason = fmt.Sprintf("keys granted to %d worker(s) at height %d; waiting for one to report that it started the contract (their pherries relay the report)", len(rec.Workers), rec.StatusHeight)
		case api.ContractFailed:
			st.Reason = rec.Reason
		}
		return st, nil
	}
	ppv, err := c.ProveRecent(ctx, api.QueryUploadPending, upload[:])
	if err != nil {
		return nil, err
	}
	if ppv.Value == nil {
		return nil, fmt.Errorf("%w %x on chain %s (proved absent at height %d): upload ids are what `phala contract upload` prints", ErrNoSuchUpload, upload, c.chainID, ppv.Height)
	}
	if st.Pending, err = api.DecodeUploadPending(ppv.Value); err != nil {
		return nil, err
	}
	st.Reason, err = c.pendingReason(ctx, st.Pending)
	return st, err
}

// pendingReason says why no gatekeeper has provisioned an upload yet.
func (c *Client) pendingReason(ctx context.Context, p *api.UploadPending) (string, error) {
	mk, err := c.ProveRecent(ctx, api.QueryMasterKey, nil)
	if err != nil {
		return "", err
	}
	const noMaster = "no gatekeeper holds the MasterKey yet (the first genesis gatekeeper announces it once its pRuntime is registered: is it running, with its pherry?)"
	if mk.Value == nil && p.Requirements.IsZero() {
		return noMaster, nil
	}
	gpv, err := c.ProveRecent(ctx, api.QueryGatekeepers, nil)
	if err != nil {
		return "", err
	}
	gks, _ := api.DecodeKeys(gpv.Value)
	ids, err := c.WorkerIDs(ctx)
	if err != nil {
		return "", err
	}
	spv, err := c.ProveRecent(ctx, api.QueryAttestation, nil)
	if err != nil {
		return "", err
	}
	settings, err := api.DecodeAttestationSettings(spv.Value)
	if err != nil {
		return "", err
	}
	var mig *api.RuntimeMigration
	if v, err := c.proveRecentValue(ctx, api.QueryMigration, nil); err != nil {
		return "", err
	} else if v != nil {
		if mig, err = api.DecodeRuntimeMigration(v); err != nil {
			return "", err
		}
	}
	q := &p.Requirements
	var sn *api.SubnetRecord
	if q.Subnet != ([32]byte{}) {
		v, err := c.proveRecentValue(ctx, api.QuerySubnet, q.Subnet[:])
		if err != nil {
			return "", err
		}
		if v == nil {
			return fmt.Sprintf("no worker satisfies the requirements: subnet %x does not exist", q.Subnet), nil
		}
		if sn, err = api.DecodeSubnetRecord(v); err != nil {
			return "", err
		}
	}
	// fits counts the workers the running migration admits (of its target
	// build); fitsOld those it does not, that would fit otherwise;
	// onTarget the active workers of the target build.
	workers, staked, inSubnet, fits, fitsOld, onTarget, short := 0, 0, 0, 0, 0, 0, ""
	for _, id := range ids {
		if slices.Contains(gks, id) {
			continue
		}
		pv, err := c.ProveRecent(ctx, api.QueryWorker, id[:])
		if err != nil || pv.Value == nil {
			continue
		}
		if wr, err := api.DecodeWorkerRecord(pv.Value); err == nil && wr.Active(pv.Height) && settings.MeasurementAllowed(wr.Measurement) {
			workers++
			old := mig != nil && mig.IsOld(wr.Measurement)
			if mig != nil && !old {
				onTarget++
			}
			ok := c.Params().MinWorkerStake == 0
			if !ok {
				if v, err := c.proveRecentValue(ctx, api.QueryStakeNode, id[:]); err == nil && v != nil {
					if ns, err := api.DecodeNodeStake(v); err == nil && ns.Total >= c.Params().MinWorkerStake {
						ok = true
					}
				}
			}
			if !ok {
				continue
			}
			staked++
			if sn != nil && !sn.Member(id) {
				continue
			}
			inSubnet++
			if why := q.Unmet(wr); why != "" {
				if short == "" {
					short = fmt.Sprintf("worker %s has %s", id.Short(), why)
				}
				continue
			}
			if old {
				fitsOld++
				continue
			}
			fits++
		}
	}
	if sn != nil && inSubnet == 0 {
		return fmt.Sprintf("no worker satisfies the requirements: subnet %x has no attested staked worker (%d member(s); its owner adds workers with `phala subnet add`)", q.Subnet, len(sn.Members)), nil
	}
	if workers == 0 {
		return "no registered worker can run it: start a worker pRuntime and its pherry (README, \"More\"); a gatekeeper provisions the contract as soon as one registers", nil
	}
	if staked == 0 {
		return fmt.Sprintf("none of the %d registered worker(s) has the chain's min_worker_stake of %s PHA: its operator stakes it (pherry --stake, or phala stake bond and allocate); a gatekeeper provisions the contract as soon as one has", workers, api.FormatAmount(c.Params().MinWorkerStake)), nil
	}
	if mig != nil && fits == 0 && (fitsOld > 0 || onTarget == 0) {
		why := "no registered worker runs it"
		if onTarget > 0 {
			why = fmt.Sprintf("none of the %d registered worker(s) running it is eligible (stake, subnet or requirements)", onTarget)
		}
		return fmt.Sprintf("a runtime migration to %x (since height %d) restricts new contracts to that build; %s (%d worker(s) of other builds would take it): "+
			"start workers of that build, or the council cancels the migration (phala gov propose cancel-migration)", []byte(mig.Target), mig.Start, why, fitsOld), nil
	}
	if inSubnet > 0 && fits == 0 {
		return fmt.Sprintf("no worker satisfies the requirements (%s): %s; a gatekeeper provisions the contract as soon as one does", q.String(), short), nil
	}
	if mk.Value == nil {
		return noMaster, nil
	}
	if st, _, err := c.Dkg(ctx); err == nil && st != nil {
		return fmt.Sprintf("waiting for the DKG of the gatekeeper set elected for era %d (attempt %d): new contracts are provisioned once its key set serves (phala keys status shows its progress)", st.Era, st.Attempt), nil
	}
	return fmt.Sprintf("waiting for a gatekeeper to provision its keys to up to %d of the %d registered worker(s) satisfying its requirements (uploaded at height %d; the gatekeeper's pherry relays the grant)", p.Replicas, fits, p.Height), nil
}

// WaitContract waits until an upload runs: provisioned by a gatekeeper
// and reported started by one of its workers. Errors: *DeployError
// (ErrContractFailed) when its workers reported it failed, ctx's when it
// ends first (with the last status's reason).
func (c *Client) WaitContract(ctx context.Context, upload [32]byte) (*api.ContractRecord, error) {
	return c.WaitContractProgress(ctx, upload, nil)
}

// WaitContractProgress is WaitContract calling progress (if not nil) with
// the upload's status each time its state or reason changes.
func (c *Client) WaitContractProgress(ctx context.Context, upload [32]byte, progress func(*UploadStatus)) (*api.ContractRecord, error) {
	var last string
	for {
		st, err := c.UploadStatus(ctx, upload)
		switch {
		case errors.Is(err, ErrNoSuchUpload):
			// The upload's block may not be proved yet: keep waiting.
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for the contract to run: %w (%s)", ctx.Err(), last)
			}
			return nil, err
		case st.Record != nil && st.Record.Status == api.ContractRunning:
			return st.Record, nil
		case st.Record != nil && st.Record.Status == api.ContractFailed:
			return nil, &DeployError{Record: st.Record}
		default:
			if now := st.State() + ": " + st.Reason; now != last {
				last = now
				if progress != nil {
					progress(st)
				}
			}
		}
		select {
		case <-ctx.Done():
			if last == "" {
				last = "the upload is not on chain yet"
			}
			return nil, fmt.Errorf("wait for the contract to run: %w (%s)", ctx.Err(), last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// DefaultGasFraction: a command declares MaxCommandGas / DefaultGasFraction
// gas unless told otherwise (WithGas).
const DefaultGasFraction = 10

// DefaultGasLimit is the gas limit a command declares by default: the
// chain's max_command_gas / DefaultGasFraction (at least 1).
func (c *Client) DefaultGasLimit() uint64 { return max(1, c.Params().MaxCommandGas/DefaultGasFraction) }

// CommandOption changes how Command and Execute send a command.
type CommandOption func(*commandOptions)

type commandOptions struct{ gas uint64 }

// WithGas declares the command's gas limit (gas units, in [1, the chain's
// max_command_gas]); its sender pays for all of it, used or not
// (api.Params.GasFee). Zero keeps the default (Client.DefaultGasLimit).
func WithGas(limit uint64) CommandOption { return func(o *commandOptions) { o.gas = limit } }

// Command sends an encrypted command to a contract: the input is sealed
// with CommKey(signer, contract) and bound to the transaction's nonce,
// which is also the command's nonce, so a replayed payload runs once. The
// command declares Client.DefaultGasLimit gas unless WithGas says
// otherwise, and pays for it with the fee. When the chain refuses it
// because the block's gas for one of the contract's workers is full
// (api.ErrWorkerBlockFull: nothing was charged), it is sent again, signed
// anew, until ctx ends. A contract with no worker whose key era is
// retired is refused before anything is sent (ErrContractStranded:
// nothing is charged).
func (s *Signer) Command(ctx context.Context, rec *api.ContractRecord, input []byte, opts ...CommandOption) (*TxResult, error) {
	o := commandOptions{}
	for _, f := range opts {
		f(&o)
	}
	if o.gas == 0 {
		o.gas = s.c.DefaultGasLimit()
	}
	if err := s.c.checkNotDead(ctx, rec); err != nil {
		return nil, err
	}
	ch, err := channel.New(s.key, rec.Ecdh, api.ChannelPurposeCommand)
	if err != nil {
		return nil, err
	}
	for {
		res, err := s.signAndSubmit(ctx, func(nonce uint64) api.Call {
			return &api.ContractCommand{Contract: rec.Identity, Nonce: nonce, GasLimit: o.gas, Sealed: ch.Seal(api.Pad(bytes.Clone(input)), api.CommandAD(rec.Identity, s.key.Public(), nonce))}
		})
		if !errors.Is(err, api.ErrWorkerBlockFull) || res != nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// QueryContract asks one of the contract's workers (found through their
// on-chain WorkerInfo) off-chain, and returns the decrypted answer with the
// block height it reflects. Only workers the chain still admits are asked:
// registered, unexpired, with a pRuntime measurement on the allowlist (a
// measurement governance revoked expires every registration made with
// it), all proved.
//
// The contract's ECDH key rotates with its key epoch and its workers
// change: when every worker of rec refuses or fails, the record is read
// again, and the query is asked once more if it changed.
func (c *Client) QueryContract(ctx context.Context, key *crypto.KeyPair, rec *api.ContractRecord, input []byte) ([]byte, int64, error) {
	out, h, err := c.queryContract(ctx, key, rec, input)
	if err == nil || rec.Status == api.ContractFailed {
		return out, h, err
	}
	fresh, ferr := c.Contract(ctx, rec.Identity)
	if ferr != nil || (fresh.Ecdh == rec.Ecdh && slices.Equal(fresh.Workers, rec.Workers)) {
		return nil, 0, err
	}
	return c.queryContract(ctx, key, fresh, input)
}

func (c *Client) queryContract(ctx context.Context, key *crypto.KeyPair, rec *api.ContractRecord, input []byte) ([]byte, int64, error) {
	if rec.Status == api.ContractFailed {
		return nil, 0, &DeployError{Record: rec}
	}
	ws, err := c.contractWorkers(ctx, rec)
	if err != nil {
		return nil, 0, err
	}
	out, h, err := queryFrom(ctx, ws, key, rec, input, QueryHedgeDelay)
	if err != nil && !errors.Is(err, ErrQueryFailed) && rec.Status == api.ContractStarting {
		err = fmt.Errorf("%w (the contract has not started yet: granted at height %d, no worker has reported it running)", err, rec.StatusHeight)
	}
	return out, h, err
}

// QueryHedgeDelay is how long QueryContract waits for a worker's answer
// before it also asks the contract's next worker: a replica whose host is
// cut off costs a query this long, not the HTTP timeout.
const QueryHedgeDelay = time.Second

// queryAnswer is one worker's answer to a query.
type queryAnswer struct {
	out    []byte
	height int64
	err    error
	final  bool // the contract's own answer (its output, or ErrQueryFailed): no other worker is asked
}

// queryFrom sends input to the workers ws, the first at once and each
// next one when the previous failed or hedge passed without an answer;
// the first worker's answer that opens (the contract's output or its
// refusal, ErrQueryFailed) is returned and the others are cancelled. A
// worker that cannot be reached, or answers what does not open (a lying
// host), costs only its turn; with none left, the last such error.
func queryFrom(ctx context.Context, ws []WorkerEndpointInfo, key *crypto.KeyPair, rec *api.ContractRecord, input []byte, hedge time.Duration) ([]byte, int64, error) {
	if len(ws) == 0 {
		return nil, 0, fmt.Errorf("%w: contract %s", ErrNoWorker, rec.Identity.Short())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan queryAnswer, len(ws))
	next := 0
	ask := func() error {
		w := ws[next]
		next++
		// Bound to this worker: no other replica answers it.
		p, err := NewQuery(key, rec.Identity, rec.Ecdh, w.Key, input, time.Now().Add(time.Minute))
		if err != nil {
			return err
		}
		go func() {
			resp, err := postQuery(ctx, w.Endpoint, p.Query)
			if err != nil {
				answers <- queryAnswer{err: explainWorkerError(fmt.Errorf("worker %s at %s: %w", w.Key.Short(), w.Endpoint, err))}
				return
			}
			out, h, err := p.Open(resp)
			if err != nil && !errors.Is(err, ErrQueryFailed) {
				answers <- queryAnswer{err: fmt.Errorf("worker %s at %s: %w", w.Key.Short(), w.Endpoint, err)}
				return
			}
			answers <- queryAnswer{out: out, height: h, err: err, final: true}
		}()
		return nil
	}
	if err := ask(); err != nil {
		return nil, 0, err
	}
	timer := time.NewTimer(hedge)
	defer timer.Stop()
	var lastErr error
	for pending := 1; pending > 0; {
		select {
		case a := <-answers:
			pending--
			if a.final {
				return a.out, a.height, a.err
			}
			lastErr = a.err
			if next < len(ws) {
				if err := ask(); err != nil {
					return nil, 0, err
				}
				pending++
				timer.Reset(hedge)
			}
		case <-timer.C:
			if next < len(ws) {
				if err := ask(); err != nil {
					return nil, 0, err
				}
				pending++
				timer.Reset(hedge)
			}
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return nil, 0, lastErr
}

// WorkerEndpointInfo is a worker running a contract, and the API endpoint
// its WorkerInfo names.
type WorkerEndpointInfo struct {
	Key      crypto.PublicKey
	Endpoint string
}

// contractWorkers returns the workers of rec the chain still admits
// (registered, unexpired, measurement allowed), all proved, in the
// record's order; an error saying why none is when none is (ErrNoWorker
// when the record names none).
func (c *Client) contractWorkers(ctx context.Context, rec *api.ContractRecord) ([]WorkerEndpointInfo, error) {
	if len(rec.Workers) == 0 {
		return nil, noWorkerError(rec)
	}
	spv, err := c.ProveRecent(ctx, api.QueryAttestation, nil)
	if err != nil {
		return nil, fmt.Errorf("attestation settings: %w", err)
	}
	settings, err := api.DecodeAttestationSettings(spv.Value)
	if err != nil {
		return nil, fmt.Errorf("attestation settings at height %d: %w", spv.Height, err)
	}
	var out []WorkerEndpointInfo
	var lastErr error
	for _, w := range rec.Workers {
		pv, err := c.ProveRecent(ctx, api.QueryWorker, w[:])
		if err != nil || pv.Value == nil {
			lastErr = fmt.Errorf("worker %s: not registered", w.Short())
			continue
		}
		wr, err := api.DecodeWorkerRecord(pv.Value)
		if err != nil {
			lastErr = err
			continue
		}
		if !wr.Active(pv.Height) {
			lastErr = fmt.Errorf("worker %s: its registration expired at height %d", w.Short(), wr.ExpiresAt)
			continue
		}
		if !settings.MeasurementAllowed(wr.Measurement) {
			lastErr = fmt.Errorf("worker %s: its pRuntime measurement %x is no longer allowed (revoked by governance)", w.Short(), wr.Measurement)
			continue
		}
		out = append(out, WorkerEndpointInfo{Key: w, Endpoint: wr.Info.Endpoint})
	}
	if len(out) == 0 {
		return nil, lastErr
	}
	return out, nil
}

// noWorkerError is ErrNoWorker for rec, saying what happens next.
func noWorkerError(rec *api.ContractRecord) error {
	return fmt.Errorf("%w: contract %s is deployed but every worker was removed from it (`phala contract show %s` lists its workers and the excluded ones, and says whether it is stranded); the members of its key era %d assign a replacement when a worker is eligible, which recovers the state from the chain's checkpoint, and commands wait in the chain meanwhile, unless that key era is retired first (the contract is then stranded and its commands never run)",
		ErrNoWorker, rec.Identity.Hex(), rec.Identity.Hex(), rec.KeyEra)
}

func postQuery(ctx context.Context, endpoint string, q *api.ContractQuery) (*api.ContractQueryResponse, error) {
	b, err := postBinary(ctx, endpoint, "/query", q.Encode())
	if err != nil {
		return nil, err
	}
	return api.DecodeContractQueryResponse(b)
}

// Send sends the query to a worker's API endpoint (from its WorkerInfo)
// and opens the answer.
func (p *PendingQuery) Send(ctx context.Context, endpoint string) ([]byte, int64, error) {
	resp, err := postQuery(ctx, endpoint, p.Query)
	if err != nil {
		return nil, 0, err
	}
	return p.Open(resp)
}

// WorkerEndpoint returns the API endpoint a worker registered (proved).
func (c *Client) WorkerEndpoint(ctx context.Context, worker crypto.PublicKey) (string, error) {
	v, err := c.proveRecentValue(ctx, api.QueryWorker, worker[:])
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", fmt.Errorf("worker %s is not registered", worker.Hex())
	}
	wr, err := api.DecodeWorkerRecord(v)
	if err != nil {
		return "", err
	}
	return wr.Info.Endpoint, nil
}

// QueryOnChain is the fallback query path: the signed, sealed query goes on
// chain in a transaction, a worker running the contract answers through
// the chain, and the answer is read back with a proof. Slower and paid
// for; use it when no worker endpoint answers.
func (s *Signer) QueryOnChain(ctx context.Context, rec *api.ContractRecord, input []byte) ([]byte, int64, error) {
	p, err := NewQuery(s.key, rec.Identity, rec.Ecdh, crypto.PublicKey{}, input, time.Now().Add(time.Minute))
	if err != nil {
		return nil, 0, err
	}
	if _, err := s.Submit(ctx, &api.ContractQueryCall{Query: *p.Query}); err != nil {
		return nil, 0, err
	}
	h := p.Query.Hash()
	for {
		v, err := s.c.proveValue(ctx, api.QueryContractReturn, append(rec.Identity[:], h[:]...))
		if err != nil {
			return nil, 0, err
		}
		if v != nil {
			resp, err := api.DecodeContractQueryResponse(v)
			if err != nil {
				return nil, 0, err
			}
			return p.Open(resp)
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("wait for the contract's answer on chain: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
