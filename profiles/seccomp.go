package profiles

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/spec"
)

// Built-in seccomp profile names.
const (
	// SeccompRuntimeDefault is moby's default profile (github.com/moby/profiles/seccomp),
	// the one Docker, containerd and CRI-O call RuntimeDefault.
	SeccompRuntimeDefault = "runtime-default"
	// SeccompStrict is runtime-default without io_uring, userfaultfd, the
	// keyring, namespace creation and joining, bpf, perf_event_open,
	// open_by_handle_at, and with socket() limited to unix, inet and inet6
	// stream/datagram sockets and route netlink.
	SeccompStrict = "strict"
)

// StrictDeniedSyscalls are removed from runtime-default in the strict
// profile; each is a kernel surface that container escapes have used.
var StrictDeniedSyscalls = []string{
	"io_uring_setup", "io_uring_enter", "io_uring_register", // io_uring: repeated kernel LPEs, bypasses seccomp for its ops
	"userfaultfd",                      // stalls kernel copies to win races (many LPEs)
	"keyctl", "add_key", "request_key", // kernel keyring, not namespaced
	"unshare", "setns", // namespace creation and joining
	"bpf", "perf_event_open", // verifier and perf bugs
	"open_by_handle_at", "name_to_handle_at", // "shocker" host file access
	"process_vm_readv", "process_vm_writev", "ptrace", // cross-process memory access
	"mount", "umount", "umount2", "pivot_root", "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree", "mount_setattr",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"fanotify_init", "lookup_dcookie", "quotactl", "quotactl_fd", "acct", "swapon", "swapoff",
	"syslog", "vhangup",
	"socketcall", // x86 32-bit socket multiplexer: would bypass the socket() allow-list
}

// Seccomp selects a profile's filter: a built-in name or an absolute path to
// an OCI or Docker JSON profile, with small deltas on top.
type Seccomp struct {
	// Profile is "runtime-default", "strict", or an absolute path to a
	// JSON profile (owned by root, not writable by others).
	Profile string `yaml:"profile,omitempty" json:"profile,omitempty"`
	// Allow adds syscalls the base profile denies.
	Allow []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	// Deny removes syscalls from the base profile (they fail with EPERM).
	Deny []string `yaml:"deny,omitempty" json:"deny,omitempty"`
	// Complain turns every action of the filter that denies a syscall
	// (errno, SIGSYS, kill; the default action and the rules') into
	// SCMP_ACT_LOG: the workload keeps running and the kernel logs each
	// syscall the filter would have denied. It switches the filter's
	// protection off, so no built-in profile sets it, a selectable profile
	// may not turn it on, runsc (which rejects SCMP_ACT_LOG) may not run
	// it, and every decision records it (rule seccomp.complain). A user
	// profile that extends a complain profile inherits it, like any field.
	Complain *bool `yaml:"complain,omitempty" json:"complain,omitempty"`
	// LogDenials adds SECCOMP_FILTER_FLAG_LOG: the kernel logs every
	// syscall the filter does not allow, subject to
	// /proc/sys/kernel/seccomp/actions_logged (rule seccomp.log-denials).
	LogDenials *bool `yaml:"logDenials,omitempty" json:"logDenials,omitempty"`
}

// complain and logDenials read the optional switches.
func (sc Seccomp) complain() bool   { return sc.Complain != nil && *sc.Complain }
func (sc Seccomp) logDenials() bool { return sc.LogDenials != nil && *sc.LogDenials }

// seccompSource is a loaded, validated filter recipe; build turns it into a
// filter for one spec.
type seccompSource struct {
	name       string
	base       string               // built-in name, or "" for a file
	file       *mobyseccomp.Seccomp // decoded JSON profile
	allow      []string             // validated delta
	deny       []string             // validated delta
	complain   bool                 // install in complain mode (spec.Complain)
	logDenials bool                 // add SECCOMP_FILTER_FLAG_LOG (spec.LogDenials)
	cache      sync.Map             // sorted capability set -> *specs.LinuxSeccomp
	entries    atomic.Int64         // cache size
}

// maxSeccompCache bounds the filters cached per profile.
const maxSeccompCache = 256

// newSeccompSource validates a profile's seccomp settings: it loads the
// file, checks every delta name against libseccomp and compiles the filter
// as it would be built for a container holding allowedCaps.
func newSeccompSource(sc Seccomp, allowedCaps []string) (*seccompSource, error) {
	// Built-in bases are the same in every policy load: reuse what an
	// earlier load validated and compiled (a file may change; it is never
	// reused). Loading the default policy drops from ~20ms to well under 1ms.
	var key string
	if sc.Profile == SeccompRuntimeDefault || sc.Profile == SeccompStrict {
		key = strings.Join([]string{sc.Profile, strings.Join(sc.Allow, ","), strings.Join(sc.Deny, ","), strings.Join(allowedCaps, ","),
			fmt.Sprint(sc.complain(), sc.logDenials())}, "|")
		if v, ok := builtinSources.Load(key); ok {
			return v.(*seccompSource), nil
		}
	}
	src, err := loadSeccompSource(sc, allowedCaps)
	if err == nil && key != "" && builtinSourceCount.Add(1) <= maxSeccompCache {
		builtinSources.Store(key, src)
	}
	return src, err
}

// builtinSources caches validated sources on built-in bases across loads.
var (
	builtinSources     sync.Map
	builtinSourceCount atomic.Int64
)

func loadSeccompSource(sc Seccomp, allowedCaps []string) (*seccompSource, error) {
	src := &seccompSource{name: sc.Profile, complain: sc.complain(), logDenials: sc.logDenials()}
	switch sc.Profile {
	case SeccompRuntimeDefault, SeccompStrict:
		src.base = sc.Profile
	case "":
		return nil, errors.New("seccomp.profile: empty (want runtime-default, strict or an absolute path)")
	default:
		if !strings.HasPrefix(sc.Profile, "/") {
			return nil, fmt.Errorf("seccomp.profile: %q is not a built-in profile (runtime-default, strict) nor an absolute path", sc.Profile)
		}
		body, err := readTrustedFile(sc.Profile)
		if err != nil {
			return nil, fmt.Errorf("seccomp.profile: %w", err)
		}
		var f mobyseccomp.Seccomp
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("seccomp.profile %s: decode: %w", sc.Profile, err)
		}
		if f.DefaultAction == "" {
			return nil, fmt.Errorf("seccomp.profile %s: defaultAction is missing", sc.Profile)
		}
		src.file = &f
	}
	for _, d := range []struct {
		field string
		names []string
		dst   *[]string
	}{{"seccomp.allow", sc.Allow, &src.allow}, {"seccomp.deny", sc.Deny, &src.deny}} {
		for _, n := range d.names {
			if err := knownSyscall(n); err != nil {
				return nil, fmt.Errorf("%s: %w", d.field, err)
			}
		}
		*d.dst = slices.Clone(d.names)
	}
	if len(sc.Allow) > 0 {
		src.name += " +" + strings.Join(sc.Allow, ",+")
	}
	if len(sc.Deny) > 0 {
		src.name += " -" + strings.Join(sc.Deny, ",-")
	}
	if src.complain {
		src.name += " (complain)"
	}
	// Compile once now, for the capability set the profile allows, so a
	// profile libseccomp (and so runc) would reject fails at load. The
	// built-in filters without deltas are constant and compiled by the
	// tests (TestBuiltinFiltersCompile) for every capability set that
	// changes them; compiling them here cost every new shim process ~15ms.
	if src.pureBuiltin() {
		return src, nil
	}
	probe := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: allowedCaps}}}
	filter, err := src.generate(probe)
	if err != nil {
		return nil, err
	}
	if err := Compile(filter, src.file != nil); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", sc.Profile, err)
	}
	if src.complain {
		// What runc will actually load: the same filter with SCMP_ACT_LOG.
		if err := Compile(src.install(filter), src.file != nil); err != nil {
			return nil, fmt.Errorf("seccomp profile %s in complain mode: %w", sc.Profile, err)
		}
	}
	return src, nil
}

// install is what SetSeccompProfile makes of a generated filter with this
// source's options; the load-time checks look at the same thing.
func (src *seccompSource) install(f *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	if src.complain {
		f, _ = spec.ComplainSeccomp(f)
	}
	if src.logDenials && !slices.Contains(f.Flags, specs.LinuxSeccompFlagLog) {
		f.Flags = append(slices.Clone(f.Flags), specs.LinuxSeccompFlagLog)
	}
	return f
}

// options are the SetSeccompProfile options this source asks for.
func (src *seccompSource) options() []spec.SeccompOption {
	var opts []spec.SeccompOption
	if src.complain {
		opts = append(opts, spec.Complain(RuleSeccompComplain))
	}
	if src.logDenials {
		opts = append(opts, spec.LogDenials(RuleSeccompLog))
	}
	return opts
}

// pureBuiltin reports a built-in filter with no deltas: constant, so
// validated by the tests rather than on every load. Complain mode changes
// its actions; logDenials only adds a flag, which libseccomp does not
// compile.
func (src *seccompSource) pureBuiltin() bool {
	return src.base != "" && src.file == nil && len(src.allow) == 0 && len(src.deny) == 0 && !src.complain
}

// builtinTightens says whether built-in filter sel allows no more than
// built-in filter base: strict is runtime-default with syscalls taken away
// and the same default action (TestBuiltinTightensTable checks this against
// the general comparison).
func builtinTightens(base, sel string) bool {
	return base == sel || (base == SeccompRuntimeDefault && sel == SeccompStrict)
}

// build returns the filter for s. The result depends only on the bounding
// capabilities, so it is cached per capability set; callers get their own
// copy, because the spec they put it in is theirs to change.
func (src *seccompSource) build(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	var bounding []string
	if s.Process != nil && s.Process.Capabilities != nil {
		bounding = s.Process.Capabilities.Bounding
	}
	sorted := slices.Sorted(slices.Values(bounding))
	key := strings.Join(sorted, ",")
	if v, ok := src.cache.Load(key); ok {
		return cloneSeccomp(v.(*specs.LinuxSeccomp)), nil
	}
	f, err := src.generate(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: sorted}}})
	if err != nil {
		return nil, err
	}
	// Bounded: the capability sets a policy lets through are few, but a
	// profile that allows ALL sees whatever engines send.
	if src.entries.Add(1) <= maxSeccompCache {
		src.cache.Store(key, f)
	}
	return cloneSeccomp(f), nil
}

func (src *seccompSource) generate(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	var (
		f   *specs.LinuxSeccomp
		err error
	)
	if src.file != nil {
		// setupSeccomp consumes Syscalls' Name into Names; work on a copy.
		b, mErr := json.Marshal(src.file)
		if mErr != nil {
			return nil, mErr
		}
		f, err = mobyseccomp.LoadProfile(string(b), s)
	} else {
		f, err = mobyseccomp.GetDefaultProfile(s)
	}
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("the profile is empty")
	}
	if src.base == SeccompStrict {
		tighten(f, StrictDeniedSyscalls)
		restrictSockets(f)
		if err := restrictClone(f); err != nil {
			return nil, err
		}
	}
	if len(src.deny) > 0 {
		tighten(f, src.deny)
	}
	if len(src.allow) > 0 {
		f.Syscalls = append(f.Syscalls, specs.LinuxSyscall{Names: slices.Clone(src.allow), Action: specs.ActAllow})
	}
	return f, nil
}

// tighten removes names from every rule that allows them, and makes sure
// they fail with EPERM even when the default action would let them through.
func tighten(f *specs.LinuxSeccomp, names []string) {
	out := f.Syscalls[:0]
	for _, r := range f.Syscalls {
		if r.Action == specs.ActAllow || r.Action == specs.ActLog {
			r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(names, n) })
			if len(r.Names) == 0 {
				continue
			}
		}
		out = append(out, r)
	}
	f.Syscalls = out
	if f.DefaultAction == specs.ActAllow || f.DefaultAction == specs.ActLog {
		eperm := uint(unix.EPERM)
		f.Syscalls = append(f.Syscalls, specs.LinuxSyscall{Names: slices.Clone(names), Action: specs.ActErrno, ErrnoRet: &eperm})
	}
}

// restrictSockets replaces the socket() rules with an allow-list: unix
// sockets, inet and inet6 stream, datagram and seqpacket sockets (no raw or
// packet sockets), and route netlink. Conditions on different arguments of
// one rule are ANDed; separate rules are ORed (runc issue 2735).
func restrictSockets(f *specs.LinuxSeccomp) {
	tighten(f, []string{"socket"})
	rule := func(args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow, Args: args}
	}
	eq := func(i uint, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Value: v, Op: specs.OpEqualTo}
	}
	// The type argument carries SOCK_NONBLOCK and SOCK_CLOEXEC in its high
	// bits; the socket type is the low nibble.
	typeIs := func(t uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: 1, Value: 0xf, ValueTwo: t, Op: specs.OpMaskedEqual}
	}
	f.Syscalls = append(f.Syscalls, rule(eq(0, unix.AF_UNIX)))
	for _, fam := range []uint64{unix.AF_INET, unix.AF_INET6} {
		for _, t := range []uint64{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_SEQPACKET} {
			f.Syscalls = append(f.Syscalls, rule(eq(0, fam), typeIs(t)))
		}
	}
	f.Syscalls = append(f.Syscalls, rule(eq(0, unix.AF_NETLINK), eq(2, unix.NETLINK_ROUTE)))
}

// nsFlags are the clone flags that create namespaces.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// restrictClone allows clone only without namespace flags and makes clone3
// fail with ENOSYS (its flags live in memory seccomp cannot read; libc then
// falls back to clone), whatever the capabilities. moby does the same only
// when CAP_SYS_ADMIN is absent.
func restrictClone(f *specs.LinuxSeccomp) error {
	idx, err := cloneFlagsArg(f.Architectures, runtime.GOARCH)
	if err != nil {
		return err
	}
	tighten(f, []string{"clone", "clone3"})
	f.Syscalls = append(f.Syscalls, specs.LinuxSyscall{
		Names: []string{"clone"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: idx, Value: nsFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
	})
	enosys := uint(unix.ENOSYS)
	f.Syscalls = append(f.Syscalls, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	return nil
}

// cloneFlagsArg is the index of clone's flags argument for a filter's
// architectures (goarch's when it lists none): 1 on s390 and s390x, where
// clone takes the stack first, 0 elsewhere, as in moby's profile. One rule
// cannot serve both: on the others, argument 1 is the stack pointer, which
// the caller chooses, so such a filter is refused.
func cloneFlagsArg(arches []specs.Arch, goarch string) (uint, error) {
	if len(arches) == 0 {
		if goarch == "s390x" {
			return 1, nil
		}
		return 0, nil
	}
	s390 := 0
	for _, a := range arches {
		if a == specs.ArchS390 || a == specs.ArchS390X {
			s390++
		}
	}
	switch s390 {
	case 0:
		return 0, nil
	case len(arches):
		return 1, nil
	}
	return 0, fmt.Errorf("strict's clone rule cannot cover s390 and other architectures in one filter (%v): clone's flags are argument 1 on s390 and 0 elsewhere", arches)
}

// cloneSeccomp copies a cached filter for one spec. The rule list and the
// top-level slices are copied; each rule's Names and Args are shared, clipped
// to their length so an append reallocates. Nothing in harden edits a
// filter's names in place (tighten clones first), and the strings themselves
// are immutable; sharing them saves ~80 allocations per container.
func cloneSeccomp(f *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	c := *f
	c.Architectures = slices.Clone(f.Architectures)
	c.Flags = slices.Clone(f.Flags)
	c.Syscalls = make([]specs.LinuxSyscall, len(f.Syscalls))
	for i, r := range f.Syscalls {
		r.Names = r.Names[:len(r.Names):len(r.Names)]
		r.Args = r.Args[:len(r.Args):len(r.Args)]
		c.Syscalls[i] = r
	}
	return &c
}

// readTrustedFile reads a file that configures security: it must be a
// regular file owned by root and writable by nobody else, or anyone who can
// write it can switch protections off.
//
// Symlinks are followed (a Kubernetes ConfigMap volume is a chain of them),
// and so is every step to the file (trustedPath): whoever could replace a
// directory or a symlink on the way could point the loader at a file of
// their choosing.
func readTrustedFile(p string) ([]byte, error) {
	real, err := trustedPath(p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s: writable by group or others (mode %04o); make it 0644 or stricter", p, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != uint32(os.Getuid()) {
		return nil, fmt.Errorf("%s: owned by uid %d, not root", p, st.Uid)
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxPolicySize*4 {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, MaxPolicySize*4)
	}
	return data, nil
}

// maxSymlinks bounds the symlinks trustedPath follows, as the kernel's
// MAXSYMLINKS does.
const maxSymlinks = 40

// trustedPath resolves p as the kernel would, step by step, and checks
// each directory it passes through and each symlink it follows: owned by
// root or by this process's user, and, for a directory, writable by no one
// else unless it is sticky (as /tmp is), where only an entry's owner can
// replace it. It returns the resolved path of the last element, which it
// does not check (readTrustedFile does). Between this and the read, only
// those owners could change the path.
func trustedPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	uid := uint32(os.Getuid())
	check := func(path string, fi os.FileInfo) error {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != 0 && st.Uid != uid {
			return fmt.Errorf("%s: %s on the way is owned by uid %d, not root", p, path, st.Uid)
		}
		if fi.IsDir() && fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("%s: directory %s on the way is writable by group or others (mode %04o)", p, path, fi.Mode().Perm())
		}
		return nil
	}
	root, err := os.Lstat("/")
	if err != nil {
		return "", err
	}
	if err := check("/", root); err != nil {
		return "", err
	}
	cur := "/"
	rest := strings.Split(strings.TrimPrefix(abs, "/"), "/")
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, errors.Unwrap(err))
		}
		if len(rest) == 0 && fi.Mode()&os.ModeSymlink == 0 {
			return next, nil // the file itself: the caller checks it
		}
		if err := check(next, fi); err != nil {
			return "", err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			if links++; links > maxSymlinks {
				return "", fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", fmt.Errorf("%s: %w", p, err)
			}
			if strings.HasPrefix(target, "/") {
				cur = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
		case fi.IsDir():
			cur = next
		default:
			return "", fmt.Errorf("%s: %s is not a directory", p, next)
		}
	}
	return cur, nil
}

// syscallNames lists the names a filter mentions, sorted, for records and
// selectable-profile checks.
func allowedNames(f *specs.LinuxSeccomp) []string {
	set := map[string]bool{}
	for _, r := range f.Syscalls {
		if r.Action == specs.ActAllow || r.Action == specs.ActLog {
			for _, n := range r.Names {
				set[n] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

var _ spec.SeccompBuilder = (*seccompSource)(nil).build
