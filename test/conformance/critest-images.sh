#!/usr/bin/env bash
# critest-images.sh builds, without any registry, the images critest v1.37.0 pulls, under the
# names it pulls them by, into ${CRITEST_IMAGES:-$HARDEN_CACHE/images/critest}:
#
#   <name>.tar   one image archive each (test/images/mkimage: OCI layout + docker-save manifest)
#   images.tsv   one line per archive: FILE<TAB>REF [REF...]; every REF names the same image
#
# The names and what the tests expect of each image come from critest's source
# (pkg/validate/consts.go, consts_linux.go, security_context_linux.go, multi_container_linux.go,
# pkg/framework/util.go) and from the Dockerfiles critest's images are built from (images/ in the
# cri-tools module):
#
#   registry.k8s.io/e2e-test-images/busybox:1.29-2   the default container image
#   registry.k8s.io/e2e-test-images/nginx:1.14-2     a web server on :80 whose pid 1 is titled
#                                                    "nginx: master process ...", with
#                                                    /var/run/nginx.pid (the PID namespace tests)
#   registry.k8s.io/e2e-test-images/httpd:2.4.39-4   a web server that logs "httpd"
#   registry.k8s.io/e2e-test-images/nonewprivs:1.3   a set-uid root program printing its
#                                                    effective uid (Kubernetes test/images/nonewprivs)
#   gcr.io/k8s-staging-cri-tools/hostnet-nginx-ARCH  the nginx stand-in on :12003
#   gcr.io/k8s-staging-cri-tools/test-image-*        busybox plus a marker file, or USER set
#                                                    (uid 1002, www-data, 1003:1004, www-data:1004),
#                                                    or user 1000 in group 50000 (predefined-group)
#   registry.k8s.io/pause:3.9, k8s.gcr.io/pause:3.9  one image under two registries
#
# Not built: gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2..., pulled by the
# upstream manifest's digest, which no local build can reproduce.
#
# Every image is busybox-based, with the /etc/passwd and /etc/group of the docker-library busybox
# image the upstream ones start from, and applets as hard links like it. The busybox is Debian's
# `busybox` package (the dynamically linked build, with the three glibc files it links), fetched
# with `apt-get download` and cached, NOT busybox-static as in test/images/build.sh: Debian
# builds busybox-static with FEATURE_SH_STANDALONE, so its sh runs applets in-process without
# exec'ing /bin/ls & co., and critest's MaskedPaths spec (mask /bin/ls, expect `sh -c ls` to fail
# with "Permission denied") cannot pass with it under any runtime.
# Stand-ins keep the tests meaningful with that busybox (they are the same for every runtime
# handler compared, so they cannot make one handler look better than another):
#   - nginx, httpd and nnp: one static Go program (written below, standard library only), not
#     nginx, Apache or the C nnp; critest only checks the process title, the pid file, a 200 on
#     GET /, the word "httpd" in the log, and "Effective uid: N" from a set-uid root binary;
#   - pgrep: Debian's busybox has no pgrep applet, and critest's "execSync with timeout"
#     runs `pgrep sleep || true`; a 4-line shell script lists the pids whose comm matches;
#   - ipcs: no ipcs applet either, and the HostIpc tests run `ipcs -m`; util-linux's ipcs is
#     copied from the host with the two glibc files it links.
# The user images differ from busybox only in their config, as upstream; predefined-group adds
# its user and group to /etc/passwd and /etc/group.
#
# Deterministic (fixed times; see mkimage) and cached: rebuilt only when an input changes.
set -euo pipefail

HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=etc.sh
. "$here/etc.sh"
repo=$(cd "$here/../.." && pwd)
out=${CRITEST_IMAGES:-$HARDEN_CACHE/images/critest}
SRC=$HARDEN_CACHE/images/critest-src # the downloaded busybox .deb
IPCS_BIN=/usr/bin/ipcs                # util-linux
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}

E2E=registry.k8s.io/e2e-test-images
CRI=gcr.io/k8s-staging-cri-tools
ARCH=$(go env GOARCH)

log() { printf 'critest-images: %s\n' "$*" >&2; }
die() {
	printf 'critest-images: ERROR: %s\n' "$*" >&2
	exit 1
}

[[ -x $IPCS_BIN ]] || die "$IPCS_BIN not found (util-linux)"
command -v go >/dev/null || die "go not found"

# Debian's busybox .deb, downloaded once (apt-get download; apt-get update first if apt does not
# know the package yet).
mkdir -p "$SRC"
deb=$(find "$SRC" -maxdepth 1 -name 'busybox_*.deb' | sort | tail -1)
if [[ -z $deb ]]; then
	log "apt-get download busybox (into $SRC)"
	(cd "$SRC" && { apt-get download busybox || { apt-get update && apt-get download busybox; }; }) >"$SRC/download.log" 2>&1 ||
		{ tail -5 "$SRC/download.log" >&2; die "apt-get download busybox failed"; }
	deb=$(find "$SRC" -maxdepth 1 -name 'busybox_*.deb' | sort | tail -1)
	[[ -n $deb ]] || die "apt-get download busybox left no .deb in $SRC"
fi

# libs BINARY prints BINARY and the shared objects it loads, as ldd resolves them on this host.
libs() {
	echo "$1"
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
}

inputs() {
	local -a files
	mapfile -t files < <(libs "$IPCS_BIN")
	{
		sha256sum "$here/critest-images.sh" "$repo/test/images/mkimage/main.go" "$repo/test/images/pause/main.go" \
			"$deb" "${files[@]}" | awk '{print $1}'
		go version
		echo "$SOURCE_DATE_EPOCH $ARCH"
	} | sha256sum | awk '{print $1}'
}

want=$(inputs)
if [[ -f $out/.inputs && $(cat "$out/.inputs") == "$want" && -f $out/images.tsv ]]; then
	log "up to date in $out"
	exit 0
fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.critest-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out"

log "building tools"
dpkg-deb -x "$deb" "$work/bbdeb"
BUSYBOX_BIN=$work/bbdeb/bin/busybox
[[ -x $BUSYBOX_BIN ]] || die "no bin/busybox in $deb"
mkdir -p "$work/web"
# The stand-in program. One binary; what it does depends on the name it runs under.
cat >"$work/web/main.go" <<'EOF'
// Command webserver stands in for the nginx and httpd images critest runs. By the name it runs
// under:
//
//	nginx             re-executes itself (same pid) with argv[0] "nginx: master process nginx
//	                  -g daemon off;", the title critest looks for in /proc/1/cmdline, writes
//	                  /var/run/nginx.pid, and serves
//	httpd-foreground  prints "httpd: ..." (critest looks for "httpd" in the log) and serves
//	nnp               prints "Effective uid: N" (geteuid) and exits, like Kubernetes'
//	                  test/images/nonewprivs/nnp.c; installed set-uid root
//
// The server answers 200 to every GET on $WEBSERVER_PORT (default 80) and exits on SIGTERM,
// SIGINT or SIGQUIT, also as pid 1.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

const masterTitle = "nginx: master process nginx -g daemon off;"

func main() {
	switch filepath.Base(os.Args[0]) {
	case "nnp":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
		return
	case "nginx":
		self, err := os.Executable()
		if err == nil {
			// exec, not fork: the pid (1 in its own PID namespace) stays the same, and the
			// kernel's comm stays "nginx" (the file's name), which `pidof nginx` matches.
			err = syscall.Exec(self, []string{masterTitle}, os.Environ())
		}
		fmt.Fprintf(os.Stderr, "nginx: re-exec: %v\n", err)
		os.Exit(1)
	}
	if os.Args[0] == masterTitle {
		if err := os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "nginx: write pid file: %v\n", err)
			os.Exit(1)
		}
	} else {
		fmt.Println("httpd: stand-in web server (test/conformance/critest-images.sh)")
	}
	port := os.Getenv("WEBSERVER_PORT")
	if port == "" {
		port = "80"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen :%s: %v\n", port, err)
		os.Exit(1)
	}
	fmt.Printf("listening on :%s\n", port)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		<-sigs
		os.Exit(0)
	}()
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "<html><body>critest web server stand-in</body></html>")
	}))
	fmt.Fprintf(os.Stderr, "serve: %v\n", err)
	os.Exit(1)
}
EOF
printf 'module webserver\n\ngo 1.21\n' >"$work/web/go.mod"
(
	export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local
	cd "$work/web" && go build -ldflags "-s -w -buildid=" -o "$work/webserver" .
	cd "$repo"
	go build -o "$work/mkimage" ./test/images/mkimage
	go build -ldflags "-s -w -buildid=" -o "$work/pause" ./test/images/pause
)

# base ROOTFS: Debian's busybox and its libraries, the docker-library busybox users and groups,
# pgrep and ipcs.
base() {
	local r=$1 applet f
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,home,proc,sys,dev,run,var/run,var/tmp,var/www,var/spool/mail,tmp}
	chmod 1777 "$r/tmp" "$r/var/tmp"
	chmod 0700 "$r/root"
	install -m 0755 "$BUSYBOX_BIN" "$r/bin/busybox"
	# Applets are hard links, as in the docker-library image. Not symlinks: critest's MaskedPaths
	# spec masks /bin/ls, and runc mounts /dev/null over what the path resolves to, which for a
	# symlink is busybox itself (then nothing runs); a hard link is a path of its own.
	for applet in $("$BUSYBOX_BIN" --list-full); do
		[[ $applet == bin/busybox || -e $r/$applet ]] && continue
		ln "$r/bin/busybox" "$r/$applet"
	done
	cat >"$r/usr/bin/pgrep" <<-'EOF'
		#!/bin/sh
		# pgrep PATTERN: the pids whose command name (comm) matches PATTERN (an extended regular
		# expression), like procps pgrep without options. Debian's busybox has no pgrep applet.
		for d in /proc/[0-9]*; do
			read -r comm <"$d/comm" 2>/dev/null || continue
			printf '%s\n' "$comm" | grep -qE -- "$1" && echo "${d#/proc/}"
		done
		exit 0
	EOF
	chmod 0755 "$r/usr/bin/pgrep"
	# The shared objects busybox links, ipcs and its own, at the same paths as on the host.
	while IFS= read -r f; do
		[[ -e $r$f ]] && continue
		mkdir -p "$r$(dirname "$f")"
		cp -L "$f" "$r$f"
	done < <(libs "$BUSYBOX_BIN" | tail -n +2; libs "$IPCS_BIN")
	write_image_etc "$r"
	printf '127.0.0.1\tlocalhost\n' >"$r/etc/hosts"
	: >"$r/etc/resolv.conf"
	: >"$r/etc/hostname"
}

index=$work/out/images.tsv
: >"$index"

# pack FILE ROOTFS REFS MKIMAGE-FLAGS...: one archive, named by the first of the
# space-separated REFS, listed with all of them (the others are tags of the same image).
pack() {
	local file=$1 rootfs=$2 refs=$3
	shift 3
	local first=${refs%% *}
	"$work/mkimage" -rootfs "$rootfs" -name "$first" -o "$work/out/$file" "$@"
	printf '%s\t%s\n' "$file" "$refs" >>"$index"
}

log "building rootfs variants"
base "$work/busybox"
pack busybox.tar "$work/busybox" "$E2E/busybox:1.29-2" -cmd '["sh"]'

# web servers
cp -a "$work/busybox" "$work/web-rootfs"
install -m 0755 "$work/webserver" "$work/web-rootfs/usr/sbin/nginx"
install -m 0755 "$work/webserver" "$work/web-rootfs/usr/local/bin/httpd-foreground"
pack nginx.tar "$work/web-rootfs" "$E2E/nginx:1.14-2" -cmd '["nginx", "-g", "daemon off;"]'
pack httpd.tar "$work/web-rootfs" "$E2E/httpd:2.4.39-4" -cmd '["httpd-foreground"]'
# Kubernetes test/images/nonewprivs: `COPY nnp /usr/local/bin/nnp; RUN chmod +s ...; USER 1000`.
cp -a "$work/busybox" "$work/nnp-rootfs"
install -m 4755 -o 0 -g 0 "$work/webserver" "$work/nnp-rootfs/usr/local/bin/nnp"
pack nonewprivs.tar "$work/nnp-rootfs" "$E2E/nonewprivs:1.3" -cmd '["/usr/local/bin/nnp"]' -user 1000
pack hostnet-nginx.tar "$work/web-rootfs" "$CRI/hostnet-nginx-$ARCH:latest" -cmd '["nginx", "-g", "daemon off;"]' \
	-env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -env WEBSERVER_PORT=12003

# images/image-user: busybox with USER set (cri-tools images/build IMAGE_USERS)
pack test-image-user-uid.tar "$work/busybox" "$CRI/test-image-user-uid:latest" -cmd '["sh"]' -user 1002
pack test-image-user-username.tar "$work/busybox" "$CRI/test-image-user-username:latest" -cmd '["sh"]' -user www-data
pack test-image-user-uid-group.tar "$work/busybox" "$CRI/test-image-user-uid-group:latest" -cmd '["sh"]' -user 1003:1004
pack test-image-user-username-group.tar "$work/busybox" "$CRI/test-image-user-username-group:latest" -cmd '["sh"]' -user www-data:1004

# images/image-predefined-group: `adduser -u 1000 -D default-user && addgroup -g 50000
# group-defined-in-image && addgroup default-user group-defined-in-image`, USER 1000.
cp -a "$work/busybox" "$work/predefined"
echo 'default-user:x:1000:1000::/home/default-user:/bin/sh' >>"$work/predefined/etc/passwd"
printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >>"$work/predefined/etc/group"
mkdir -p "$work/predefined/home/default-user"
chown 1000:1000 "$work/predefined/home/default-user"
pack test-image-predefined-group.tar "$work/predefined" "$CRI/test-image-predefined-group:latest" -cmd '["sh"]' -user 1000

# images/image-test: busybox plus an empty file named after the image (or tag), so each is a
# different image; test-image-tags:1/2/3 are one image (file same-image) under three tags.
marker() {
	local name=$1 file=$2
	cp -a "$work/busybox" "$work/m-$name"
	: >"$work/m-$name/$file"
}
for n in test-image-1 test-image-2 test-image-3; do
	marker "$n" "$n"
	pack "$n.tar" "$work/m-$n" "$CRI/$n:latest" -cmd '["sh"]'
done
marker test-image-latest test-image-latest
pack test-image-latest.tar "$work/m-test-image-latest" "$CRI/test-image-latest:latest" -cmd '["sh"]'
marker tags same-image
pack test-image-tags.tar "$work/m-tags" "$CRI/test-image-tags:1 $CRI/test-image-tags:2 $CRI/test-image-tags:3" -cmd '["sh"]'
for t in test all; do
	marker "tag-$t" "$t"
	pack "test-image-tag-$t.tar" "$work/m-tag-$t" "$CRI/test-image-tag:$t" -cmd '["sh"]'
done

# pause:3.9 under two registries: the pause program, labelled so that it is NOT the same image
# as the sandbox image (registry.k8s.io/pause:3.10.2): critest removes it by image id, which
# would remove every name of that image, the pinned sandbox image included.
mkdir -p "$work/pause-rootfs"
install -m 0755 "$work/pause" "$work/pause-rootfs/pause"
pack pause-3.9.tar "$work/pause-rootfs" "registry.k8s.io/pause:3.9 k8s.gcr.io/pause:3.9" \
	-entrypoint '["/pause"]' -user 65535:65535 -label dev.harden.critest=pause-3.9

rm -rf "$out.old"
[[ -d $out ]] && mv "$out" "$out.old"
mv "$work/out" "$out"
rm -rf "$out.old"
echo "$want" >"$out/.inputs"
log "built $(wc -l <"$out/images.tsv") images in $out"
