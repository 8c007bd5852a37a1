// Package version owns the version every binary of the project reports
// with --version (phala, phala-node, pruntime, pherry): the module version
// the binary was built from and, when the Go toolchain recorded it, the VCS
// revision and whether the tree was modified.
package version

import (
	"fmt"
	"runtime/debug"
)

// Version is the project's release, used when the build carries no module
// version (a build inside the module's own tree reports "(devel)").
const Version = "0.9.0-dev"

// Info is what a binary knows about its own build.
type Info struct {
	Version  string // the module version, or [Version]
	Revision string // VCS commit, "" if not recorded
	Modified bool   // the tree had uncommitted changes
	Go       string // the Go toolchain
}

// Get reads the build information of the running binary.
func Get() Info {
	info := Info{Version: Version}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.Go = bi.GoVersion
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one-line version: "0.9.0-dev (commit 0123abcd4567, modified, go1.26)".
func (i Info) String() string {
	s := i.Version
	var extra string
	if i.Revision != "" {
		r := i.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		extra = "commit " + r
		if i.Modified {
			extra += ", modified"
		}
	}
	if i.Go != "" {
		if extra != "" {
			extra += ", "
		}
		extra += i.Go
	}
	if extra != "" {
		s = fmt.Sprintf("%s (%s)", s, extra)
	}
	return s
}

// Line is what `<binary> --version` prints: "<binary> version <String>".
func Line(binary string) string { return binary + " version " + Get().String() }

// Template is the cobra version template of the project's binaries
// ("<name> version <String>"); a root command sets Version to
// Get().String() and calls SetVersionTemplate(Template).
const Template = "{{.Name}} version {{.Version}}\n"
