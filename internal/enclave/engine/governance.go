package engine

import (
	"errors"
	"fmt"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/api/codec"
)

// Version is this pRuntime's version. Governance may require a minimum
// (api.TopicGovMinRuntimeVersion); a pRuntime older than that stops
// dispatching, and so does one that meets a chain module's topic it does
// not know (the chain has moved on to a newer protocol). Raise it with
// every change to the messages pRuntime understands. 2: registrations
// carry their attestation report (api.WorkerRegistered), governance
// announces parameters (api.TopicGovParams).
const Version uint32 = 2

// ErrUpgradeRequired is returned by DispatchBlocks when the chain requires
// a newer pRuntime: the block is refused, nothing changes, and every later
// attempt is refused the same way until the operator upgrades.
var ErrUpgradeRequired = errors.New("pRuntime upgrade required")

const governanceModule = "governance"

// checkVersion refuses a block that carries a minimum pRuntime version
// above Version, or a chain module's message of a topic this pRuntime has
// no handler for. It runs before anything of the block is applied.
func (e *Engine) checkVersion(bm *api.BlockMessages) error {
	for i := range bm.Messages {
		m := &bm.Messages[i]
		if m.Origin.Kind != api.OriginModule {
			continue
		}
		if m.Origin.Module == governanceModule && m.Topic == api.TopicGovMinRuntimeVersion {
			v, err := api.DecodeRuntimeVersion(m.Payload)
			if err != nil {
				return fmt.Errorf("%w: block %d: minimum pRuntime version announcement does not decode (%v); this pRuntime is version %d",
					ErrUpgradeRequired, bm.Height, err, Version)
			}
			if v > Version {
				return fmt.Errorf("%w: from block %d the chain requires pRuntime version %d or newer; this pRuntime is version %d: upgrade it",
					ErrUpgradeRequired, bm.Height, v, Version)
			}
		}
		if _, ok := e.routes[m.Topic]; !ok {
			return fmt.Errorf("%w: block %d carries a message of chain module %q on topic %q, which this pRuntime (version %d) does not know; the chain requires a newer pRuntime (minimum version announced so far: %d): upgrade it",
				ErrUpgradeRequired, bm.Height, m.Origin.Module, m.Topic, Version, e.st.minVersion)
		}
	}
	return nil
}

// onMinVersion records the minimum pRuntime version the chain announced
// (checkVersion has already refused one above Version).
func (e *Engine) onMinVersion(_ *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(governanceModule) {
		return fmt.Errorf("minimum version from %s, not governance", m.Origin)
	}
	v, err := api.DecodeRuntimeVersion(m.Payload)
	if err != nil {
		return err
	}
	e.st.minVersion = v
	return nil
}

// onAllowlist replaces the allowed pRuntime measurements with the list
// governance enacted; workers with any other measurement are inactive from
// this block on (no contract key grants, no master key shares).
func (e *Engine) onAllowlist(_ *Context, m *api.Message) error {
	if m.Origin != api.ModuleOrigin(governanceModule) {
		return fmt.Errorf("allowlist from %s, not governance", m.Origin)
	}
	list, err := api.DecodeMeasurements(m.Payload)
	if err != nil {
		return err
	}
	e.st.allowlist = list
	e.log.Info("measurement allowlist changed by governance", "measurements", len(list))
	return nil
}

// encodeGovernance writes what pRuntime learned from governance (part of
// the chain-derived state).
func (s *state) encodeGovernance(w *codec.Writer) {
	w.BytesField(api.EncodeMeasurements(s.allowlist))
	w.Uvarint(uint64(s.minVersion))
}

func (s *state) decodeGovernance(r *codec.Reader) {
	b := r.BytesField(api.MaxPayloadBytes)
	if r.Err() != nil {
		return
	}
	list, err := api.DecodeMeasurements(b)
	if err != nil {
		r.Fail(err)
		return
	}
	s.allowlist = list
	v := r.Uvarint()
	if v > 1<<32-1 {
		r.Fail(fmt.Errorf("minimum version %d", v))
	}
	s.minVersion = uint32(v)
}
