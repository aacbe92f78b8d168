#!/bin/sh
# run-vault.sh [BUILDDIR] [bench_vault options...]
#
# Builds keybridged, keybridge, keybridge-p11host and bench_vault in BUILDDIR (default
# build-release, set up with --buildtype=release if missing) and runs the
# vault benchmark (bench/bench_vault.c) against them.  Examples:
#   bench/run-vault.sh                             # the issue's figures, 10,000 keys
#   bench/run-vault.sh /tmp/b-rel --keys 50 --seconds 1   # a quick look
#   bench/run-vault.sh /tmp/b-rel --isolate        # the module in keybridge-p11host
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-release}
[ $# -gt 0 ] && shift
case $build in
-*) echo "usage: run-vault.sh [BUILDDIR] [bench_vault options...]" >&2; exit 2 ;;
esac
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release >&2
fi
ninja -C "$build" -j2 agent/keybridged cli/keybridge pkcs11/keybridge-p11host \
    bench/bench_vault >&2
exec "$build/bench/bench_vault" --agent "$build/agent/keybridged" \
    --cli "$build/cli/keybridge" "$@"
