package attestation

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phalago/phala/api"
)

// FuzzVerify feeds arbitrary bytes to Verify as a sim and as a TDX quote.
// Quotes come from untrusted transactions and every node verifies them:
// Verify must not panic, must reject with api.ErrAttestation, and whatever
// it accepts must be well formed.
func FuzzVerify(f *testing.F) {
	sample := loadSampleTDXQuote(f)
	sim := validSimQuote(f, simBlockNow).Quote
	f.Add(sample)
	f.Add(sim)
	f.Add(flip(sample, offReportData))
	f.Add(sample[:offSignedSize+4+0x80])
	f.Add([]byte{})

	settings := simSettings(600)
	f.Fuzz(func(t *testing.T, quote []byte) {
		for _, c := range []struct {
			platform string
			measure  int
		}{{api.PlatformSim, 32}, {api.PlatformTDX, TDXMeasurementSize}} {
			in := bytes.Clone(quote)
			ev, err := Verify(settings, &api.AttestationReport{Platform: c.platform, Quote: in}, sampleValidTime)
			if !bytes.Equal(in, quote) {
				t.Fatalf("%s: Verify modified the quote", c.platform)
			}
			if err != nil {
				if !errors.Is(err, api.ErrAttestation) {
					t.Fatalf("%s: error does not wrap api.ErrAttestation: %v", c.platform, err)
				}
				if ev != nil {
					t.Fatalf("%s: evidence with an error", c.platform)
				}
				continue
			}
			if ev.Platform != c.platform || len(ev.Measurement) != c.measure {
				t.Fatalf("%s: accepted with evidence %+v", c.platform, ev)
			}
			if c.platform == api.PlatformTDX && (!bytes.Equal(ev.Measurement[:48], quote[offMRTD:offMRTD+48]) || !bytes.Equal(ev.Measurement[48:], quote[offRTMR0:offRTMR0+144]) || !bytes.Equal(ev.ReportData[:], quote[offReportData:offReportData+64])) {
				t.Fatalf("tdx: evidence does not match the quote's MRTD, RTMR0-2 and REPORTDATA")
			}
		}
	})
}
