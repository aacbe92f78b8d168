#!/bin/sh
# run-kvclient.sh [BUILDDIR] [bench_kvclient options...]
#
# Builds keybridged, keybridge and bench_kvclient in BUILDDIR (default
# build-release, set up with --buildtype=release if missing) and runs the
# client benchmark (bench/bench_kvclient.c: kv-client against the Azure SDK
# for JavaScript, bench/kvclient-sdk.mjs; `npm ci --prefix tests/sdk`
# installs the SDK as tests/sdk/package-lock.json pins it).  Examples:
#   bench/run-kvclient.sh                                # the issue's 10,000 keys
#   bench/run-kvclient.sh /tmp/b-rel --keys 500          # a quick look
#   bench/run-kvclient.sh /tmp/b-rel --concurrency 8 --strict
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-release}
[ $# -gt 0 ] && shift
case $build in
-*) echo "usage: run-kvclient.sh [BUILDDIR] [bench_kvclient options...]" >&2; exit 2 ;;
esac
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release >&2
fi
ninja -C "$build" -j2 agent/keybridged cli/keybridge bench/bench_kvclient >&2
exec "$build/bench/bench_kvclient" --cli "$build/cli/keybridge" \
    --agent "$build/agent/keybridged" --sdk "$src/bench/kvclient-sdk.mjs" "$@"
