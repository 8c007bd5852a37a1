package version

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{Version: "v1.2.3"}, "v1.2.3"},
		{Info{Version: "v1.2.3", Go: "go1.26"}, "v1.2.3 (go1.26)"},
		{Info{Version: "0.9.0-dev", Revision: "0123456789abcdef0123", Modified: true, Go: "go1.26"}, "0.9.0-dev (commit 0123456789ab, modified, go1.26)"},
		{Info{Version: "0.9.0-dev", Revision: "abc"}, "0.9.0-dev (commit abc)"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
	if l := Line("phala"); !strings.HasPrefix(l, "phala version ") || Get().Version == "" {
		t.Errorf("Line: %q", l)
	}
}
