#!/bin/bash
# keybridge's command line: help on every command, usage errors, where
# the socket comes from, and the agent-unreachable sentence (exit 4).
. "$(dirname "$0")/lib.sh"

"$KB" --help >"$W/h" 2>&1
check "--help: exit 0" test $? -eq 0
for c in status "token list" "dev up" "dev down" help; do
	check "--help lists '$c'" grep -q "^  $c " "$W/h"
	$KB $c --help >"$W/ch" 2>&1
	check "'$c --help': exit 0 and usage" bash -c "test $? -eq 0 && grep -q '^Usage: keybridge $c' '$W/ch'"
	$KB help $c >"$W/hc" 2>&1
	check "'help $c' matches '$c --help'" cmp -s "$W/ch" "$W/hc"
done
"$KB" --version >"$W/v" 2>&1
check "--version" grep -q '^keybridge [0-9]' "$W/v"
"$KB" >/dev/null 2>&1
check "no command: exit 2" test $? -eq 2
"$KB" frobnicate >/dev/null 2>"$W/e"
check "unknown command: exit 2" test $? -eq 2
check "unknown command: names it" grep -q frobnicate "$W/e"
"$KB" token >/dev/null 2>"$W/e"
check "'token' alone: exit 2 and lists its commands" bash -c "test $? -eq 2 && grep -q 'token list' '$W/e'"
"$KB" status --bogus >/dev/null 2>&1
check "unknown option: exit 2" test $? -eq 2
"$KB" status extra >/dev/null 2>&1
check "extra argument: exit 2" test $? -eq 2
"$KB" dev up >/dev/null 2>"$W/e"
check "dev up without --dir: exit 2" bash -c "test $? -eq 2 && grep -q -- --dir '$W/e'"

# --- where the socket comes from, seen in the unreachable sentence
"$KB" --socket "$W/a.sock" status >/dev/null 2>"$W/e"
rc=$?
check "agent not running: exit 4" test $rc -eq 4
check "agent not running: one sentence" test "$(wc -l <"$W/e")" -eq 1
check "agent not running: names the socket and what to do" \
    grep -q "^keybridge: cannot reach the agent at $W/a.sock: No such file or directory; start it with \`keybridge dev up" "$W/e"

printf '[agent]\nsocket = %s/c.sock\n' "$W" >"$W/c.conf"
"$KB" --config "$W/c.conf" status >/dev/null 2>"$W/e"
check "--config: its socket is used" grep -q "at $W/c.sock:" "$W/e"
KEYBRIDGE_CONFIG=$W/c.conf "$KB" status >/dev/null 2>"$W/e"
check "KEYBRIDGE_CONFIG: its socket is used" grep -q "at $W/c.sock:" "$W/e"
KEYBRIDGE_SOCKET=$W/e.sock "$KB" --config "$W/c.conf" status >/dev/null 2>"$W/e"
check "KEYBRIDGE_SOCKET wins over the config" grep -q "at $W/e.sock:" "$W/e"
KEYBRIDGE_SOCKET=$W/e.sock "$KB" --socket "$W/o.sock" status >/dev/null 2>"$W/e"
check "--socket wins over KEYBRIDGE_SOCKET" grep -q "at $W/o.sock:" "$W/e"
mkdir -p "$HOME/.config/keybridge"
printf '[agent]\nsocket = %s/home.sock\n' "$W" >"$HOME/.config/keybridge/keybridge.conf"
"$KB" status >/dev/null 2>"$W/e"
check "~/.config/keybridge/keybridge.conf is the default config" grep -q "at $W/home.sock:" "$W/e"
"$KB" --config "$W/missing.conf" status >/dev/null 2>"$W/e"
check "--config missing: exit 3" test $? -eq 3
printf '[agent\n' >"$W/bad.conf"
"$KB" --config "$W/bad.conf" status >/dev/null 2>"$W/e"
rc=$?
check "--config with a syntax error: exit 3 naming file:line" \
    bash -c "test $rc -eq 3 && grep -q '$W/bad.conf:1:' '$W/e'"
touch "$W/plain"
"$KB" --socket "$W/plain" status >/dev/null 2>"$W/e"
check "socket path that is not a socket: exit 4" test $? -eq 4

done_testing
