#!/bin/bash
# Backup and restore on the Unix socket (issue 4, docs/backup.md): every
# version back with its id, attributes, tags and material, into the same
# or another vault whose token shares the backup keys; only onto a free
# name; damaged blobs, foreign tokens and keys that may not leave refused
# with nothing changed.
. "$(dirname "$0")/lib.sh"
need curl

mktoken "$W" kb1
mktoken "$W" kb2 2
mktoken "$W" kb3 3
mktoken "$W" kb4 4
S=$W/agent.sock
cat >"$W/agent.conf" <<CONF
[agent]
socket = $S
state_dir = $W/state
log_level = debug

[token t1]
module = $SOFTHSM_MODULE
label = kb1
pin_file = $W/user.pin

[token t2]
module = $SOFTHSM_MODULE
label = kb2
pin_file = $W/user2.pin

[token t3]
module = $SOFTHSM_MODULE
label = kb3
pin_file = $W/user3.pin

[token t4]
module = $SOFTHSM_MODULE
label = kb4
pin_file = $W/user4.pin

[vault main]
token = t1
default = true
retention_days = 7

[vault other]
token = t2
retention_days = 7

[vault lone]
token = t3
retention_days = 7

[vault sealed]
token = t4
retention_days = 7
backup = false
CONF

backupkeys "$W/agent.conf" --token t1 --token t2 --token t4 2>"$W/bk.err"
ok $? "backup-keys: one pair on t1, t2 and t4"
backupkeys "$W/agent.conf" --token t3 2>"$W/bk.err"
ok $? "backup-keys: another pair on t3"
backupkeys "$W/agent.conf" --token t1 2>"$W/bk.err"
check "backup-keys again on t1: conflict, exit 11" test $? -eq 11
check "and says why" grep -q "has backup keys already" "$W/bk.err"
"$KBD" backup-keys --config "$W/agent.conf" 2>"$W/bk.err"
check "backup-keys without --so-pin-file: exit 2" test $? -eq 2

must_start "the agent starts with four vaults" "$W/agent.conf" "$W/agent.err" \
    wait_socket "$S"

AV=api-version=7.5
kv() {	# kv METHOD PATH [JSON]: body in $W/body, status in $CODE
	local m=$1 p=$2
	case $p in *\?*) p="$p&$AV" ;; *) p="$p?$AV" ;; esac
	if [ $# -gt 2 ]; then
		CODE=$(curl -s -o "$W/body" -w '%{http_code}' -X "$m" --unix-socket "$S" \
		    -H 'Content-Type: application/json' --data-binary "$3" "http://localhost$p")
	else
		CODE=$(curl -s -o "$W/body" -w '%{http_code}' -X "$m" --unix-socket "$S" \
		    "http://localhost$p")
	fi
}
jb() { json "$W/body" "$1"; }
is() {
	if [ "$2" = "$3" ]; then ok 0 "$1"; else
		ok 1 "$1"; diag "expected: $2"; diag "got: $3"
		diag "answer ($CODE): $(head -c 400 "$W/body")"
	fi
}

# Two versions with their own tags and attributes, one disabled.
kv POST /keys/k1/create '{"kty":"RSA","key_size":2048,"tags":{"v":"1"}}'
is "create k1 version 1" 200 "$CODE"
V1=$(jb 'j["key"]["kid"].rsplit("/",1)[1]')
N1=$(jb 'j["key"]["n"]')
kv PATCH "/keys/k1/$V1" '{"attributes":{"enabled":false,"exp":4102444800}}'
is "version 1: disabled, expires in 2100" 200 "$CODE"
kv POST /keys/k1/create '{"kty":"RSA","key_size":2048,"tags":{"v":"2"},"key_ops":["sign","verify"]}'
V2=$(jb 'j["key"]["kid"].rsplit("/",1)[1]')
kv GET "/keys/k1/$V1"
C1=$(jb 'j["attributes"]["created"]')
kv POST /keys/e1/create '{"kty":"EC","crv":"P-256"}'
kv POST /keys/a1/create '{"kty":"oct-HSM","key_size":256}'
is "keys e1 and a1" 200 "$CODE"

kv POST /keys/k1/backup
is "backup k1: 200" 200 "$CODE"
BLOB=$(jb 'j["value"]')
check "the blob is base64url" bash -c "[[ '$BLOB' =~ ^[A-Za-z0-9_-]{200,}$ ]]"
check "and says nothing in the clear" bash -c "! printf '%s' '$BLOB' | base64 -d 2>/dev/null | grep -aq 'k1\|RSA'"
kv POST /keys/e1/backup
EBLOB=$(jb 'j["value"]')
kv POST /keys/a1/backup
ABLOB=$(jb 'j["value"]')
is "backup a1 (oct): 200" 200 "$CODE"

# Restore into another vault of the agent.
kv POST /vaults/other/keys/restore "{\"value\":\"$BLOB\"}"
is "restore k1 into vault other: 200" 200 "$CODE"
is "the answer is the latest version" "$V2" "$(jb 'j["key"]["kid"].rsplit("/",1)[1]')"
is "with the latest tags" 2 "$(jb 'j["tags"]["v"]')"
kv GET "/vaults/other/keys/k1/versions"
is "both versions, with their ids" "$(printf '%s\n' "$V1" "$V2" | sort | tr '\n' ' ')" \
    "$(jb '" ".join(sorted(i["kid"].rsplit("/",1)[1] for i in j["value"]))+" "')"
kv GET "/vaults/other/keys/k1/$V1"
is "version 1: its tags" 1 "$(jb 'j["tags"]["v"]')"
is "version 1: still disabled" False "$(jb 'j["attributes"]["enabled"]')"
is "version 1: its expiry" 4102444800 "$(jb 'j["attributes"]["exp"]')"
is "version 1: its creation time" "$C1" "$(jb 'j["attributes"]["created"]')"
is "version 1: the same public key" "$N1" "$(jb 'j["key"]["n"]')"
kv GET "/vaults/other/keys/k1/$V2"
is "version 2: its key_ops" "['sign', 'verify']" "$(jb 'sorted(j["key"]["key_ops"])')"
D=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
kv POST "/vaults/other/keys/k1/$V2/sign" "{\"alg\":\"RS256\",\"value\":\"$D\"}"
is "the restored version 2 signs" 200 "$CODE"
SIG=$(jb 'j["value"]')
kv POST "/keys/k1/$V2/verify" "{\"alg\":\"RS256\",\"digest\":\"$D\",\"value\":\"$SIG\"}"
is "and the original verifies it" True "$(jb 'j["value"]')"
kv POST /vaults/other/keys/restore "{\"value\":\"$EBLOB\"}"
is "restore e1 into other" 200 "$CODE"
kv POST /vaults/other/keys/restore "{\"value\":\"$ABLOB\"}"
is "restore a1 into other" 200 "$CODE"
kv POST /vaults/other/keys/a1/encrypt "{\"alg\":\"A256GCM\",\"value\":\"$D\"}"
is "the restored oct key encrypts" 200 "$CODE"

# Only onto a free name.
kv POST /vaults/other/keys/restore "{\"value\":\"$BLOB\"}"
is "restore onto a taken name: 409" 409 "$CODE"
is "Conflict" Conflict "$(jb 'j["error"]["code"]')"
kv POST /keys/restore "{\"value\":\"$BLOB\"}"
is "restore into the same vault while k1 lives: 409" 409 "$CODE"
kv DELETE /keys/k1
kv POST /keys/restore "{\"value\":\"$BLOB\"}"
is "while k1 is deleted but recoverable: 409" 409 "$CODE"
kv DELETE /deletedkeys/k1
is "purge k1" 204 "$CODE"
kv POST /keys/restore "{\"value\":\"$BLOB\"}"
is "restore into the same vault after the purge: 200" 200 "$CODE"
kv GET "/keys/k1/$V1"
is "version 1 is back in main" 200 "$CODE"

# Bad input changes nothing.
BEFORE=$(objects "$W")
BAD=$(python3 -c 'import sys; b=sys.argv[1]; i=len(b)//2; print(b[:i]+("A" if b[i]!="A" else "B")+b[i+1:])' "$BLOB")
kv POST /vaults/lone/keys/restore "{\"value\":\"$BLOB\"}"
is "restore into a vault whose token has other backup keys: 400" 400 "$CODE"
check "it says why" grep -q "does not open" "$W/body"
kv DELETE /vaults/other/keys/k1
kv DELETE /vaults/other/deletedkeys/k1
kv POST /vaults/other/keys/restore "{\"value\":\"$BAD\"}"
is "a damaged blob: 400" 400 "$CODE"
kv POST /vaults/other/keys/restore '{"value":"not a backup!"}'
is "not base64url: 400" 400 "$CODE"
kv POST /vaults/other/keys/restore '{"value":"QUJD"}'
is "too short: 400" 400 "$CODE"
kv POST /vaults/other/keys/restore "{\"value\":\"$BLOB\",\"extra\":1}"
is "an unknown member: 400" 400 "$CODE"
kv POST /vaults/other/keys/restore '{"value":5}'
is "a number for value: 400" 400 "$CODE"
kv POST /vaults/other/keys/restore '{}'
is "no value: 400" 400 "$CODE"
is "no token object made by any of these" "$((BEFORE - 4))" "$(objects "$W")"
kv GET /vaults/other/keys/k1
is "and k1 is not in vault other" 404 "$CODE"

# What may not leave.
kv POST /vaults/sealed/keys/s1/create '{"kty":"EC","crv":"P-256"}'
kv POST /vaults/sealed/keys/s1/backup
is "a key of a vault with backup = false: 409" 409 "$CODE"
check "it says why" grep -q "cannot leave the token" "$W/body"
kv POST /vaults/lone/keys/l1/create '{"kty":"EC","crv":"P-256"}'
kv POST /keys/nosuch/backup
is "backup of an unknown key: 404" 404 "$CODE"
kv DELETE /keys/e1
kv POST /keys/e1/backup
is "backup of a deleted key: 404" 404 "$CODE"
kv GET /keys/k1/backup
is "GET on backup: 405" 405 "$CODE"

# The audit trail.
CODE=$(curl -s -o "$W/body" -w '%{http_code}' --unix-socket "$S" \
    "http://localhost/keybridge/audit?limit=200")
check "restores are audited" grep -q '"restore"' "$W/body"
done_testing
