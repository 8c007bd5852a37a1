// Package attestation verifies the attestation reports workers submit when
// they register: it checks a platform's quote and returns what the quote
// proves (the measurement of the code and the 64 bytes of report data the
// code chose). The registry then checks that the report data commits to the
// worker's info and that the measurement is allowed.
//
// Platforms:
//
//   - "sim": a quote signed by the development attestation key, accepted
//     only where the genesis allows it.
//   - "tdx": an Intel TDX quote (v4), verified offline against the Intel SGX
//     Root CA at the block time (see verifyTDX). The measurement is
//     MRTD‖RTMR0‖RTMR1‖RTMR2 (192 bytes, see TDXMeasurement), the report
//     data is REPORTDATA. TDX quotes carry no time, so their IssuedAt is
//     the block time; freshness comes from the report data, which commits
//     to a recent block the registry checks. TDX is accepted wherever the
//     allowlist holds the TD's measurement.
//
// For every platform the registry, not this package, checks freshness: the
// report data commits to api.WorkerInfo, which names a recent block by
// height and hash.
package attestation

import (
	"fmt"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

// Evidence is what a verified quote proves.
type Evidence struct {
	Platform    string
	Measurement []byte
	ReportData  [api.ReportDataSize]byte
	// IssuedAt is when the quote says it was made. Every platform must
	// provide it (hardware platforms through the report data or collateral
	// time); the registry orders registrations by it.
	IssuedAt time.Time
}

// Verify checks a report against the chain's settings at time now (the
// block time) and returns its evidence. Errors wrap api.ErrAttestation.
func Verify(settings *api.AttestationSettings, r *api.AttestationReport, now time.Time) (*Evidence, error) {
	var (
		ev  *Evidence
		err error
	)
	switch r.Platform {
	case api.PlatformSim:
		ev, err = verifySim(settings, r.Quote)
	case api.PlatformTDX:
		ev, err = verifyTDX(settings, r.Quote, now)
	default:
		return nil, fmt.Errorf("%w: platform %q is not supported (supported: %s, %s)", api.ErrAttestation, r.Platform, api.PlatformSim, api.PlatformTDX)
	}
	if err != nil {
		return nil, err
	}
	if max := settings.MaxReportAgeSeconds; max > 0 {
		age := now.Sub(ev.IssuedAt)
		if age > time.Duration(max)*time.Second || age < -time.Duration(max)*time.Second {
			return nil, fmt.Errorf("%w: report issued at %s is %s away from block time %s (limit %ds); request a fresh report",
				api.ErrAttestation, ev.IssuedAt.UTC().Format(time.RFC3339), age.Round(time.Second), now.UTC().Format(time.RFC3339), max)
		}
	}
	return ev, nil
}

func verifySim(settings *api.AttestationSettings, quote []byte) (*Evidence, error) {
	if !settings.AllowSim {
		return nil, fmt.Errorf("%w: this chain does not accept sim attestation (genesis attestation.allow_sim is false)", api.ErrAttestation)
	}
	q, err := api.DecodeSimQuote(quote)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrAttestation, err)
	}
	if !settings.DevPublicKey.Verify(api.ContextSimQuote, q.SignBytes(), q.Signature) {
		return nil, fmt.Errorf("%w: sim quote is not signed by the development attestation key %s", api.ErrAttestation, settings.DevPublicKey)
	}
	return &Evidence{
		Platform:    api.PlatformSim,
		Measurement: q.Measurement[:],
		ReportData:  q.ReportData,
		IssuedAt:    time.Unix(q.IssuedAt, 0),
	}, nil
}

// SignSimQuote makes a sim quote with the development attestation key. Only
// the sim platform and tests call it.
func SignSimQuote(devKey *crypto.KeyPair, measurement [32]byte, reportData [api.ReportDataSize]byte, issuedAt time.Time) *api.AttestationReport {
	q := &api.SimQuote{Measurement: measurement, ReportData: reportData, IssuedAt: issuedAt.Unix()}
	q.Signature = devKey.Sign(api.ContextSimQuote, q.SignBytes())
	return &api.AttestationReport{Platform: api.PlatformSim, Quote: q.Encode()}
}
