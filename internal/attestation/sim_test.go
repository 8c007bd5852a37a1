package attestation

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/crypto"
)

var (
	devKey      = crypto.MustKeyPairFromURI(api.DevAttestationURI)
	simMeasure  = [32]byte{1, 2, 3, 4}
	simReport   = [api.ReportDataSize]byte{5, 6, 7, 8, 63: 9}
	simBlockNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func simSettings(maxAge uint64) *api.AttestationSettings {
	return &api.AttestationSettings{AllowSim: true, DevPublicKey: devKey.Public(), MaxReportAgeSeconds: maxAge}
}

func validSimQuote(t testing.TB, issuedAt time.Time) *api.AttestationReport {
	t.Helper()
	return SignSimQuote(devKey, simMeasure, simReport, issuedAt)
}

func TestVerifySim(t *testing.T) {
	const maxAge = 600
	limit := time.Duration(maxAge) * time.Second
	forger := crypto.MustKeyPairFromURI("//Mallory")
	valid := validSimQuote(t, simBlockNow)
	noSim := simSettings(maxAge)
	noSim.AllowSim = false
	otherDev := simSettings(maxAge)
	otherDev.DevPublicKey = forger.Public()
	tampered := bytes.Clone(valid.Quote)
	tampered[40] ^= 1 // inside the report data

	tests := []struct {
		name     string
		settings *api.AttestationSettings
		report   *api.AttestationReport
		wantErr  string // "" when accepted; else part of the message
	}{
		{"valid", simSettings(maxAge), valid, ""},
		{"issued at the age limit", simSettings(maxAge), validSimQuote(t, simBlockNow.Add(-limit)), ""},
		{"issued ahead at the age limit", simSettings(maxAge), validSimQuote(t, simBlockNow.Add(limit)), ""},
		{"no age limit", simSettings(0), validSimQuote(t, simBlockNow.Add(-100*limit)), ""},
		{"stale", simSettings(maxAge), validSimQuote(t, simBlockNow.Add(-limit-time.Second)), "request a fresh report"},
		{"future", simSettings(maxAge), validSimQuote(t, simBlockNow.Add(limit+time.Second)), "request a fresh report"},
		{"wrong key", simSettings(maxAge), SignSimQuote(forger, simMeasure, simReport, simBlockNow), "not signed by the development attestation key"},
		{"genesis names another dev key", otherDev, valid, "not signed by the development attestation key"},
		{"sim not allowed", noSim, valid, "does not accept sim attestation"},
		{"tampered", simSettings(maxAge), &api.AttestationReport{Platform: api.PlatformSim, Quote: tampered}, "not signed"},
		{"truncated", simSettings(maxAge), &api.AttestationReport{Platform: api.PlatformSim, Quote: valid.Quote[:len(valid.Quote)-1]}, "malformed"},
		{"trailing byte", simSettings(maxAge), &api.AttestationReport{Platform: api.PlatformSim, Quote: append(bytes.Clone(valid.Quote), 0)}, "malformed"},
		{"empty", simSettings(maxAge), &api.AttestationReport{Platform: api.PlatformSim}, "malformed"},
		{"garbage", simSettings(maxAge), &api.AttestationReport{Platform: api.PlatformSim, Quote: bytes.Repeat([]byte{0xff}, 200)}, "malformed"},
		{"unknown platform", simSettings(maxAge), &api.AttestationReport{Platform: "sev-snp", Quote: valid.Quote}, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Verify(tc.settings, tc.report, simBlockNow)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", ev)
				}
				if !errors.Is(err, api.ErrAttestation) {
					t.Fatalf("error does not wrap api.ErrAttestation: %v", err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q, _ := api.DecodeSimQuote(tc.report.Quote)
			if ev.Platform != api.PlatformSim || !bytes.Equal(ev.Measurement, simMeasure[:]) || ev.ReportData != simReport || ev.IssuedAt.Unix() != q.IssuedAt {
				t.Fatalf("evidence %+v", ev)
			}
		})
	}
}
