#!/bin/sh
# run-https.sh [BUILDDIR] [bench_https options...]
#
# Builds keybridged, keybridge and bench_https in BUILDDIR (default
# build-release, set up with --buildtype=release if missing) and runs the
# HTTPS benchmark (bench/bench_https.c, with bench/https-sdk.mjs for the
# Azure SDK part; `npm ci --prefix tests/sdk` installs the SDK).  Examples:
#   bench/run-https.sh                                   # the issue's workload
#   bench/run-https.sh /tmp/b-rel --keys 20 --signs 100  # a quick look
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-release}
[ $# -gt 0 ] && shift
case $build in
-*) echo "usage: run-https.sh [BUILDDIR] [bench_https options...]" >&2; exit 2 ;;
esac
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release >&2
fi
ninja -C "$build" -j2 agent/keybridged cli/keybridge bench/bench_https >&2
exec "$build/bench/bench_https" --cli "$build/cli/keybridge" \
    --agent "$build/agent/keybridged" --sdk "$src/bench/https-sdk.mjs" "$@"
