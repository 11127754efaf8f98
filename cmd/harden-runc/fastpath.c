// harden-runc's fast path: start, state, kill and delete of a container
// harden-runc created are handed to its runtime here, in a constructor that
// runs before the Go runtime starts (as runc's nsexec does), because harden
// changes nothing in them and a Go process start costs several
// milliseconds. runcwrap/fastpath.go explains the file this reads, which
// create writes into the bundle.
//
// Anything this code does not fully recognise returns, and the Go path
// (runcwrap.Main) handles the command with the configuration and the state
// record: an unknown flag or subcommand, harden's own flags, a missing or
// foreign fast-path file, a runtime that cannot be found. It never refuses
// anything itself; a command it cannot run the Go path runs or reports.
//
// When it returns, prepare_go_path makes the Go process that follows
// cheaper to start (see there).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAST_FILE "harden-runc.fast"
#define FAST_HEADER "harden-runc fast path v1"
#define FAST_MAX 8192

struct fast {
	char buf[FAST_MAX + 1];
	const char *id, *root, *runtime, *state;
	const char *pidfile; // optional
};

// opt_value matches "--NAME VALUE" and "--NAME=VALUE" at argv[*i]; on a
// match it stores the value and moves *i past it.
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
		return 0;
	if (a[2 + n] == '=') {
		*val = a + 3 + n;
		*i += 1;
		return 1;
	}
	if (a[2 + n] == '\0' && *i + 1 < argc) {
		*val = argv[*i + 1];
		*i += 2;
		return 1;
	}
	return 0;
}

// clean_abs: an absolute path as Go's filepath.Abs leaves it (no empty,
// "." or ".." element, no trailing slash), so that string equality with
// the root create recorded means the same directory.
static int clean_abs(const char *p)
{
	if (p[0] != '/')
		return 0;
	if (p[1] == '\0')
		return 1;
	for (const char *s = p; *s;) {
		const char *e = strchr(s + 1, '/');
		size_t n = e ? (size_t)(e - s - 1) : strlen(s + 1);
		if (n == 0 || (n == 1 && s[1] == '.') || (n == 2 && s[1] == '.' && s[2] == '.'))
			return 0;
		if (!e)
			break;
		s = e;
	}
	return 1;
}

// read_fast reads and checks the fast-path file next to the --log file:
// a regular file (not a link) of this user, writable by no one else,
// every line present once.
static int read_fast(const char *log, struct fast *f)
{
	char path[4096];
	const char *slash = strrchr(log, '/');
	if (!slash || slash == log || (size_t)(slash - log) + sizeof(FAST_FILE) + 1 > sizeof(path))
		return 0;
	memcpy(path, log, slash - log + 1);
	strcpy(path + (slash - log + 1), FAST_FILE);

	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 022) == 0 &&
	    st.st_size > 0 && st.st_size <= FAST_MAX)
		n = read(fd, f->buf, FAST_MAX);
	close(fd);
	if (n <= 0 || n != st.st_size || f->buf[n - 1] != '\n')
		return 0;
	f->buf[n] = '\0';
	if (memchr(f->buf, '\0', n))
		return 0;

	f->id = f->root = f->runtime = f->state = f->pidfile = NULL;
	char *line = f->buf, *next;
	int first = 1;
	for (; *line; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		if (first) {
			if (strcmp(line, FAST_HEADER) != 0)
				return 0;
			first = 0;
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq)
			return 0;
		*eq = '\0';
		const char **slot = !strcmp(line, "id")	     ? &f->id
				    : !strcmp(line, "root")    ? &f->root
				    : !strcmp(line, "runtime") ? &f->runtime
				    : !strcmp(line, "state")   ? &f->state
				    : !strcmp(line, "pidfile") ? &f->pidfile
							       : NULL;
		if (!slot || *slot)
			return 0;
		*slot = eq + 1;
	}
	return f->id && f->root && f->runtime && f->state;
}

// init_gone reports whether the engine's pid file names an init process
// that no longer exists. The file must be one the runtime wrote: a regular
// file (not a link) of this user, writable by no one else, holding a
// decimal pid. Anything else, or a pid that exists (or was reused), is "not
// known to be gone".
static int init_gone(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	char buf[32];
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 022) == 0 &&
	    st.st_size > 0 && st.st_size < (off_t)sizeof(buf))
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || n != st.st_size)
		return 0;
	if (buf[n - 1] == '\n')
		n--;
	long pid = 0;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] < '0' || buf[i] > '9' || pid > 0x3fffffff)
			return 0;
		pid = pid * 10 + (buf[i] - '0');
	}
	return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static volatile pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

// run_delete runs the runtime's delete as a child and, once it has
// deleted the container, removes harden's state record, as the Go path
// does; it exits with the runtime's code. The fast-path file stays: the
// engine's next delete (containerd's runc shim always sends a second,
// --force one) finds no record and goes straight to the runtime, and the
// file goes with the bundle, or is replaced by the next create.
static void run_delete(const char *runtime, char **argv, char **envp, const char *state)
{
	struct sigaction sa = {0};
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction old[4];
	for (size_t i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);

	pid_t pid = fork();
	if (pid < 0) {
		// The Go path tries again, with the signal dispositions the
		// process started with.
		for (size_t i = 0; i < 4; i++)
			sigaction(sigs[i], &old[i], NULL);
		return;
	}
	if (pid == 0) {
		execve(runtime, argv, envp);
		dprintf(2, "harden-runc: run %s: %s\n", runtime, strerror(errno));
		_exit(1);
	}
	child = pid;
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			_exit(1);
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
	if (code == 0 && unlink(state) < 0 && errno != ENOENT)
		dprintf(2, "harden-runc: remove the record of the container (%s): %s\n", state, strerror(errno));
	_exit(code);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void populate(uintptr_t start, uintptr_t end, int advice)
{
	if (start < end)
		madvise((void *)start, end - start, advice); // Linux 5.14; a no-op error before
}

// populate_image maps the executable's file-backed pages in a few calls
// rather than a page fault each: text and read-only data as they are, the
// writable data as the private copies the Go runtime's start would make
// one write fault at a time. Not bss, of which the Go runtime touches a few
// pages out of tens of MiB.
static int populate_image(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	const uintptr_t pm = (uintptr_t)getpagesize() - 1; // 4 KiB here, 16 or 64 KiB on some arm64 and ppc64le
	uintptr_t relro_end = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type == PT_GNU_RELRO)
			relro_end = (info->dlpi_addr + p->p_vaddr + p->p_memsz + pm) & ~pm;
	}
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type != PT_LOAD || p->p_filesz == 0)
			continue;
		uintptr_t start = (info->dlpi_addr + p->p_vaddr) & ~pm;
		uintptr_t end = (info->dlpi_addr + p->p_vaddr + p->p_filesz + pm) & ~pm;
		if (!(p->p_flags & PF_W)) {
			populate(start, end, MADV_POPULATE_READ);
			continue;
		}
		// RELRO is read-only by now: POPULATE_WRITE would fail on it.
		if (start < relro_end) {
			populate(start, relro_end < end ? relro_end : end, MADV_POPULATE_READ);
			start = relro_end;
		}
		populate(start, end, MADV_POPULATE_WRITE);
	}
	return 1; // the executable only
}

// prepare_go_path runs when the fast path did not take the command: a Go
// process follows, create or run above all, and on a small VM its start is
// mostly page faults. Populating the image, and one malloc arena for every
// thread (glibc gives each thread that calls malloc its own, and cgo's
// thread start does; the Go runtime allocates its own memory), together
// take about 1 ms of wall time and 2 ms of CPU time off a create of about
// 20 ms, each about half of it (docs/benchmarks.md, "harden-runc create").
static void prepare_go_path(void)
{
	dl_iterate_phdr(populate_image, NULL);
	mallopt(M_ARENA_MAX, 1);
}

static void fast_path(int argc, char **argv, char **envp);

__attribute__((constructor)) static void harden_runc_start(int argc, char **argv, char **envp)
{
	fast_path(argc, argv, envp);
	prepare_go_path();
}

static void fast_path(int argc, char **argv, char **envp)
{
	if (argc < 3 || getenv("HARDEN_RUNC_NO_FASTPATH"))
		return;

	// Global flags: only those the runc shim and Docker pass.
	const char *root = "", *log = NULL, *ignored;
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--debug") || !strcmp(argv[i], "--systemd-cgroup")) {
			i++;
			continue;
		}
		if (opt_value(argc, argv, &i, "root", &root) || opt_value(argc, argv, &i, "log", &log) ||
		    opt_value(argc, argv, &i, "log-format", &ignored))
			continue;
		return;
	}
	if (i >= argc || !log || log[0] != '/' || (root[0] && !clean_abs(root)))
		return;
	const char *sub = argv[i++];
	int del = !strcmp(sub, "delete"), kil = !strcmp(sub, "kill");
	if (!del && !kil && strcmp(sub, "start") && strcmp(sub, "state"))
		return;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!(del && (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))) &&
		    !(kil && (!strcmp(argv[i], "--all") || !strcmp(argv[i], "-a"))))
			return;
	}
	if (i >= argc)
		return;
	const char *id = argv[i++];
	if (kil && i < argc && argv[i][0] != '-' && argv[i][0] != '\0')
		i++; // the signal
	if (i != argc || !id[0] || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
		return;

	struct fast *f = malloc(sizeof(*f));
	if (!f)
		return;
	if (!read_fast(log, f) || strcmp(f->id, id) || strcmp(f->root, root) || f->runtime[0] != '/' ||
	    (f->state[0] && f->state[0] != '/')) {
		free(f);
		return;
	}
	// Never hand over to harden-runc itself (the Go path says why).
	struct stat self, rt;
	if (stat("/proc/self/exe", &self) < 0 || stat(f->runtime, &rt) < 0 || !S_ISREG(rt.st_mode) ||
	    (self.st_dev == rt.st_dev && self.st_ino == rt.st_ino) || access(f->runtime, X_OK) < 0) {
		free(f);
		return;
	}
	// The runtime runs under the name harden-runc was invoked as; krun
	// keeps its own (runcwrap.runtimeArgv).
	const char *base = strrchr(f->runtime, '/') + 1;
	if (!strcmp(base, "krun"))
		argv[0] = (char *)f->runtime;
	if (getenv("HARDEN_RUNC_FASTPATH_TRACE"))
		dprintf(2, "harden-runc: fast path: %s %s\n", sub, f->runtime);

	if (del && f->state[0] && access(f->state, F_OK) == 0) {
		// The engine deletes a container once its init has exited: then
		// the record describes nothing, and is forgotten before the
		// runtime runs, which spares waiting for it in a second process.
		if (f->pidfile && f->pidfile[0] == '/' && init_gone(f->pidfile)) {
			if (unlink(f->state) < 0 && errno != ENOENT)
				dprintf(2, "harden-runc: remove the record of the container (%s): %s\n", f->state,
					strerror(errno));
			// Not back to the Go path: without the record it would pick
			// the default runtime, not the container's.
			execve(f->runtime, argv, envp);
			dprintf(2, "harden-runc: run %s: %s\n", f->runtime, strerror(errno));
			_exit(1);
		}
		run_delete(f->runtime, argv, envp, f->state);
	}
	execve(f->runtime, argv, envp);
	free(f); // the Go path reports the failure
}
