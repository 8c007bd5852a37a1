package attestation

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"google.golang.org/protobuf/proto"

	"github.com/phalago/phala/api"
)

// sampleTDXQuote is go-tdx-guest v0.3.1's recorded production quote
// (testing/testdata/tdx_prod_quote_SPR_E4.dat, a v4 quote from a Sapphire
// Rapids E4 machine, followed by 39 unsigned "extra bytes" the module's
// tests appended). Its PCK certificate is valid from 2022-09-20 13:20:31 to
// 2029-09-20 13:20:31 UTC, the platform CA to 2033, the root CA to 2049.
const sampleTDXQuotePath = "testdata/tdx_quote_v4_spr_e4.dat"

var (
	sampleValidTime = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	pckNotBefore    = time.Date(2022, 9, 20, 13, 20, 31, 0, time.UTC)
	pckNotAfter     = time.Date(2029, 9, 20, 13, 20, 31, 0, time.UTC)
)

// Offsets in a v4 quote: header 0x30 bytes, TD report body 0x248 bytes,
// then the signed-data size (4 bytes) and the signed data (signature 64
// bytes, attestation key 64 bytes, certification data).
const (
	offTDBody       = 0x30
	offTDAttributes = offTDBody + 0x78
	offMRTD         = offTDBody + 0x88
	offRTMR0        = offTDBody + 0x148 // RTMR0..3, 48 bytes each
	offReportData   = offTDBody + 0x208
	offSignedSize   = 0x278
	offSignature    = 0x27c
	offAttestKey    = offSignature + 0x40
	offQEReport     = offAttestKey + 0x40 + 6 // after certification data type and size
	offQEReportData = offQEReport + 0x140
)

func loadSampleTDXQuote(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(sampleTDXQuotePath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeSampleTDXQuote(t testing.TB, raw []byte) *pb.QuoteV4 {
	t.Helper()
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		t.Fatalf("abi.QuoteToProto: %v", err)
	}
	return q.(*pb.QuoteV4)
}

func flip(b []byte, off int) []byte {
	c := bytes.Clone(b)
	c[off] ^= 0x01
	return c
}

func TestVerifyTDXSample(t *testing.T) {
	raw := loadSampleTDXQuote(t)
	q := decodeSampleTDXQuote(t, raw)
	wantMRTD := q.GetTdQuoteBody().GetMrTd()
	wantRD := q.GetTdQuoteBody().GetReportData()
	// Independent of the parser: the fields sit at fixed offsets.
	if !bytes.Equal(wantMRTD, raw[offMRTD:offMRTD+48]) || !bytes.Equal(wantRD, raw[offReportData:offReportData+64]) {
		t.Fatal("abi.QuoteToProto and the v4 layout disagree on MRTD or REPORTDATA")
	}
	if got := hex.EncodeToString(wantMRTD); got != "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb" {
		t.Fatalf("sample MRTD changed: %s", got)
	}

	settings := &api.AttestationSettings{MaxReportAgeSeconds: 600} // no sim, no dev key: TDX needs neither
	for _, now := range []time.Time{sampleValidTime, pckNotBefore.Add(time.Second), pckNotAfter.Add(-time.Second)} {
		ev, err := Verify(settings, &api.AttestationReport{Platform: api.PlatformTDX, Quote: raw}, now)
		if err != nil {
			t.Fatalf("now=%s: %v", now, err)
		}
		if ev.Platform != api.PlatformTDX {
			t.Errorf("platform %q", ev.Platform)
		}
		if wantM := raw[offMRTD : offMRTD+48]; len(ev.Measurement) != TDXMeasurementSize || !bytes.Equal(ev.Measurement[:48], wantM) ||
			!bytes.Equal(ev.Measurement[48:], raw[offRTMR0:offRTMR0+3*48]) {
			t.Errorf("measurement %x, want MRTD‖RTMR0‖RTMR1‖RTMR2 of the quote", ev.Measurement)
		}
		if !bytes.Equal(ev.ReportData[:], wantRD) {
			t.Errorf("report data %x, want %x", ev.ReportData, wantRD)
		}
		if !ev.IssuedAt.Equal(now) {
			t.Errorf("issued at %s, want the block time %s", ev.IssuedAt, now)
		}
		// The evidence must not alias the caller's quote.
		ev.Measurement[0] ^= 0xff
		if raw[offMRTD] == ev.Measurement[0] {
			t.Error("evidence measurement aliases the quote bytes")
		}
	}
}

func TestVerifyTDXRejects(t *testing.T) {
	raw := loadSampleTDXQuote(t)
	signedEnd := offSignature + int(binary.LittleEndian.Uint32(raw[offSignedSize:]))
	// A base64 character inside the PCK leaf certificate, swapped for
	// another valid one: the PEM still decodes, the DER no longer verifies.
	pckLeaf := bytes.Clone(raw)
	i := bytes.Index(pckLeaf, []byte("-----BEGIN CERTIFICATE-----\n")) + 28 + 300
	if pckLeaf[i] == 'A' {
		pckLeaf[i] = 'B'
	} else {
		pckLeaf[i] = 'A'
	}

	shortSigned := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(shortSigned[offSignedSize:], 10) // makes go-tdx-guest's parser panic
	sgx := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(sgx[4:], 0) // TEE type SGX
	v3 := bytes.Clone(raw)
	binary.LittleEndian.PutUint16(v3[0:], 3)
	garbage := make([]byte, len(raw))
	rand.New(rand.NewSource(1)).Read(garbage)
	garbageV4 := bytes.Clone(garbage)
	copy(garbageV4, raw[:offSignature]) // valid header, body and size, random signed data

	tests := []struct {
		name     string
		platform string
		quote    []byte
		now      time.Time
		wantMsg  string // part of the error message: which check failed
	}{
		{"tampered REPORTDATA", api.PlatformTDX, flip(raw, offReportData+5), sampleValidTime, "message digest"},
		{"tampered MRTD", api.PlatformTDX, flip(raw, offMRTD), sampleValidTime, "message digest"},
		{"tampered RTMR0", api.PlatformTDX, flip(raw, offRTMR0), sampleValidTime, "message digest"},
		{"tampered RTMR1", api.PlatformTDX, flip(raw, offRTMR0+48+17), sampleValidTime, "message digest"},
		{"tampered RTMR2", api.PlatformTDX, flip(raw, offRTMR0+2*48+47), sampleValidTime, "message digest"},
		{"tampered TD attributes (debug bit)", api.PlatformTDX, flip(raw, offTDAttributes), sampleValidTime, "message digest"},
		{"tampered header", api.PlatformTDX, flip(raw, 0x0c), sampleValidTime, "message digest"},
		{"tampered signature", api.PlatformTDX, flip(raw, offSignature+7), sampleValidTime, "message digest"},
		{"tampered signature s", api.PlatformTDX, flip(raw, offSignature+40), sampleValidTime, "message digest"},
		{"tampered attestation key", api.PlatformTDX, flip(raw, offAttestKey+20), sampleValidTime, "attestation key"},
		{"tampered QE report", api.PlatformTDX, flip(raw, offQEReport+0x30), sampleValidTime, "QE report"},
		{"tampered QE report data", api.PlatformTDX, flip(raw, offQEReportData), sampleValidTime, "QE report"},
		{"tampered PCK leaf certificate", api.PlatformTDX, pckLeaf, sampleValidTime, "certificate"},
		{"certificates expired at block time", api.PlatformTDX, raw, pckNotAfter.Add(time.Second), "expired"},
		{"far future block time", api.PlatformTDX, raw, time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), "expired"},
		{"certificate not yet valid at block time", api.PlatformTDX, raw, pckNotBefore.Add(-time.Second), "not yet valid"},
		{"truncated signed data", api.PlatformTDX, raw[:signedEnd-1], sampleValidTime, "malformed"},
		{"truncated body", api.PlatformTDX, raw[:offSignedSize+2], sampleValidTime, "malformed"},
		{"truncated header", api.PlatformTDX, raw[:1], sampleValidTime, "malformed"},
		{"empty", api.PlatformTDX, nil, sampleValidTime, "malformed"},
		{"signed-data size too small (library panic)", api.PlatformTDX, shortSigned, sampleValidTime, "malformed"},
		{"not a TDX TEE", api.PlatformTDX, sgx, sampleValidTime, "malformed"},
		{"quote version 3", api.PlatformTDX, v3, sampleValidTime, "malformed"},
		{"garbage", api.PlatformTDX, garbage, sampleValidTime, "malformed"},
		{"garbage signed data", api.PlatformTDX, garbageV4, sampleValidTime, "malformed"},
		{"sim quote as tdx", api.PlatformTDX, validSimQuote(t, sampleValidTime).Quote, sampleValidTime, "malformed"},
		{"tdx quote as sim", api.PlatformSim, raw, sampleValidTime, "sim quote"},
		{"unknown platform", "sgx", raw, sampleValidTime, "not supported"},
		{"platform name case", "TDX", raw, sampleValidTime, "not supported"},
		{"empty platform", "", raw, sampleValidTime, "not supported"},
	}
	settings := simSettings(600)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Verify(settings, &api.AttestationReport{Platform: tc.platform, Quote: tc.quote}, tc.now)
			if err == nil {
				t.Fatalf("accepted: %+v", ev)
			}
			if !errors.Is(err, api.ErrAttestation) {
				t.Fatalf("error does not wrap api.ErrAttestation: %v", err)
			}
			if ev != nil {
				t.Errorf("evidence returned with an error")
			}
			t.Log(err)
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.wantMsg)) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
}

// The measurement covers MRTD and RTMR0-2, each register at its place: a TD
// that differs from the sample in any of them (a different kernel, initrd or
// command line under the same firmware) has a different measurement, so an
// allowlist holding the sample's does not admit it. RTMR3 (runtime use) is
// not part of it. The signature makes a tampered quote fail anyway (see
// TestVerifyTDXRejects); this tests what the allowlist is compared with.
func TestTDXMeasurementCoversRTMRs(t *testing.T) {
	raw := loadSampleTDXQuote(t)
	base := decodeSampleTDXQuote(t, raw)
	want, err := TDXMeasurement(base.GetTdQuoteBody())
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != TDXMeasurementSize || !bytes.Equal(want[:48], raw[offMRTD:offMRTD+48]) || !bytes.Equal(want[48:], raw[offRTMR0:offRTMR0+144]) {
		t.Fatal("measurement is not MRTD‖RTMR0‖RTMR1‖RTMR2 at the v4 offsets")
	}
	allow := &api.AttestationSettings{Measurements: []api.HexBytes{want}}
	onlyMRTD := &api.AttestationSettings{Measurements: []api.HexBytes{base.GetTdQuoteBody().GetMrTd()}}
	if !allow.MeasurementAllowed(want) || onlyMRTD.MeasurementAllowed(want) {
		t.Fatal("allowlist: the full measurement must match exactly, MRTD alone must not")
	}
	for _, tc := range []struct {
		name    string
		mutate  func(b *pb.TDQuoteBody)
		changed bool
	}{
		{"MRTD", func(b *pb.TDQuoteBody) { b.MrTd[0] ^= 1 }, true},
		{"RTMR0", func(b *pb.TDQuoteBody) { b.Rtmrs[0][5] ^= 1 }, true},
		{"RTMR1", func(b *pb.TDQuoteBody) { b.Rtmrs[1][47] ^= 1 }, true},
		{"RTMR2", func(b *pb.TDQuoteBody) { b.Rtmrs[2][0] ^= 0x80 }, true},
		{"RTMR3 (runtime)", func(b *pb.TDQuoteBody) { b.Rtmrs[3][0] ^= 1 }, false},
		{"MRCONFIGID", func(b *pb.TDQuoteBody) { b.MrConfigId[0] ^= 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := proto.Clone(base).(*pb.QuoteV4)
			tc.mutate(q.TdQuoteBody)
			got, err := TDXMeasurement(q.TdQuoteBody)
			if err != nil {
				t.Fatal(err)
			}
			if changed := !bytes.Equal(got, want); changed != tc.changed {
				t.Fatalf("measurement changed: %v, want %v", changed, tc.changed)
			}
			if tc.changed && allow.MeasurementAllowed(got) {
				t.Fatal("a TD with another register value is allowed")
			}
		})
	}
	short := proto.Clone(base).(*pb.QuoteV4)
	short.TdQuoteBody.Rtmrs = short.TdQuoteBody.Rtmrs[:2]
	if _, err := TDXMeasurement(short.TdQuoteBody); err == nil {
		t.Fatal("body without RTMR2 accepted")
	}
}

// The quoting-enclave and debug checks run on quotes whose signatures
// verify, and no such quote with these defects is at hand; so they are
// tested on the decoded sample directly.
func TestCheckTDXIdentity(t *testing.T) {
	base := decodeSampleTDXQuote(t, loadSampleTDXQuote(t))
	if err := checkTDXIdentity(base); err != nil {
		t.Fatalf("sample: %v", err)
	}
	qe := func(q *pb.QuoteV4) *pb.EnclaveReport {
		return q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport()
	}
	tests := []struct {
		name    string
		mutate  func(q *pb.QuoteV4)
		wantMsg string
	}{
		{"debug TD", func(q *pb.QuoteV4) { q.TdQuoteBody.TdAttributes[0] |= 0x01 }, "debuggable TD"},
		{"reserved TUD bit", func(q *pb.QuoteV4) { q.TdQuoteBody.TdAttributes[0] |= 0x80 }, "debuggable TD"},
		{"other QE signer", func(q *pb.QuoteV4) { qe(q).MrSigner[0] ^= 1 }, "QE MRSIGNER"},
		{"other QE product", func(q *pb.QuoteV4) { qe(q).IsvProdId = 1 }, "ISVPRODID"},
		{"debug QE", func(q *pb.QuoteV4) { qe(q).Attributes[0] |= 0x02 }, "debug enclave"},
		{"QE misc select", func(q *pb.QuoteV4) { qe(q).MiscSelect = 1 }, "MISCSELECT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := proto.Clone(base).(*pb.QuoteV4)
			tc.mutate(q)
			err := checkTDXIdentity(q)
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("got %v, want an error saying %q", err, tc.wantMsg)
			}
		})
	}
	// Bits the QE attribute mask ignores (MODE64BIT, XFRM) may vary.
	q := proto.Clone(base).(*pb.QuoteV4)
	qe(q).Attributes[0] ^= 0x04
	qe(q).Attributes[8] ^= 0xff
	if err := checkTDXIdentity(q); err != nil {
		t.Fatalf("masked QE attribute bits: %v", err)
	}
}

// The pinned root is the one the sample quote's chain ends in.
func TestIntelRootMatchesSampleChain(t *testing.T) {
	q := decodeSampleTDXQuote(t, loadSampleTDXQuote(t))
	rest := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()
	var last *pem.Block
	for {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		last, rest = b, r
	}
	own, _ := pem.Decode(intelRootPEM)
	if last == nil || !bytes.Equal(last.Bytes, own.Bytes) {
		t.Fatal("the sample chain's root is not the embedded Intel SGX root CA")
	}
	c, err := x509.ParseCertificate(own.Bytes)
	if err != nil || c.Subject.CommonName != "Intel SGX Root CA" {
		t.Fatalf("embedded root: %v %v", c.Subject, err)
	}
}
