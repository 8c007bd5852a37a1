package attestation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"

	"github.com/phalago/phala/api"
)

// The Intel SGX Root CA, the root of trust of TDX (and SGX DCAP) quotes. It
// is a byte-identical copy of the certificate go-tdx-guest embeds
// (verify/trusted_root.pem). We hand it to the verifier ourselves rather
// than let it fall back to its own copy: the fallback logs a warning line to
// stdout on every verification.
//
//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// intelRootSHA256 is the SHA-256 of the Intel SGX Root CA certificate (DER),
// as Intel publishes it; the embedded PEM must match it.
const intelRootSHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

var intelRoots = mustIntelRoots()

func mustIntelRoots() *x509.CertPool {
	block, _ := pem.Decode(intelRootPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		panic("attestation: embedded Intel SGX root CA is not a PEM certificate")
	}
	if sum := sha256.Sum256(block.Bytes); hex.EncodeToString(sum[:]) != intelRootSHA256 {
		panic("attestation: embedded Intel SGX root CA does not have the pinned fingerprint")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic(fmt.Sprintf("attestation: embedded Intel SGX root CA: %v", err))
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// Identity of Intel's TD quoting enclave (TD_QE), from Intel's published QE
// identity (Intel PCS /tdx/certification/v4/qe/identity; go-tdx-guest's
// testing/testdata/sample_qeIdentity_response). Without collateral the
// verifier does not check which enclave signed the quote body; a platform
// owner could otherwise get his own enclave's key certified by the PCK and
// sign any TD quote body with it.
var (
	tdQEMrSigner, _       = hex.DecodeString("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5")
	tdQEAttributes, _     = hex.DecodeString("11000000000000000000000000000000")
	tdQEAttributesMask, _ = hex.DecodeString("fbffffffffffffff0000000000000000")
)

const (
	tdQEIsvProdID  = 2
	tdQEMiscSelect = 0x00000000 // under mask 0xffffffff
)

// verifyTDX verifies an Intel TDX quote (format v4, ECDSA-256 attestation
// key) offline: its certificate chain against the embedded Intel SGX Root
// CA, judged at now (the block time, never the host clock); the quoting
// enclave's report under the PCK certificate and its binding to the
// attestation key; and the signature of the quote header and TD report
// under that key. Then it checks the quoting enclave is Intel's TD_QE and
// the TD is not debuggable, and returns TDXMeasurement (MRTD‖RTMR0‖RTMR1‖
// RTMR2) as the measurement and REPORTDATA as the report data.
//
// Nothing is fetched: no TCB info, QE identity TCB levels or CRLs. So the
// platform's TCB status (up to date or not) and revocation of PCK
// certificates are not checked.
//
// settings adds nothing for TDX today: the registry checks the measurement
// against the allowlist.
func verifyTDX(settings *api.AttestationSettings, quote []byte, now time.Time) (ev *Evidence, err error) {
	_ = settings
	// go-tdx-guest's parser indexes into the quote without checking every
	// length (a signed-data size below 64 bytes makes it slice out of
	// range). The quote comes from an untrusted transaction and every node
	// runs this code, so a panic is turned into a rejection; it is a
	// function of the quote bytes alone, hence the same on every node.
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("%w: TDX quote is malformed (parser fault: %v)", api.ErrAttestation, r)
		}
	}()
	parsed, err := abi.QuoteToProto(quote)
	if err != nil {
		return nil, fmt.Errorf("%w: TDX quote is malformed: %v", api.ErrAttestation, err)
	}
	q, ok := parsed.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("%w: TDX quote format %T is not supported (only v4)", api.ErrAttestation, parsed)
	}
	opts := &verify.Options{
		GetCollateral:    false, // offline: no Intel PCS requests
		CheckRevocations: false, // needs collateral (CRLs)
		TrustedRoots:     intelRoots,
		Now:              now,
	}
	if err := verify.TdxQuote(q, opts); err != nil {
		return nil, fmt.Errorf("%w: TDX quote failed verification (offline, Intel SGX root CA, block time %s): %v",
			api.ErrAttestation, now.UTC().Format(time.RFC3339), err)
	}
	if err := checkTDXIdentity(q); err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrAttestation, err)
	}
	body := q.GetTdQuoteBody()
	m, err := TDXMeasurement(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrAttestation, err)
	}
	ev = &Evidence{
		Platform:    api.PlatformTDX,
		Measurement: m,
		// TDX quotes carry no time: IssuedAt is the block time, so the
		// report-age limit holds trivially. Freshness comes from the report
		// data instead: it commits to WorkerInfo, which names a recent block
		// by hash, and the registry checks that block (CheckFresh).
		IssuedAt: now,
	}
	copy(ev.ReportData[:], body.GetReportData())
	return ev, nil
}

// TDXMeasurementSize is the size of a TDX measurement: four 48-byte
// registers.
const TDXMeasurementSize = 4 * abi.RtmrSize

// api.TDXMeasurementSize (what governance accepts) must be this size: a
// compile error (constant overflow) otherwise.
const _ = uint(TDXMeasurementSize-api.TDXMeasurementSize) + uint(api.TDXMeasurementSize-TDXMeasurementSize)

// TDXMeasurement is what the allowlist holds for a TD: MRTD‖RTMR0‖RTMR1‖
// RTMR2 (192 bytes), the registers that cover the code the TD boots. MRTD
// measures the initial TD memory (the virtual firmware, TDVF); RTMR0 the
// firmware's configuration (TD HOB, ACPI tables); RTMR1 the OS loader and
// kernel; RTMR2 the kernel command line and initrd, where pRuntime lives.
// MRTD alone would admit any kernel and pRuntime booted by an allowed
// firmware. RTMR3 is left out: it is for the TD's own runtime use
// (extended after boot) and does not identify the code. The registers are
// concatenated, not hashed, so an allowlist entry can be compared register
// by register with the reference values of a build.
func TDXMeasurement(body *pb.TDQuoteBody) ([]byte, error) {
	rtmrs := body.GetRtmrs()
	if len(body.GetMrTd()) != abi.RtmrSize || len(rtmrs) < 3 {
		return nil, fmt.Errorf("TDX quote body lacks MRTD or RTMR0-2")
	}
	m := make([]byte, 0, TDXMeasurementSize)
	m = append(m, body.GetMrTd()...)
	for _, r := range rtmrs[:3] {
		if len(r) != abi.RtmrSize {
			return nil, fmt.Errorf("TDX quote body has an RTMR of %d bytes", len(r))
		}
		m = append(m, r...)
	}
	return m, nil
}

// checkTDXIdentity checks the parts of a signature-verified quote that the
// offline verifier leaves alone: who signed it (the quoting enclave) and
// whether the TD's memory is protected from the host (not in debug mode).
func checkTDXIdentity(q *pb.QuoteV4) error {
	qe := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport()
	if !bytes.Equal(qe.GetMrSigner(), tdQEMrSigner) {
		return fmt.Errorf("TDX quote is not signed by Intel's TD quoting enclave (QE MRSIGNER %x)", qe.GetMrSigner())
	}
	if qe.GetIsvProdId() != tdQEIsvProdID {
		return fmt.Errorf("TDX quote is not signed by Intel's TD quoting enclave (QE ISVPRODID %d, want %d)", qe.GetIsvProdId(), tdQEIsvProdID)
	}
	if qe.GetMiscSelect() != tdQEMiscSelect {
		return fmt.Errorf("TDX quoting enclave has MISCSELECT %#08x, want %#08x", qe.GetMiscSelect(), tdQEMiscSelect)
	}
	attrs := qe.GetAttributes()
	if len(attrs) != len(tdQEAttributesMask) {
		return fmt.Errorf("TDX quoting enclave attributes are %d bytes, want %d", len(attrs), len(tdQEAttributesMask))
	}
	for i := range attrs {
		if attrs[i]&tdQEAttributesMask[i] != tdQEAttributes[i] {
			return fmt.Errorf("TDX quoting enclave attributes %x do not match Intel's TD_QE (debug enclave?)", attrs)
		}
	}
	// TDATTRIBUTES byte 0 is the "TD under debug" group: bit 0 DEBUG, bits
	// 1-7 reserved. A debug TD can be read and changed by the host, so its
	// report data proves nothing, while its MRTD is that of a production TD.
	if tda := q.GetTdQuoteBody().GetTdAttributes(); len(tda) != abi.TdAttributesSize || tda[0] != 0 {
		return fmt.Errorf("TDX quote is from a debuggable TD (TDATTRIBUTES %x); only production TDs are accepted", tda)
	}
	return nil
}
