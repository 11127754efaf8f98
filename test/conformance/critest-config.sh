#!/usr/bin/env bash
# critest-config.sh NRI_DIR CONFIG turns NRI on, privately, in the config.toml that
# test/env/containerd.sh generated (critest.sh runs it as containerd.sh's HARDEN_CONFIG_EDIT).
#
# containerd.sh disables NRI because its default socket is the host-wide /var/run/nri/nri.sock;
# critest's 14 NRI specs connect to containerd as an NRI plugin and are skipped without a socket
# (--nri-socket). Here NRI listens on NRI_DIR/nri.sock, and plugins and their configuration are
# looked up in NRI_DIR too (default /opt/nri/plugins and /etc/nri/conf.d), so nothing outside
# NRI_DIR is read or written. Keys: containerd v2.4.2 internal/nri/config.go.
set -euo pipefail

(($# == 2)) || {
	echo "usage: $0 NRI_DIR CONFIG" >&2
	exit 2
}
nri=$1 config=$2
mkdir -p "$nri/plugins" "$nri/conf.d"
awk -v nri="$nri" '
	/^[ \t]*\[plugins\."io\.containerd\.nri\.v1\.nri"\][ \t]*$/ { print; inside = 1; next }
	inside && /^[ \t]*disable[ \t]*=[ \t]*true[ \t]*$/ {
		print "    # test/conformance/critest-config.sh: NRI on, on a private socket, for critest."
		print "    disable = false"
		print "    socket_path = \"" nri "/nri.sock\""
		print "    plugin_path = \"" nri "/plugins\""
		print "    plugin_config_path = \"" nri "/conf.d\""
		done = 1; inside = 0; next
	}
	/^[ \t]*\[/ { inside = 0 }
	{ print }
	END { if (!done) { print "critest-config.sh: no NRI \"disable = true\" line in the config" > "/dev/stderr"; exit 1 } }
' "$config" >"$config.tmp"
mv -f "$config.tmp" "$config"
