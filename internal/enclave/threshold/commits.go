package threshold

import (
	"fmt"

	"go.dedis.ch/kyber/v3"
)

// DecodeCommits decodes a key set's public polynomial commitments
// (api.KeySet.Commits: canonical edwards25519 point encodings). Errors:
// a commitment that is not a canonical group element.
func DecodeCommits(cs [][32]byte) ([]kyber.Point, error) {
	out := make([]kyber.Point, len(cs))
	for i, c := range cs {
		out[i] = Suite.Point()
		if err := out[i].UnmarshalBinary(c[:]); err != nil {
			return nil, fmt.Errorf("commitment %d: %w", i, err)
		}
		if again, err := out[i].MarshalBinary(); err != nil || string(again) != string(c[:]) {
			return nil, fmt.Errorf("commitment %d: not canonical", i)
		}
	}
	return out, nil
}
