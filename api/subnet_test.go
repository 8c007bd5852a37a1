package api

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/phalago/phala/api/codec"
	"github.com/phalago/phala/crypto"
)

func subnetSeeds() [][]byte {
	a, b := crypto.PublicKey{1}, crypto.PublicKey{2}
	req := Requirements{Subnet: [32]byte{5}, Platform: PlatformTDX, MinCores: 4, MinMemoryMB: 8192, MinRuntimeVersion: 2}
	return [][]byte{
		(&SubnetRecord{Owner: a, Name: "gpu pool", Sequence: 3, CreatedAt: 9, Members: []crypto.PublicKey{a, b}}).Encode(),
		(&SubnetRecord{Owner: a}).Encode(),
		(&SubnetChanged{Subnet: [32]byte{7}, Members: []crypto.PublicKey{a, b}}).Encode(),
		(&SubnetChanged{Subnet: [32]byte{7}}).Encode(),
		req.Encode(),
		EncodeCall(&SubnetCreate{Name: "x"}),
		EncodeCall(&SubnetMember{Subnet: [32]byte{7}, Worker: b}),
	}
}

// FuzzDecodeSubnet: the subnet decoders (records, change messages,
// requirements, the three calls) never panic, and what they accept
// re-encodes to the same bytes, with members ascending and bounded.
func FuzzDecodeSubnet(f *testing.F) {
	for _, s := range subnetSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ascending := func(ms []crypto.PublicKey) bool {
			for i := 1; i < len(ms); i++ {
				if bytes.Compare(ms[i-1][:], ms[i][:]) >= 0 {
					return false
				}
			}
			return len(ms) <= MaxSubnetMembers
		}
		if v, err := DecodeSubnetRecord(b); err == nil && (!bytes.Equal(v.Encode(), b) || !ascending(v.Members)) {
			t.Fatalf("subnet record mismatch %x", b)
		}
		if v, err := DecodeSubnetChanged(b); err == nil && (!bytes.Equal(v.Encode(), b) || !ascending(v.Members)) {
			t.Fatalf("subnet changed mismatch %x", b)
		}
		if v, err := DecodeRequirements(b); err == nil && !bytes.Equal(v.Encode(), b) {
			t.Fatalf("requirements mismatch %x", b)
		}
		for _, k := range []CallKind{CallSubnetCreate, CallSubnetAdd, CallSubnetRemove} {
			if c, err := DecodeCall(k, b); err == nil && (c.Kind() != k || !bytes.Equal(EncodeCall(c), b)) {
				t.Fatalf("%s mismatch %x", k, b)
			}
		}
	})
}

// Bad subnet encodings are refused: members out of order or repeated,
// more than MaxSubnetMembers, a name with control bytes, a 33-bit
// requirement, trailing bytes.
func TestSubnetDecodersStrict(t *testing.T) {
	a, b := crypto.PublicKey{1}, crypto.PublicKey{2}
	many := codec.NewWriter(0)
	many.Fixed(make([]byte, 32))
	many.Uvarint(MaxSubnetMembers + 1)
	for i := 0; i <= MaxSubnetMembers; i++ {
		k := crypto.PublicKey{byte(i >> 8), byte(i)}
		many.Fixed(k[:])
	}
	req := codec.NewWriter(0)
	req.Fixed(make([]byte, 32))
	req.String("")
	req.Uvarint(1 << 32)
	req.Uvarint(0)
	req.Uvarint(0)
	for name, c := range map[string]struct {
		b      []byte
		decode func([]byte) error
	}{
		"unordered": {(&SubnetChanged{Members: []crypto.PublicKey{b, a}}).Encode(), func(b []byte) error { _, err := DecodeSubnetChanged(b); return err }},
		"repeated":  {(&SubnetRecord{Members: []crypto.PublicKey{a, a}}).Encode(), func(b []byte) error { _, err := DecodeSubnetRecord(b); return err }},
		"too many":  {many.Bytes(), func(b []byte) error { _, err := DecodeSubnetChanged(b); return err }},
		"trailing":  {append((&SubnetChanged{}).Encode(), 0), func(b []byte) error { _, err := DecodeSubnetChanged(b); return err }},
		"name":      {EncodeCall(&SubnetCreate{Name: "a\nb"}), func(b []byte) error { _, err := DecodeCall(CallSubnetCreate, b); return err }},
		"33 bits":   {req.Bytes(), func(b []byte) error { _, err := DecodeRequirements(b); return err }},
	} {
		if err := c.decode(c.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// CheckSubnetName accepts up to MaxSubnetNameBytes of printable ASCII and
// says what is wrong otherwise; the chain's decoder of subnet_create gives
// the same clear reasons (not a bare "too long"), wrapping ErrMalformed.
func TestSubnetNameErrors(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), MaxSubnetNameBytes+1))
	for _, c := range []struct {
		name, want string
	}{
		{"", ""},
		{"gpu pool", ""},
		{long[1:], ""},
		{long, "subnet name is 65 bytes, at most 64"},
		{long + long, "subnet name is 130 bytes, at most 64"},
		{"a\nb", "subnet name has byte 0x0a at offset 1: use printable ASCII"},
		{"caf\xc3\xa9", "subnet name has byte 0xc3 at offset 3"},
	} {
		err := CheckSubnetName(c.name)
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.name, err)
			}
			if _, derr := DecodeCall(CallSubnetCreate, EncodeCall(&SubnetCreate{Name: c.name})); derr != nil {
				t.Errorf("decode %q: %v", c.name, derr)
			}
			continue
		}
		if err == nil || err.Error() != c.want && !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.name, err, c.want)
		}
		_, derr := DecodeCall(CallSubnetCreate, EncodeCall(&SubnetCreate{Name: c.name}))
		if !errors.Is(derr, ErrMalformed) || derr == nil || !strings.Contains(derr.Error(), c.want) {
			t.Errorf("decode %q: %v, want ErrMalformed saying %q", c.name, derr, c.want)
		}
	}
}

// Requirements.Unmet names every unmet hardware requirement and nothing
// for a worker meeting them all.
func TestRequirementsUnmet(t *testing.T) {
	q := Requirements{Platform: PlatformTDX, MinCores: 4, MinMemoryMB: 8192, MinRuntimeVersion: 3}
	ok := &WorkerRecord{Platform: PlatformTDX, Info: WorkerInfo{Cores: 4, MemoryMB: 8192, RuntimeVersion: 3}}
	if why := q.Unmet(ok); why != "" {
		t.Fatalf("a worker meeting them: %q", why)
	}
	bad := &WorkerRecord{Platform: PlatformSim, Info: WorkerInfo{Cores: 2, MemoryMB: 1024, RuntimeVersion: 2}}
	why := q.Unmet(bad)
	for _, want := range []string{`platform "sim", not "tdx"`, "2 cores, fewer than 4", "1024 MiB", "version 2, older than 3"} {
		if !bytes.Contains([]byte(why), []byte(want)) {
			t.Fatalf("reason %q lacks %q", why, want)
		}
	}
	if (&Requirements{}).String() != "none" || !(&Requirements{}).IsZero() || q.IsZero() {
		t.Fatal("zero requirements")
	}
}
