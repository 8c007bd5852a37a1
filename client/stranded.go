package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/phalago/phala/api"
)

// ErrContractStranded means a contract's key era was retired while the
// contract still needed it (docs/keys.md, "A contract that loses its
// last worker"): no worker can be given its key any more. Without a
// worker its state cannot be recovered and a command sent to it would
// never run, so Signer.Command refuses to send one (nothing is charged).
var ErrContractStranded = errors.New("the contract is stranded")

// Strandedness is what the chain says of a contract's key era (proved).
type Strandedness struct {
	// Stranded: the key era the record names (KeyEra, or PrevKeyEra while
	// it migrates) is retired: no worker can be provisioned for it any
	// more. Its current workers (if any) still hold its keys and run it.
	Stranded bool
	// Era is the retired key era, RetiredAt the height that retired it
	// (when Stranded).
	Era       uint64
	RetiredAt int64
	// Height is the block whose state was read.
	Height int64
}

// Dead reports whether the contract can never run again: stranded and
// with no worker.
func (s *Strandedness) Dead(rec *api.ContractRecord) bool {
	return s.Stranded && len(rec.Workers) == 0
}

// Stranded reads, proved, whether rec's key era (and its previous one
// while it migrates) is retired (api.QueryKeyEraRetired). A failed
// contract needs no key era: it is never stranded.
func (c *Client) Stranded(ctx context.Context, rec *api.ContractRecord) (*Strandedness, error) {
	out := &Strandedness{}
	if rec.Status == api.ContractFailed {
		return out, nil
	}
	eras := []uint64{rec.KeyEra}
	if rec.Migrating && rec.PrevKeyEra != rec.KeyEra {
		eras = append(eras, rec.PrevKeyEra)
	}
	for _, era := range eras {
		pv, err := c.ProveRecent(ctx, api.QueryKeyEraRetired, binary.BigEndian.AppendUint64(nil, era))
		if err != nil {
			return nil, fmt.Errorf("retirement of key era %d: %w", era, err)
		}
		out.Height = pv.Height
		if pv.Value == nil {
			continue
		}
		h, n := binary.Varint(pv.Value)
		if n <= 0 {
			return nil, fmt.Errorf("%w: retirement record of key era %d", api.ErrMalformed, era)
		}
		out.Stranded, out.Era, out.RetiredAt = true, era, h
		return out, nil
	}
	return out, nil
}

// strandedError is ErrContractStranded for rec, saying what it means.
func strandedError(rec *api.ContractRecord, s *Strandedness) error {
	return fmt.Errorf("%w: contract %s has no worker and its key era %d was retired at height %d (its key-set members destroyed their shares): no worker can ever be given its key, its state cannot be recovered, and a command sent to it would never run (nothing was sent, no fee charged)",
		ErrContractStranded, rec.Identity.Hex(), s.Era, s.RetiredAt)
}

// checkNotDead refuses (ErrContractStranded) a contract that has no
// worker and whose key era is retired. It reads the chain only for a
// contract without workers, and only with proofs: a client without a trust
// root (Dial without one: pherry, load generators) skips the check, and
// its command waits on chain like any other.
func (c *Client) checkNotDead(ctx context.Context, rec *api.ContractRecord) error {
	if len(rec.Workers) > 0 || !c.Verifies() {
		return nil
	}
	s, err := c.Stranded(ctx, rec)
	if err != nil {
		return err
	}
	if s.Dead(rec) {
		return strandedError(rec, s)
	}
	return nil
}
