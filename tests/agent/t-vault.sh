#!/bin/bash
# The Key Vault keys API on the agent's socket, in raw HTTP (curl), against
# a real keybridged with two vaults on two SoftHSM2 tokens: every operation
# and its Key Vault semantics, signatures and ciphertexts cross-checked with
# the OpenSSL CLI from the returned JWK, the token's objects cross-checked
# with pkcs11-tool, bad input (right status, KeyVaultError body, nothing
# changed), a client disconnecting mid-request, paging, the audit log, the
# purge of what is due at start, and the role matrix with a second uid.
. "$(dirname "$0")/lib.sh"
need curl
need openssl

VC="python3 $(dirname "$0")/vaultcheck.py"
# One vaultcheck.py process answers every JSON and byte question through
# two FIFOs: a python3 start-up per check would cost minutes.
mkfifo "$W/pyq" "$W/pya"
$VC serve <"$W/pyq" >"$W/pya" &
PIDS+=("$!")
exec 7>"$W/pyq" 8<"$W/pya"
# At exit, EOF on its input ends it before cleanup() would kill it.
trap 'exec 7>&- 8<&-; wait "${PIDS[0]}" 2>/dev/null; cleanup' EXIT
pyq() {	# pyq CMD ARGS...: one answer line on stdout
	local IFS=$'\t' line
	printf '%s\n' "$*" >&7
	IFS= read -r line <&8
	printf '%s\n' "$line"
}
json() { pyq json "$1" "$2"; }	# lib.sh's json, without a python3 per call
P11=$(command -v pkcs11-tool || true)
ROLE_UID=4242
OTHER_UID=4243

mktoken "$W" kb1
mktoken "$W" kb2 2
# A socket another uid can reach: the roles decide, not the file mode.
PD=$(mktemp -d /tmp/kbvault.XXXXXX)
chmod 711 "$PD"
trap 'exec 7>&- 8<&-; wait "${PIDS[0]}" 2>/dev/null; cleanup; rm -rf "$PD"' EXIT
S=$PD/agent.sock

# writeconf [LINES-FOR-VAULT-MAIN]
writeconf() {
	mkvaultconf "$W/agent.conf" "$S" "${1:-}"
}

agent_up() {	# agent_up NAME: start with $W/agent.conf, ok or give up
	start_agent "$W/agent.conf" "$W/agent.err" 7>&- 8<&-	# the FIFOs are ours
	if ! wait_socket "$S"; then
		diag "$(tail -n 20 "$W/agent.err")"
		ok 1 "$1"
		done_testing
	fi
	ok 0 "$1"
}

agent_down() {
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
}

AV=api-version=7.5
# req METHOD PATH [CURL-ARGS...]: the body into $W/body, the status into $CODE
req() {
	local m=$1 p=$2
	shift 2
	CODE=$(curl -s -o "$W/body" -w '%{http_code}' -X "$m" --unix-socket "$S" \
	    "$@" "http://localhost$p")
}
# kv METHOD PATH [JSON]: a Key Vault request; api-version is added.
kv() {
	local m=$1 p=$2
	case $p in *\?*) p="$p&$AV" ;; *) p="$p?$AV" ;; esac
	if [ $# -gt 2 ]; then
		req "$m" "$p" -H 'Content-Type: application/json' --data-binary "$3"
	else
		req "$m" "$p"
	fi
}
jb() { json "$W/body" "$1"; }
save() { cp "$W/body" "$W/$1.json"; }
# is NAME EXPECTED ACTUAL
is() {
	if [ "$2" = "$3" ]; then
		ok 0 "$1"
	else
		ok 1 "$1"
		diag "expected: $2"
		diag "got:      $3"
		diag "last answer ($CODE): $(head -c 600 "$W/body" 2>/dev/null)"
	fi
}
# todo NAME REASON EXPECTED ACTUAL: a check of a server bug that has been
# reported (REASON says where); TAP TODO, so it is seen when fixed.
todo() {
	T=$((T + 1))
	if [ "$3" = "$4" ]; then
		echo "ok $T - $1 # TODO $2"
	else
		echo "not ok $T - $1 # TODO $2"
		diag "expected: $3"
		diag "got:      $4"
	fi
}
st() { is "$1: $2" "$2" "$CODE"; }	# st NAME STATUS
# kverr NAME STATUS CODE: the status and a KeyVaultError body with that code
kverr() {
	is "$1: $2 $3" "$2 $3 True" \
	    "$CODE $(json "$W/body" "j['error']['code'] + ' ' + str(isinstance(j['error']['message'], str) and len(j['error']['message']) > 0)" 2>/dev/null)"
}
ver() { json "$1" "j['key']['kid'].rsplit('/', 1)[1]"; }	# ver FILE
b64u() { pyq b64u "$1"; }
sha() { printf %s "$2" | openssl dgst "-sha$1" -binary; }	# sha 256 TEXT
now() { date +%s; }

# Audit expectations: AUD lines "vault op key version" checked at the end.
: >"$W/aud"
note() { echo "$*" >>"$W/aud"; }

# Snapshots: every key, version and deleted key of both vaults, plus the
# number of token objects; unchanged NAME compares with the reference.
snap() { rm -f "$1"; pyq snapshot "$S" "$1" >"$1.err"; objects "$W" >>"$1"; cat "$1.err" >>"$1"; }
unchanged() {
	snap "$W/snap.now"
	if cmp -s "$W/snap.ref" "$W/snap.now" && [ "$(head -c 1 "$W/snap.now")" = "{" ]; then
		ok 0 "$1: nothing changed"
	else
		ok 1 "$1: nothing changed"
		diff <(tr ',' '\n' <"$W/snap.ref") <(tr ',' '\n' <"$W/snap.now") | head -n 10 | while IFS= read -r l; do diag "$l"; done
		cp "$W/snap.now" "$W/snap.ref"
	fi
}

# pkcs11-tool: public objects without login, everything with the PIN
# taken from the environment (never argv).
p11all() {	# p11all TOKEN-LABEL PINFILE: every object into $W/p11
	KB_T_PIN=$(cat "$2") "$P11" --module "$SOFTHSM_MODULE" --token-label "$1" \
	    --login --pin env:KB_T_PIN -O >"$W/p11" 2>/dev/null
}
p11gen() {	# p11gen ARGS...: generate on kb1
	KB_T_PIN=$(cat "$W/user.pin") "$P11" --module "$SOFTHSM_MODULE" --token-label kb1 \
	    --login --pin env:KB_T_PIN "$@" >"$W/p11gen" 2>&1
}
# tokobj NAME FILE [TOKEN PINFILE]: "COUNT USAGES" of the bundle's version
tokobj() {
	p11all "${3:-kb1}" "${4:-$W/user.pin}"
	pyq p11 "$W/p11" "$1" "$(ver "$2")"
}
# expobj NAME FILE N: the version is N objects whose usage follows key_ops
expobj() {
	local got want
	if [ -z "$P11" ]; then
		skip "$1: token objects" "pkcs11-tool not installed"
		return
	fi
	got=$(tokobj "$(json "$2" "j['key']['kid'].split('/')[-2]")" "$2" "${4:-kb1}" "${5:-$W/user.pin}")
	want="$3 $(pyq usage "$(json "$2" "j['key']['kty']")" "$(json "$2" "','.join(j['key']['key_ops'])")")"
	is "$1: $3 token object(s), label = name, ID = version, usage = key_ops" "$want" "$got"
}

writeconf
agent_up "agent starts with two vaults on two tokens"

# ------------------------------------------------------------------ vaults
req GET /keybridge/vaults
st "GET /keybridge/vaults" 200
is "vaults: main is the default, 7 days, purgeable" \
    "True 7 False CustomizedRecoverable+Purgeable Administrator" \
    "$(jb "' '.join(str(x) for v in j['value'] if v['name'] == 'main' for x in (v['default'], v['retention_days'], v['purge_protection'], v['recovery_level'], v['role']))")"
is "vaults: locked has purge protection" "False True CustomizedRecoverable" \
    "$(jb "' '.join(str(x) for v in j['value'] if v['name'] == 'locked' for x in (v['default'], v['purge_protection'], v['recovery_level']))")"

# ------------------------------------------------------------------ create
T0=$(now)
kv POST /keys/rsa2k/create '{"kty": "RSA", "key_size": 2048, "tags": {"team": "a", "env": "t"}}'
st "create RSA 2048" 200
save rsa2k
is "create RSA 2048: kty echoed, 256-byte n, e = 65537" "RSA 256 AQAB" \
    "$(jb "j['key']['kty'] + ' ' + str(len(__import__('base64').urlsafe_b64decode(j['key']['n'] + '==='))) + ' ' + j['key']['e']")"
is "create RSA 2048: default key_ops" "['decrypt', 'encrypt', 'sign', 'unwrapKey', 'verify', 'wrapKey']" "$(jb "sorted(j['key']['key_ops'])")"
is "create RSA 2048: kid is http://localhost/keys/NAME/32-hex" True \
    "$(jb "__import__('re').fullmatch(r'http://localhost/keys/rsa2k/[0-9a-f]{32}', j['key']['kid']) is not None")"
is "create RSA 2048: attributes" "True True 7 CustomizedRecoverable+Purgeable False" \
    "$(jb "' '.join(str(x) for x in (j['attributes']['enabled'], abs(j['attributes']['created'] - $T0) < 60 and j['attributes']['updated'] == j['attributes']['created'], j['attributes']['recoverableDays'], j['attributes']['recoveryLevel'], 'nbf' in j['attributes'] or 'exp' in j['attributes']))")"
is "create RSA 2048: tags" "{'env': 't', 'team': 'a'}" "$(jb "dict(sorted(j['tags'].items()))")"
RSA2K_V1=$(ver "$W/rsa2k.json")
note main create rsa2k "$RSA2K_V1"
expobj "RSA 2048" "$W/rsa2k.json" 2

kv POST /vaults/main/keys/rsa3k/create '{"kty": "RSA-HSM", "key_size": 3072, "key_ops": ["sign", "verify", "encrypt", "decrypt"]}'
st "create RSA-HSM 3072 via /vaults/main" 200
save rsa3k
is "create RSA-HSM 3072: kty echoed, 384-byte n" "RSA-HSM 384" \
    "$(jb "j['key']['kty'] + ' ' + str(len(__import__('base64').urlsafe_b64decode(j['key']['n'] + '==')))")"
is "create via /vaults/main: the kid has the prefix" True \
    "$(jb "j['key']['kid'].startswith('http://localhost/vaults/main/keys/rsa3k/')")"
is "create RSA-HSM 3072: key_ops as given" "['decrypt', 'encrypt', 'sign', 'verify']" "$(jb "sorted(j['key']['key_ops'])")"
note main create rsa3k "$(ver "$W/rsa3k.json")"
expobj "RSA 3072 with 4 key_ops" "$W/rsa3k.json" 2

# One 4096-bit key: SoftHSM takes seconds to make one.
kv POST /keys/rsa4k/create '{"kty": "RSA-HSM", "key_size": 4096, "key_ops": ["sign", "verify"]}'
st "create RSA-HSM 4096" 200
save rsa4k
is "create RSA-HSM 4096: 512-byte n, key_ops" "512 ['sign', 'verify']" \
    "$(jb "len(unb64u(j['key']['n']))") $(jb "sorted(j['key']['key_ops'])")"
note main create rsa4k "$(ver "$W/rsa4k.json")"
expobj "RSA 4096 sign/verify" "$W/rsa4k.json" 2

for c in "ec256 EC P-256 32" "ec384 EC-HSM P-384 48" "ec521 EC P-521 66"; do
	set -- $c
	if [ "$3" = P-256 ]; then body='{"kty": "EC"}'; else body="{\"kty\": \"$2\", \"crv\": \"$3\"}"; fi
	kv POST "/keys/$1/create" "$body"
	st "create $2 $3" 200
	save "$1"
	is "create $2 $3: kty, crv, x and y of $4 bytes, key_ops" "$2 $3 $4 $4 ['sign', 'verify']" \
	    "$(jb "' '.join(str(x) for x in (j['key']['kty'], j['key']['crv'], len(__import__('base64').urlsafe_b64decode(j['key']['x'] + '==')), len(__import__('base64').urlsafe_b64decode(j['key']['y'] + '==')), sorted(j['key']['key_ops'])))")"
	note main create "$1" "$(ver "$W/$1.json")"
	expobj "$2 $3" "$W/$1.json" 2
done

for c in "aes128 oct 128 16" "aes192 oct-HSM 192 24" "aes256 oct 256 32"; do
	set -- $c
	if [ "$3" = 256 ]; then body="{\"kty\": \"$2\"}"; else body="{\"kty\": \"$2\", \"key_size\": $3}"; fi
	kv POST "/keys/$1/create" "$body"
	st "create $2 $3" 200
	save "$1"
	is "create $2 $3: kty, no key material, key_ops" "$2 [] ['decrypt', 'encrypt', 'unwrapKey', 'wrapKey']" \
	    "$(jb "' '.join(str(x) for x in (j['key']['kty'], sorted(set(j['key']) & {'k', 'n', 'e', 'x', 'y', 'd'}), sorted(j['key']['key_ops'])))")"
	note main create "$1" "$(ver "$W/$1.json")"
	expobj "$2 $3" "$W/$1.json" 1
	if [ -n "$P11" ]; then
		check "$2 $3: an AES key of $4 bytes on the token" grep -q "Secret Key Object; AES length $4" "$W/p11"
	fi
done

# ------------------------------------------------------------------ get
kv GET /keys/rsa2k
st "get latest" 200
is "get latest: same bundle as create" "$(json "$W/rsa2k.json" "j['key']")" "$(jb "j['key']")"
kv GET /keys/rsa2k/
st "get with a trailing slash" 200
is "get with a trailing slash: the latest version" "$RSA2K_V1" "$(ver "$W/body")"
kv GET "/keys/rsa2k/$RSA2K_V1"
st "get by version" 200
is "get by version: kid" "http://localhost/keys/rsa2k/$RSA2K_V1" "$(jb "j['key']['kid']")"
kv GET /vaults/main/keys/rsa2k
is "get via /vaults/main: prefixed kid" "http://localhost/vaults/main/keys/rsa2k/$RSA2K_V1" "$(jb "j['key']['kid']")"
kv GET /keys/rsa2k/00000000000000000000000000000000
kverr "get an unknown version" 404 KeyNotFound
kv GET /keys/nokey
kverr "get an unknown key" 404 KeyNotFound
kv GET /keys/RSA2K
is "names are case-insensitive (as Key Vault's)" 200 "$CODE"

# ------------------------------------------------------------------ versions
kv POST /keys/ec256/create '{"kty": "EC", "crv": "P-256", "tags": {"v": "2"}}'
st "create on an existing name" 200
save ec256b
EC256_V1=$(ver "$W/ec256.json")
EC256_V2=$(ver "$W/ec256b.json")
note main create ec256 "$EC256_V2"
check "create on an existing name: a new version" test "$EC256_V1" != "$EC256_V2"
kv GET /keys/ec256
is "create on an existing name: the new version is the latest" "$EC256_V2" "$(ver "$W/body")"
kv GET "/keys/ec256/$EC256_V1"
is "the old version is still there, with its own key" "$(json "$W/ec256.json" "j['key']['x']")" "$(jb "j['key']['x']")"
# The public half went into the store with the version (schema 6), so a get
# needs no token lookup; it is what the create answered.
is "the store holds each version's public JWK, as create answered it" "True True" \
    "$(python3 -c 'import sqlite3,sys,json
db = sqlite3.connect(sys.argv[1])
for f, v in ((sys.argv[2], sys.argv[3]), (sys.argv[4], sys.argv[5])):
    c = json.load(open(f))["key"]
    row = db.execute("SELECT public_jwk FROM versions WHERE version = ?", (v.lower(),)).fetchone()
    j = json.loads(row[0]) if row and row[0] else {}
    print(j.get("x") == c["x"] and j.get("y") == c["y"] and j.get("crv") == c["crv"], end=" ")' \
    "$W/state/vaults.db" "$W/ec256.json" "$EC256_V1" "$W/ec256b.json" "$EC256_V2" | sed 's/ $//')"
kv GET /keys/ec256/versions
st "list versions" 200
is "list versions: both, full kids" "$(pyq py "sorted(['http://localhost/keys/ec256/$EC256_V1', 'http://localhost/keys/ec256/$EC256_V2'])") None" \
    "$(jb "sorted(i['kid'] for i in j['value'])") $(jb "j['nextLink']")"
kv GET "/keys/ec256/versions?maxresults=1"
is "list versions maxresults=1: one item and a nextLink" "1 True" \
    "$(jb "len(j['value'])") $(jb "j['nextLink'].startswith('http://localhost/keys/ec256/versions?')")"
NL=$(jb "j['nextLink']")
FIRST=$(jb "j['value'][0]['kid']")
req GET "${NL#http://localhost}"
is "list versions page 2: the other version, then null" "True None" \
    "$(jb "len(j['value']) == 1 and j['value'][0]['kid'] != '$FIRST'") $(jb "j['nextLink']")"
kv GET /keys/nokey/versions
kverr "versions of an unknown key" 404 KeyNotFound

# ------------------------------------------------------------------ update
kv PATCH /keys/ec256 '{"tags": {"a": "1", "b": "2"}}'
st "update tags" 200
note main update ec256 "$EC256_V2"
kv PATCH /keys/ec256 '{"tags": {"c": "3"}}'
note main update ec256 "$EC256_V2"
is "update: tags are replaced, not merged" "{'c': '3'}" "$(jb "j['tags']")"
kv GET "/keys/ec256/$EC256_V1"
is "update of the latest leaves older versions alone" "{}" "$(jb "j.get('tags', {})")"
sha 256 hello >"$W/d256"; sha 384 hello >"$W/d384"; sha 512 hello >"$W/d512"
sha 256 bye >"$W/dother"
DG256=$(b64u "$W/d256")
DG384=$(b64u "$W/d384")
kv PATCH /keys/ec256 '{"attributes": {"enabled": false}}'
is "update enabled false" "200 False" "$CODE $(jb "j['attributes']['enabled']")"
note main update ec256 "$EC256_V2"
kv POST /keys/ec256/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
kverr "sign with a disabled key" 403 Forbidden
is "sign with a disabled key: the message says so" True "$(jb "'disabled' in j['error']['message']")"
kv POST "/keys/ec256/$EC256_V1/sign" "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
st "the older, enabled version still signs" 200
kv PATCH /keys/ec256/ '{"attributes": {"enabled": true}}'
is "update enabled true (trailing slash)" "200 True" "$CODE $(jb "j['attributes']['enabled']")"
note main update ec256 "$EC256_V2"
PAST=$(( $(now) - 3600 )); FUTURE=$(( $(now) + 3600 ))
kv PATCH /keys/ec256 "{\"attributes\": {\"exp\": $PAST}}"
is "update exp in the past" "200 $PAST" "$CODE $(jb "j['attributes']['exp']")"
note main update ec256 "$EC256_V2"
kv POST /keys/ec256/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
kverr "sign with an expired key" 403 Forbidden
is "sign with an expired key: the message says so" True "$(jb "'expired' in j['error']['message']")"
kv PATCH /keys/ec256 '{"attributes": {"exp": null}}'
is "update exp null clears it" "200 False" "$CODE $(jb "'exp' in j['attributes']")"
note main update ec256 "$EC256_V2"
kv PATCH /keys/ec256 "{\"attributes\": {\"nbf\": $FUTURE}}"
is "update nbf in the future" "200 $FUTURE" "$CODE $(jb "j['attributes']['nbf']")"
note main update ec256 "$EC256_V2"
kv POST /keys/ec256/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
kverr "sign with a not yet valid key" 403 Forbidden
# docs/vaults.md words it "not yet valid", the agent "not valid yet": either.
is "sign with a not yet valid key: the message says so" True \
    "$(jb "re.search('not (yet valid|valid yet)', j['error']['message']) is not None")"
kv PATCH /keys/ec256 '{"attributes": {"nbf": null}}'
is "update nbf null clears it" "200 False" "$CODE $(jb "'nbf' in j['attributes']")"
note main update ec256 "$EC256_V2"
kv POST /keys/ec256/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
st "sign works again" 200
kv PATCH /keys/ec256 '{"key_ops": ["sign"]}'
is "update key_ops narrowed to sign" "200 ['sign']" "$CODE $(jb "j['key']['key_ops']")"
note main update ec256 "$EC256_V2"
save ec256b
expobj "narrowed key_ops on the token" "$W/ec256b.json" 2
kv GET /keys/ec256
is "get: updated > created after updates" True "$(jb "j['attributes']['updated'] >= j['attributes']['created']")"
kv POST /keys/ec256/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
SIG=$(jb "j['value']")
kv POST /keys/ec256/verify "{\"alg\": \"ES256\", \"digest\": \"$DG256\", \"value\": \"$SIG\"}"
kverr "verify not in key_ops" 403 Forbidden
kv PATCH /keys/ec256 '{"key_ops": ["sign", "verify"]}'
note main update ec256 "$EC256_V2"
save ec256b
expobj "key_ops widened again on the token" "$W/ec256b.json" 2
kv PATCH /keys/ec256 '{"key_ops": ["sign", "encrypt"]}'
kverr "update key_ops with an op of another key type" 400 BadParameter
kv PATCH /keys/nokey '{"tags": {}}'
kverr "update an unknown key" 404 KeyNotFound

# ------------------------------------------------------------------ crypto
# ccheck NAME: `openssl ...` exits 0
PEMS_OK=1
for k in rsa2k rsa3k rsa4k ec256b ec384 ec521; do
	[ -z "$(pyq pem "$W/$k.json" "$W/$k.pem")" ] && openssl pkey -pubin -in "$W/$k.pem" -noout 2>/dev/null || PEMS_OK=0
done
check "PEM public keys built from the JWKs parse with OpenSSL" test $PEMS_OK -eq 1
openssl pkey -pubin -in "$W/rsa3k.pem" -text -noout 2>/dev/null | grep -q 'Public-Key: (3072 bit)'
check "the RSA 3072 JWK is a 3072-bit key" test $? -eq 0
openssl pkey -pubin -in "$W/ec521.pem" -text -noout 2>/dev/null | grep -q 'NIST CURVE: P-521'
check "the P-521 JWK is on P-521" test $? -eq 0

# sigcheck NAME KEY ALG DIGESTFILE OPENSSL-PKEYOPTS...
sigcheck() {
	local name=$1 key=$2 alg=$3 dg=$4
	shift 4
	kv POST "/keys/${key%b}/sign" "{\"alg\": \"$alg\", \"value\": \"$(b64u "$dg")\"}"
	st "$name: sign" 200
	SIG=$(jb "j['value']")
	is "$name: the result names the version" "http://localhost/keys/${key%b}/$(ver "$W/$key.json")" "$(jb "j['kid']")"
	if [ "${alg#ES}" != "$alg" ]; then
		pyq rs2der "$SIG" "$W/sig" >/dev/null
		is "$name: raw r||s of twice the field size" "$(json "$W/$key.json" "2 * len(__import__('base64').urlsafe_b64decode(j['key']['x'] + '=='))")" \
		    "$(pyq py "len(unb64u('$SIG'))")"
	else
		pyq unb64u "$SIG" "$W/sig" >/dev/null
	fi
	openssl pkeyutl -verify -pubin -inkey "$W/$key.pem" -in "$dg" -sigfile "$W/sig" "$@" >/dev/null 2>&1
	check "$name: OpenSSL verifies the signature with the JWK" test $? -eq 0
	openssl pkeyutl -verify -pubin -inkey "$W/$key.pem" -in "$W/dother" -sigfile "$W/sig" "$@" >/dev/null 2>&1
	check "$name: ... and refuses it for another digest" test $? -ne 0
	kv POST "/keys/${key%b}/verify" "{\"alg\": \"$alg\", \"digest\": \"$(b64u "$dg")\", \"value\": \"$SIG\"}"
	is "$name: verify through the API" "200 True" "$CODE $(jb "j['value']")"
}
sigcheck RS256 rsa2k RS256 "$W/d256" -pkeyopt digest:sha256
sigcheck RS512 rsa3k RS512 "$W/d512" -pkeyopt digest:sha512
sigcheck "RS384 (4096)" rsa4k RS384 "$W/d384" -pkeyopt digest:sha384
sigcheck PS256 rsa2k PS256 "$W/d256" -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:digest
sigcheck PS384 rsa3k PS384 "$W/d384" -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha384 -pkeyopt rsa_pss_saltlen:digest
sigcheck ES256 ec256b ES256 "$W/d256"
sigcheck ES384 ec384 ES384 "$W/d384"
sigcheck ES512 ec521 ES512 "$W/d512"
kv POST /keys/rsa2k/verify "{\"alg\": \"RS256\", \"digest\": \"$DG256\", \"value\": \"$(pyq py "b64u(bytes(256))")\"}"
is "verify a wrong signature: 200 {value: false}" "200 False" "$CODE $(jb "j['value']")"
kv POST /keys/ec256/verify "{\"alg\": \"ES256\", \"digest\": \"$DG384\", \"value\": \"$SIG\"}"
kverr "verify ES256 with a 48-byte digest" 400 BadParameter

printf 'a secret for the token only' >"$W/plain"
# enccheck ALG OPENSSL-PKEYOPTS...: OpenSSL encrypts with the JWK, the API decrypts
enccheck() {
	local alg=$1
	shift
	openssl pkeyutl -encrypt -pubin -inkey "$W/rsa2k.pem" -in "$W/plain" -out "$W/ct" "$@" 2>/dev/null
	kv POST /keys/rsa2k/decrypt "{\"alg\": \"$alg\", \"value\": \"$(b64u "$W/ct")\"}"
	is "$alg: OpenSSL encrypts with the JWK, the API decrypts" "200 $(b64u "$W/plain")" "$CODE $(jb "j['value']")"
	kv POST /keys/rsa2k/encrypt "{\"alg\": \"$alg\", \"value\": \"$(b64u "$W/plain")\"}"
	local c1 c2
	c1=$(jb "j['value']")
	kv POST /keys/rsa2k/encrypt "{\"alg\": \"$alg\", \"value\": \"$(b64u "$W/plain")\"}"
	c2=$(jb "j['value']")
	is "$alg: API ciphertexts have the modulus length and differ" "256 True" \
	    "$(pyq py "len(unb64u('$c1'))") $([ "$c1" != "$c2" ] && echo True || echo False)"
	kv POST /keys/rsa2k/decrypt "{\"alg\": \"$alg\", \"value\": \"$c1\"}"
	is "$alg: decrypt(encrypt(x)) = x through the API" "$(b64u "$W/plain")" "$(jb "j['value']")"
}
enccheck RSA-OAEP -pkeyopt rsa_padding_mode:oaep
enccheck RSA-OAEP-256 -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
enccheck RSA1_5 -pkeyopt rsa_padding_mode:pkcs1
openssl pkeyutl -encrypt -pubin -inkey "$W/rsa2k.pem" -in "$W/plain" -out "$W/ct" -pkeyopt rsa_padding_mode:oaep 2>/dev/null
kv POST /keys/rsa2k/decrypt "{\"alg\": \"RSA-OAEP-256\", \"value\": \"$(b64u "$W/ct")\"}"
kverr "RSA-OAEP ciphertext decrypted as RSA-OAEP-256" 400 BadParameter
kv POST /keys/rsa2k/wrapkey "{\"alg\": \"RSA-OAEP-256\", \"value\": \"$(head -c 32 /dev/urandom >"$W/cek"; b64u "$W/cek")\"}"
st "RSA wrapKey" 200
kv POST /keys/rsa2k/unwrapkey "{\"alg\": \"RSA-OAEP-256\", \"value\": \"$(jb "j['value']")\"}"
is "RSA unwrapKey gives the key back" "$(b64u "$W/cek")" "$(jb "j['value']")"

# AES-GCM
AAD=$(pyq py "b64u(b'header')")
kv POST /keys/aes256/encrypt "{\"alg\": \"A256GCM\", \"value\": \"$(b64u "$W/plain")\", \"aad\": \"$AAD\"}"
st "A256GCM encrypt" 200
save gcm
is "A256GCM: 12-byte iv, 16-byte tag, ciphertext of the plaintext's length" "12 16 $(wc -c <"$W/plain")" \
    "$(jb "'%d %d %d' % (len(unb64u(j['iv'])), len(unb64u(j['tag'])), len(unb64u(j['value'])))")"
GCT=$(json "$W/gcm.json" "j['value']"); GIV=$(json "$W/gcm.json" "j['iv']"); GTAG=$(json "$W/gcm.json" "j['tag']")
kv POST /keys/aes256/decrypt "{\"alg\": \"A256GCM\", \"value\": \"$GCT\", \"iv\": \"$GIV\", \"tag\": \"$GTAG\", \"aad\": \"$AAD\"}"
is "A256GCM decrypt with the aad" "200 $(b64u "$W/plain")" "$CODE $(jb "j['value']")"
BADTAG=$(pyq py "b64u(bytes([unb64u('$GTAG')[0] ^ 1]) + unb64u('$GTAG')[1:])")
kv POST /keys/aes256/decrypt "{\"alg\": \"A256GCM\", \"value\": \"$GCT\", \"iv\": \"$GIV\", \"tag\": \"$BADTAG\", \"aad\": \"$AAD\"}"
kverr "A256GCM decrypt with a tampered tag" 400 BadParameter
kv POST /keys/aes256/decrypt "{\"alg\": \"A256GCM\", \"value\": \"$GCT\", \"iv\": \"$GIV\", \"tag\": \"$GTAG\"}"
kverr "A256GCM decrypt without the aad" 400 BadParameter
kv POST /keys/aes128/encrypt "{\"alg\": \"A128GCM\", \"value\": \"$(b64u "$W/plain")\"}"
st "A128GCM on a 128-bit key" 200
kv POST /keys/aes128/decrypt "{\"alg\": \"A128GCM\", \"value\": \"$(jb "j['value']")\", \"iv\": \"$(jb "j['iv']")\", \"tag\": \"$(jb "j['tag']")\"}"
is "A128GCM round trip" "$(b64u "$W/plain")" "$(jb "j['value']")"
# AES key wrap
head -c 32 /dev/urandom >"$W/cek"
kv POST /keys/aes256/wrapkey "{\"alg\": \"A256KW\", \"value\": \"$(b64u "$W/cek")\"}"
st "A256KW wrapKey" 200
WR=$(jb "j['value']")
is "A256KW: the wrapped key is 8 bytes longer" 40 "$(pyq py "len(unb64u('$WR'))")"
kv POST /keys/aes256/unwrapkey "{\"alg\": \"A256KW\", \"value\": \"$WR\"}"
is "A256KW unwrapKey gives the key back" "200 $(b64u "$W/cek")" "$CODE $(jb "j['value']")"
BADWR=$(pyq py "b64u(unb64u('$WR')[:5] + bytes([unb64u('$WR')[5] ^ 1]) + unb64u('$WR')[6:])")
kv POST /keys/aes256/unwrapkey "{\"alg\": \"A256KW\", \"value\": \"$BADWR\"}"
kverr "A256KW unwrapKey of a tampered value" 400 BadParameter
kv POST /keys/aes192/wrapkey "{\"alg\": \"A192KW\", \"value\": \"$(b64u "$W/cek")\"}"
kv POST /keys/aes192/unwrapkey "{\"alg\": \"A192KW\", \"value\": \"$(jb "j['value']")\"}"
is "A192KW round trip" "200 $(b64u "$W/cek")" "$CODE $(jb "j['value']")"

# ------------------------------------------------------------------ rotate
kv POST /keys/rsa2k/rotate
st "rotate RSA 2048" 200
save rsa2kr
RSA2K_V2=$(ver "$W/rsa2kr.json")
note main rotate rsa2k "$RSA2K_V2"
is "rotate RSA: same kty, size, key_ops and tags; a new key" \
    "RSA 256 $(json "$W/rsa2k.json" "sorted(j['key']['key_ops'])") $(json "$W/rsa2k.json" "sorted(j['tags'].items())") True" \
    "$(jb "j['key']['kty']") $(jb "len(__import__('base64').urlsafe_b64decode(j['key']['n'] + '=='))") $(jb "sorted(j['key']['key_ops'])") $(jb "sorted(j['tags'].items())") $(jb "j['key']['n'] != '$(json "$W/rsa2k.json" "j['key']['n']")'")"
kv GET /keys/rsa2k
is "rotate: the new version is the latest" "$RSA2K_V2" "$(ver "$W/body")"
expobj "rotated RSA version" "$W/rsa2kr.json" 2
kv POST /vaults/main/keys/ec384/rotate
is "rotate EC P-384 via /vaults/main: same kty and curve, prefixed kid" "200 EC-HSM P-384 True" \
    "$CODE $(jb "j['key']['kty']") $(jb "j['key']['crv']") $(jb "j['key']['kid'].startswith('http://localhost/vaults/main/keys/ec384/')")"
note main rotate ec384 "$(ver "$W/body")"
kv POST /keys/aes192/rotate
st "rotate AES 192" 200
save aes192r
note main rotate aes192 "$(ver "$W/aes192r.json")"
expobj "rotated AES version" "$W/aes192r.json" 1
if [ -n "$P11" ]; then
	is "rotated AES: two 24-byte AES objects labelled aes192" 2 \
	    "$(grep -A1 'Secret Key Object; AES length 24' "$W/p11" | grep -cE 'label: *aes192$')"
fi
kv POST /keys/nokey/rotate
kverr "rotate an unknown key" 404 KeyNotFound

# ------------------------------------------------------------------ delete
T1=$(now)
kv DELETE /keys/ec256
st "delete" 200
save ec256d
note main delete ec256 -
is "DeletedKeyBundle: recoveryId, deletedDate now, scheduledPurgeDate = deletedDate + 7 days" \
    "http://localhost/deletedkeys/ec256 True True" \
    "$(jb "j['recoveryId']") $(jb "abs(j['deletedDate'] - $T1) < 60") $(jb "j['scheduledPurgeDate'] == j['deletedDate'] + 7 * 86400")"
is "DeletedKeyBundle: the latest version's key" "http://localhost/keys/ec256/$EC256_V2" "$(jb "j['key']['kid']")"
if [ -n "$P11" ]; then
	p11all kb1 "$W/user.pin"
	is "deleted: every usage flag of every version is off" "2 none 2 none" \
	    "$(pyq p11 "$W/p11" ec256 "$EC256_V1") $(pyq p11 "$W/p11" ec256 "$EC256_V2")"
fi
kv GET /keys/ec256
kverr "get a deleted key" 404 KeyNotFound
kv GET "/keys/ec256/$EC256_V1"
kverr "get a version of a deleted key" 404 KeyNotFound
kv POST /keys/ec256/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
kverr "sign with a deleted key" 404 KeyNotFound
kv PATCH /keys/ec256 '{"tags": {}}'
kverr "update a deleted key" 404 KeyNotFound
kv POST /keys/ec256/create '{"kty": "EC"}'
kverr "create on a deleted name" 409 Conflict
is "create on a deleted name: innererror ObjectIsDeletedButRecoverable" ObjectIsDeletedButRecoverable "$(jb "j['error']['innererror']['code']")"
kv GET /keys
is "list keys: the deleted key is not listed" False "$(jb "any(i['kid'].endswith('/ec256') for i in j['value'])")"
kv POST /keys/json-esc/create '{"kty": "EC", "tags": {"q\"uo\\te": "back\\slash \"q\" caf\u00e9 \u2603 </x>"}, "attributes": {"exp": 4102444800, "nbf": 1700000000}}'
st "create a key whose tags need escaping" 200
save escget
kv GET "/keys?maxresults=25"
save esclist
is "list keys: an item with escaped tags, nbf and exp says what get says" True \
    "$(python3 -c 'import json,sys
l = [i for i in json.load(open(sys.argv[1]))["value"] if i["kid"].endswith("/json-esc")]
g = json.load(open(sys.argv[2])); g["kid"] = g.pop("key")["kid"].rsplit("/", 1)[0]
print(len(l) == 1 and l[0] == g and g["tags"]["q\"uo\\te"].startswith("back\\slash \"q\""))' "$W/esclist.json" "$W/escget.json")"
kv DELETE /keys/json-esc
kv DELETE /deletedkeys/json-esc
st "the key with escaped tags purged again" 204
kv GET /deletedkeys
st "list deleted" 200
is "list deleted: the key with its recoveryId and dates" "http://localhost/deletedkeys/ec256 http://localhost/keys/ec256 True" \
    "$(jb "[i['recoveryId'] for i in j['value']][0]") $(jb "[i['kid'] for i in j['value']][0]") $(jb "j['value'][0]['scheduledPurgeDate'] == $(json "$W/ec256d.json" "j['scheduledPurgeDate']")")"
save dlist
kv GET /deletedkeys/ec256
save dget
# The list item is printed without cJSON (kvapi.c, struct jw): it must say
# what the bundle says, member for member.
is "list deleted: the item says what get deleted says, but key for kid" True \
    "$(python3 -c 'import json,sys
l = json.load(open(sys.argv[1]))["value"][0]; g = json.load(open(sys.argv[2]))
g["kid"] = g.pop("key")["kid"].rsplit("/", 1)[0]
print(l == g)' "$W/dlist.json" "$W/dget.json")"
kv GET /deletedkeys/ec256
is "get deleted" "200 http://localhost/deletedkeys/ec256 $(json "$W/ec256d.json" "j['deletedDate']")" \
    "$CODE $(jb "j['recoveryId']") $(jb "j['deletedDate']")"
kv GET /vaults/main/deletedkeys/ec256
is "get deleted via /vaults/main: prefixed recoveryId and kid" \
    "http://localhost/vaults/main/deletedkeys/ec256 http://localhost/vaults/main/keys/ec256/$EC256_V2" \
    "$(jb "j['recoveryId']") $(jb "j['key']['kid']")"
kv GET /deletedkeys/rsa2k
kverr "get deleted of an active key" 404 KeyNotFound
kv DELETE /deletedkeys/rsa2k
kverr "purge an active key" 404 KeyNotFound
kv POST /deletedkeys/rsa2k/recover
kverr "recover an active key" 404 KeyNotFound
kv DELETE /keys/ec256
kverr "delete a deleted key" 404 KeyNotFound
kv POST /deletedkeys/ec256/recover
st "recover" 200
note main recover ec256 -
is "recover: the latest version's KeyBundle" "http://localhost/keys/ec256/$EC256_V2 False" \
    "$(jb "j['key']['kid']") $(jb "'recoveryId' in j")"
if [ -n "$P11" ]; then
	p11all kb1 "$W/user.pin"
	is "recovered: the usage flags are back on every version" "2 sign,verify 2 sign,verify" \
	    "$(pyq p11 "$W/p11" ec256 "$EC256_V1") $(pyq p11 "$W/p11" ec256 "$EC256_V2")"
fi
kv POST /keys/ec256/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
st "recovered key signs" 200
kv GET /deletedkeys/ec256
kverr "get deleted after recover" 404 KeyNotFound
# delete and purge via /vaults/main
kv DELETE /vaults/main/keys/ec256
is "delete via /vaults/main: prefixed recoveryId" "200 http://localhost/vaults/main/deletedkeys/ec256" "$CODE $(jb "j['recoveryId']")"
note main delete ec256 -
N_BEFORE=$(objects "$W")
kv DELETE /vaults/main/deletedkeys/ec256
is "purge: 204 and no body" "204 0" "$CODE $(wc -c <"$W/body")"
note main purge ec256 -
is "purge: the 4 token objects of its two versions are gone" $((N_BEFORE - 4)) "$(objects "$W")"
if [ -n "$P11" ]; then
	p11all kb1 "$W/user.pin"
	is "purge: pkcs11-tool finds nothing labelled ec256" 0 "$(grep -cE 'label: *ec256$' "$W/p11")"
fi
kv GET /deletedkeys/ec256
kverr "get deleted after purge" 404 KeyNotFound
kv DELETE /deletedkeys/ec256
kverr "purge twice" 404 KeyNotFound
kv POST /keys/ec256/create '{"kty": "EC"}'
st "after purge the name is free" 200
save ec256
note main create ec256 "$(ver "$W/ec256.json")"
kv GET /keys/ec256/versions
is "after purge: a new key with one version" 1 "$(jb "len(j['value'])")"

# ------------------------------------------------------------------ vault locked
kv POST /vaults/locked/keys/lk/create '{"kty": "oct", "key_size": 128}'
st "create in vault locked" 200
save lk
note locked create lk "$(ver "$W/lk.json")"
is "vault locked: prefixed kid, CustomizedRecoverable" "True CustomizedRecoverable" \
    "$(jb "j['key']['kid'].startswith('http://localhost/vaults/locked/keys/lk/')") $(jb "j['attributes']['recoveryLevel']")"
expobj "vault locked: the key is on token kb2" "$W/lk.json" 1 kb2 "$W/user2.pin"
kv GET /keys/lk
kverr "vault locked's key is not in the default vault" 404 KeyNotFound
kv GET /vaults/locked/keys
is "list in vault locked: its key only" "['http://localhost/vaults/locked/keys/lk']" "$(jb "[i['kid'] for i in j['value']]")"
kv DELETE /vaults/locked/keys/lk
is "delete in vault locked" "200 http://localhost/vaults/locked/deletedkeys/lk" "$CODE $(jb "j['recoveryId']")"
note locked delete lk -
N_BEFORE=$(objects "$W")
kv DELETE /vaults/locked/deletedkeys/lk
kverr "purge under purge protection" 403 Forbidden
note locked purge lk - denied-or-failed
is "purge under purge protection: the objects stay" "$N_BEFORE" "$(objects "$W")"
kv GET /vaults/locked/deletedkeys/lk
st "purge under purge protection: still recoverable" 200
kv POST /vaults/locked/deletedkeys/lk/recover
is "recover in vault locked: prefixed kid" "200 True" "$CODE $(jb "j['key']['kid'].startswith('http://localhost/vaults/locked/keys/lk/')")"
note locked recover lk -
kv GET /vaults/nosuch/keys
kverr "an unknown vault" 404 VaultNotFound

# ------------------------------------------------------------------ bad input
snap "$W/snap.ref"
# badreq NAME STATUS CODE METHOD PATH [JSON]
badreq() {
	local name=$1 status=$2 code=$3
	shift 3
	kv "$@"
	kverr "$name" "$status" "$code"
	unchanged "$name"
}
C=/keys/newkey/create
badreq "malformed JSON" 400 BadParameter POST $C '{"kty": "EC",'
badreq "a body that is an array" 400 BadParameter POST $C '[{"kty": "EC"}]'
badreq "trailing garbage" 400 BadParameter POST $C '{"kty": "EC"} x'
badreq "an empty body" 400 BadParameter POST $C ''
badreq "kty 5" 400 BadParameter POST $C '{"kty": 5}'
badreq "key_size \"2048\"" 400 BadParameter POST $C '{"kty": "RSA", "key_size": "2048"}'
badreq "enabled \"yes\"" 400 BadParameter POST $C '{"kty": "EC", "attributes": {"enabled": "yes"}}'
badreq "tags as an array" 400 BadParameter POST $C '{"kty": "EC", "tags": ["a"]}'
badreq "a tag value that is a number" 400 BadParameter POST $C '{"kty": "EC", "tags": {"a": 1}}'
badreq "a duplicate member" 400 BadParameter POST $C '{"kty": "EC", "kty": "oct"}'
badreq "unknown kty" 400 BadParameter POST $C '{"kty": "DSA"}'
badreq "unknown crv" 400 BadParameter POST $C '{"kty": "EC", "crv": "P-192"}'
badreq "unknown key_op" 400 BadParameter POST $C '{"kty": "EC", "key_ops": ["sign", "fly"]}'
badreq "key_ops import" 400 BadParameter POST $C '{"kty": "oct", "key_ops": ["import"]}'
badreq "RSA 1024" 400 BadParameter POST $C '{"kty": "RSA", "key_size": 1024}'
badreq "public_exponent 3" 400 BadParameter POST $C '{"kty": "RSA", "public_exponent": 3}'
badreq "EC with key_size" 400 BadParameter POST $C '{"kty": "EC", "key_size": 256}'
badreq "oct with crv" 400 BadParameter POST $C '{"kty": "oct", "crv": "P-256"}'
badreq "oct of 512 bits" 400 BadParameter POST $C '{"kty": "oct", "key_size": 512}'
badreq "name a_b" 400 BadParameter POST /keys/a_b/create '{"kty": "EC"}'
badreq "a name of 128 characters" 400 BadParameter POST "/keys/$(printf 'n%.0s' $(seq 128))/create" '{"kty": "EC"}'
kv POST /keys//create '{"kty": "EC"}'
is "an empty name: 400 BadParameter or 404 NotFound" "True" \
    "$(jb "(j['error']['code'], $CODE) in (('BadParameter', 400), ('NotFound', 404))" 2>/dev/null)"
unchanged "an empty name"
TAGS16=$(pyq py 'json.dumps({"kty": "EC", "tags": {"t%d" % i: "v" for i in range(16)}})')
badreq "16 tags" 400 BadParameter POST $C "$TAGS16"
badreq "a tag name of 257 characters" 400 BadParameter POST $C "{\"kty\": \"EC\", \"tags\": {\"$(printf 't%.0s' $(seq 257))\": \"v\"}}"
badreq "a tag value of 257 characters" 400 BadParameter POST $C "{\"kty\": \"EC\", \"tags\": {\"t\": \"$(printf 'v%.0s' $(seq 257))\"}}"
badreq "read-only attribute created" 400 BadParameter POST $C '{"kty": "EC", "attributes": {"created": 1700000000}}'
badreq "read-only attribute recoveryLevel" 400 BadParameter POST $C '{"kty": "EC", "attributes": {"recoveryLevel": "Purgeable"}}'
badreq "exportable true" 400 BadParameter POST $C '{"kty": "EC", "attributes": {"exportable": true}}'
badreq "release_policy" 400 BadParameter POST $C '{"kty": "EC", "release_policy": {"data": "e30"}}'
badreq "nbf of the wrong type" 400 BadParameter POST $C '{"kty": "EC", "attributes": {"nbf": "soon"}}'
badreq "update with a wrong type" 400 BadParameter PATCH /keys/rsa2k '{"attributes": {"enabled": 1}}'
badreq "update with 16 tags" 400 BadParameter PATCH /keys/rsa2k "$TAGS16"
badreq "update read-only created" 400 BadParameter PATCH /keys/rsa2k '{"attributes": {"created": 5}}'
badreq "update a malformed body" 400 BadParameter PATCH /keys/rsa2k '{"tags": '
badreq "ES256 on an RSA key" 400 BadParameter POST /keys/rsa2k/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
badreq "RS256 on an EC key" 400 BadParameter POST /keys/ec256/sign "{\"alg\": \"RS256\", \"value\": \"$DG256\"}"
badreq "unknown alg" 400 BadParameter POST /keys/rsa2k/sign "{\"alg\": \"RS1\", \"value\": \"$DG256\"}"
badreq "A128GCM on a 256-bit key" 400 BadParameter POST /keys/aes256/encrypt "{\"alg\": \"A128GCM\", \"value\": \"$DG256\"}"
badreq "A256KW on a 128-bit key" 400 BadParameter POST /keys/aes128/wrapkey "{\"alg\": \"A256KW\", \"value\": \"$DG256\"}"
badreq "RSA-OAEP on an oct key" 400 BadParameter POST /keys/aes256/encrypt "{\"alg\": \"RSA-OAEP\", \"value\": \"$DG256\"}"
badreq "RS256 with a 48-byte digest" 400 BadParameter POST /keys/rsa2k/sign "{\"alg\": \"RS256\", \"value\": \"$DG384\"}"
badreq "ES384 with a 32-byte digest" 400 BadParameter POST /keys/ec384/sign "{\"alg\": \"ES384\", \"value\": \"$DG256\"}"
badreq "GCM encrypt with an iv" 400 BadParameter POST /keys/aes256/encrypt "{\"alg\": \"A256GCM\", \"value\": \"$DG256\", \"iv\": \"AAAAAAAAAAAAAAAA\"}"
badreq "sign without alg" 400 BadParameter POST /keys/rsa2k/sign "{\"value\": \"$DG256\"}"
badreq "sign with a value that is not base64url" 400 BadParameter POST /keys/rsa2k/sign '{"alg": "RS256", "value": "!!!"}'
badreq "maxresults=0" 400 BadParameter GET "/keys?maxresults=0"
badreq "maxresults=26" 400 BadParameter GET "/keys?maxresults=26"
badreq "maxresults=x" 400 BadParameter GET "/keys?maxresults=x"
badreq "versions maxresults=26" 400 BadParameter GET "/keys/rsa2k/versions?maxresults=26"
badreq "deletedkeys maxresults=0" 400 BadParameter GET "/deletedkeys?maxresults=0"
badreq "a malformed \$skiptoken" 400 BadParameter GET '/keys?$skiptoken=a_b'
badreq "a malformed \$skiptoken (%21)" 400 BadParameter GET '/keys?$skiptoken=%21%21'
req POST /keys/newkey/create -H 'Content-Type: application/json' --data-binary '{"kty": "EC"}'
kverr "missing api-version" 400 BadParameter
check "missing api-version: Key Vault's message" grep -q 'api-version query parameter is missing' "$W/body"
unchanged "missing api-version"
req POST '/keys/newkey/create?api-version=7.3' -H 'Content-Type: application/json' --data-binary '{"kty": "EC"}'
kverr "api-version 7.3" 400 BadParameter
check "api-version 7.3: the message names the supported versions" grep -q '2026-04-01' "$W/body"
unchanged "api-version 7.3"
for v in 7.4 7.5 7.6 2025-07-01 2026-04-01; do
	req GET "/keys/rsa2k?api-version=$v"
	st "api-version $v accepted" 200
done
head -c $((1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' >"$W/big"
printf '{"kty": "EC"}' >>"$W/big"
req POST "$C?$AV" -H 'Content-Type: application/json' --data-binary @"$W/big"
kverr "a body over 1 MiB (Content-Length)" 413 RequestTooLarge
unchanged "a body over 1 MiB (Content-Length)"
req POST "$C?$AV" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$W/big"
kverr "a body over 1 MiB (chunked)" 413 RequestTooLarge
unchanged "a body over 1 MiB (chunked)"
kv GET /keys/rsa2k/versions/extra/segments
kverr "an unknown path" 404 NotFound
kv GET /secrets/x
kverr "a path of another Key Vault API" 404 NotFound
curl -s -D "$W/hdr" -o "$W/body" -X PUT --unix-socket "$S" -H 'Content-Type: application/json' \
    --data-binary '{"kty": "EC"}' "http://localhost$C?$AV" >/dev/null
CODE=$(sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$W/hdr")
kverr "PUT on /create" 405 MethodNotAllowed
check "PUT on /create: Allow: POST" grep -qiE '^Allow: POST' "$W/hdr"
unchanged "PUT on /create"
curl -s -D "$W/hdr" -o "$W/body" -X DELETE --unix-socket "$S" "http://localhost/keys?$AV" >/dev/null
CODE=$(sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$W/hdr")
kverr "DELETE on /keys" 405 MethodNotAllowed
check "DELETE on /keys: Allow: GET" grep -qiE '^Allow: GET' "$W/hdr"
unchanged "bad input: the last checks"

# --- a client that disconnects mid-request
$VC disconnect "$S" "/keys/halfway/create?$AV" >"$W/disc"
sleep 0.5
kv GET /keys/rsa2k
st "after a client disconnected mid-request the agent answers" 200
kv GET /keys/halfway
kverr "the half-sent create made no key" 404 KeyNotFound
unchanged "a client disconnecting mid-request"

# ------------------------------------------------------------------ adopt
if [ -n "$P11" ]; then
	p11gen --keypairgen --key-type EC:prime256v1 --label foreign --id 0a0b0c
	p11gen --keygen --key-type AES:32 --label extr --id 0d0e --extractable
	p11gen --keypairgen --key-type EC:prime256v1 --label bystander --id 0f
	p11all kb1 "$W/user.pin"
	BYSTANDER=$(pyq p11 "$W/p11" bystander 0f)
	is "pkcs11-tool made the foreign objects" "2 2 $BYSTANDER" \
	    "$(pyq p11 "$W/p11" foreign 0a0b0c | cut -d' ' -f1) $(pyq p11 "$W/p11" bystander 0f | cut -d' ' -f1) $BYSTANDER"
	snap "$W/snap.ref"
	req POST /keybridge/vaults/main/adopt -H 'Content-Type: application/json' \
	    --data-binary '{"uri": "pkcs11:object=extr;type=secret-key", "name": "adoptx"}'
	kverr "adopt an extractable key" 400 BadParameter
	unchanged "adopt an extractable key"
	req POST /keybridge/vaults/main/adopt -H 'Content-Type: application/json' \
	    --data-binary '{"uri": "pkcs11:object=nothing;type=private", "name": "adoptn"}'
	kverr "adopt an object that does not exist" 404 KeyNotFound
	req POST /keybridge/vaults/main/adopt -H 'Content-Type: application/json' \
	    --data-binary '{"uri": "pkcs11:object=foreign;type=private", "name": "a_b"}'
	kverr "adopt under a bad name" 400 BadParameter
	unchanged "failed adoptions"
	req POST /keybridge/vaults/main/adopt -H 'Content-Type: application/json' \
	    --data-binary '{"uri": "pkcs11:object=foreign;type=private", "name": "adopted"}'
	st "adopt" 200
	save adopted
	AD_V=$(ver "$W/adopted.json")
	note main adopt adopted "$AD_V"
	is "adopt: EC-HSM P-256 with the foreign key's point" "EC-HSM P-256 True" \
	    "$(jb "j['key']['kty']") $(jb "j['key']['crv']") $(jb "j['key']['kid'] == 'http://localhost/keys/adopted/$AD_V'")"
	p11all kb1 "$W/user.pin"
	is "adopt: the objects now have label = name and ID = version; none keep the old" "2 0" \
	    "$(pyq p11 "$W/p11" adopted "$AD_V" | cut -d' ' -f1) $(pyq p11 "$W/p11" foreign 0a0b0c | cut -d' ' -f1)"
	pyq pem "$W/adopted.json" "$W/adopted.pem" >/dev/null
	sigcheck "adopted ES256" adopted ES256 "$W/d256"
	is "the bystander object was not touched" "$BYSTANDER" "$(pyq p11 "$W/p11" bystander 0f)"
	is "the extractable object was not touched" 1 "$(pyq p11 "$W/p11" extr 0d0e | cut -d' ' -f1)"
else
	skip "adopt" "pkcs11-tool not installed"
fi

# ------------------------------------------------------------------ paging
# 31 more keys: with the others, more than 40 in vault main.
for i in $(seq -w 1 31); do
	kv POST "/keys/pg-$i/create" '{"kty": "oct", "key_size": 128}'
	[ "$CODE" = 200 ] || echo "pg-$i $CODE" >>"$W/pg.fail"
	note main create "pg-$i" "$(ver "$W/body")"
done
check "31 keys created" test ! -e "$W/pg.fail"
pyq snapshot "$S" "$W/all.json" >/dev/null
ALLKEYS=$(json "$W/all.json" "len(j['main']['keys'])")
# pagewalk PREFIX MAX DIR: every page's body as DIR/N.json
pagewalk() {
	local p="$1/keys?$AV&maxresults=$2" n=0 nl d=$3
	rm -rf "$d"
	mkdir -p "$d"
	while [ -n "$p" ] && [ $n -lt 200 ]; do
		req GET "$p"
		n=$((n + 1))
		cp "$W/body" "$d/$(printf %03d $n).json"
		[ "$CODE" = 200 ] || break
		nl=$(jb "j['nextLink'] or ''")
		p=${nl#http://localhost}
		if [ -n "$nl" ] && [ "$p" = "$nl" ]; then
			echo "nextLink not on http://localhost: $nl" >"$d/bad"
			break
		fi
		case $p in "$1/keys?"*) ;; "") ;; *) echo "nextLink without the prefix: $nl" >"$d/bad"; break ;; esac
	done
}
for m in $(seq 1 25); do
	pagewalk "" "$m" "$W/pages/$m"
done
PAGING_BAD=$(python3 - "$W/pages" "$ALLKEYS" <<'PY'
import json, os, sys
top, total = sys.argv[1], int(sys.argv[2])
out = []
for m in range(1, 26):
    d = os.path.join(top, str(m))
    if os.path.exists(os.path.join(d, "bad")):
        out.append("maxresults=%d: %s" % (m, open(os.path.join(d, "bad")).read().strip()))
        continue
    pages = [json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d))]
    kids = [i["kid"] for p in pages for i in p["value"]]
    errs = []
    if len(kids) != len(set(kids)): errs.append("a key seen twice")
    if len(kids) != total: errs.append("%d keys, not %d" % (len(kids), total))
    if pages[-1].get("nextLink", "missing") is not None: errs.append("the last nextLink is not null")
    if any(len(p["value"]) > m for p in pages): errs.append("a page over maxresults")
    if any(len(p["value"]) != m for p in pages[:-1]): errs.append("a short page before the end")
    if any(not k.startswith("http://localhost/keys/") for k in kids): errs.append("a kid without the root prefix")
    if errs: out.append("maxresults=%d: %s" % (m, ", ".join(errs)))
print("; ".join(out))
PY
)
is "list keys with maxresults 1..25: every key once, full pages, nextLink null at the end" "" "$PAGING_BAD"
check "at least 40 keys paged" test "$ALLKEYS" -ge 40
pagewalk /vaults/main 7 "$W/pages/vm"
n=0
for f in "$W/pages/vm"/*.json; do
	n=$((n + $(json "$f" "sum(1 for x in j['value'] if x['kid'].startswith('http://localhost/vaults/main/keys/'))")))
done
is "paging via /vaults/main: nextLinks and kids keep the prefix" "no $ALLKEYS" "$([ -e "$W/pages/vm/bad" ] && cat "$W/pages/vm/bad" || echo no) $n"
kv GET /keys
is "list keys without maxresults: 25 (Key Vault's default page)" 25 "$(jb "len(j['value'])")"
kv DELETE /keys/pg-01
note main delete pg-01 -
kv DELETE /keys/pg-02
note main delete pg-02 -
kv GET "/deletedkeys?maxresults=1"
is "deletedkeys maxresults=1: one item and a nextLink" "1 True" "$(jb "len(j['value'])") $(jb "j['nextLink'].startswith('http://localhost/deletedkeys?')")"
D1=$(jb "j['value'][0]['recoveryId']")
req GET "$(jb "j['nextLink']" | sed 's|^http://localhost||')"
is "deletedkeys page 2: the other key, then null" "True None" "$(jb "len(j['value']) == 1 and j['value'][0]['recoveryId'] != '$D1'") $(jb "j['nextLink']")"

# ------------------------------------------------------------------ audit
kv GET /keys
req GET "/keybridge/audit?maxresults=1000"
st "GET /keybridge/audit" 200
cp "$W/body" "$W/audit-all.json"
is "audit: one page of up to 1000 records, nextLink null" None "$(jb "j['nextLink']")"
AUD_BAD=$(python3 - "$W/audit-all.json" "$W/aud" "$(id -u)" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))["value"]
errs = []
for line in open(sys.argv[2]):
    f = line.split()
    out = errs
    vault, op, key, version = f[:4]
    if len(f) > 4:   # a refused operation: no "ok" record
        if any(r["op"] == op and r["key"] == key and r["result"] == "ok" and r["vault"] == vault for r in recs):
            errs.append("an ok record for refused %s %s" % (op, key))
        continue
    m = [r for r in recs if r["vault"] == vault and r["op"] == op and r["key"] == key
         and r["result"] == "ok" and (version == "-" or r["version"] == version)]
    want = sum(1 for l in open(sys.argv[2]) if l.split() == f)
    if len(m) != want:
        out.append("%s: %d records, not %d (the key's: %s)" % (line.strip(), len(m), want,
                    [(r["op"], r["version"], r["result"]) for r in recs if r["key"] == key and r["op"] == op]))
    if any(r["uid"] != int(sys.argv[3]) or r["role"] != "Administrator" for r in m):
        out.append("%s: uid/role" % line.strip())
seqs = [r["seq"] for r in recs]
if seqs != sorted(seqs) or len(set(seqs)) != len(seqs): errs.append("seq not increasing")
reads = [r for r in recs if r["op"] in ("get", "list", "list-versions")]
refused = [r for r in recs if r["key"] in ("newkey", "halfway", "adoptx", "adoptn", "a_b") and r["result"] == "ok"]
if refused: errs.append("ok records for refused requests: %s" % refused)
if reads: errs.append("%d records for reads" % len(reads))
print("; ".join(errs[:8]))
PY
)
is "audit: every state change once (rotate and adopt under their names), with op, key, version, result ok, uid and role" "" "$AUD_BAD"
NREC=$(json "$W/audit-all.json" "len(j['value'])")
# paging the audit log with maxresults=7 gives the same records
p="/keybridge/audit?maxresults=7"; : >"$W/aud-pages"; n=0
while [ -n "$p" ] && [ $n -lt 500 ]; do
	req GET "$p"
	n=$((n + 1))
	jb "'\\n'.join(json.dumps(r, sort_keys=True) for r in j['value'])" | sed 's/\\n/\n/g' | grep . >>"$W/aud-pages"
	p=$(jb "j['nextLink'] or ''" | sed 's|^http://localhost||')
done
json "$W/audit-all.json" "'\\n'.join(json.dumps(r, sort_keys=True) for r in j['value'])" | sed 's/\\n/\n/g' >"$W/aud-one"
check "audit paging with maxresults=7 and nextLink: the same records in the same order" cmp -s "$W/aud-one" "$W/aud-pages"
# A full last page may be followed by an empty one.
is "audit paging: $(( (NREC + 6) / 7 )) pages" True \
    "$([ $n -eq $(( (NREC + 6) / 7 )) ] || { [ $((NREC % 7)) -eq 0 ] && [ $n -eq $((NREC / 7 + 1)) ]; } && echo True || echo "False ($n)")"
req GET "/keybridge/audit?maxresults=1001"
kverr "audit maxresults=1001" 400 BadParameter
req GET "/keybridge/audit?vault=locked&maxresults=1000"
is "audit vault=locked: only its records" True "$(jb "len(j['value']) >= 4 and all(r['vault'] == 'locked' for r in j['value'])")"

# ------------------------------------------------------------------ store locked
# Another process holds the store's write lock past the agent's busy
# timeout (5 s): a create fails with 503 ServiceUnavailable and a
# Retry-After (not a 500, not a remote vault's 502), and leaves nothing in
# the store or on the token.
N_LOCK=$(objects "$W")
check "another process holds the store's write lock" lock_store "$W/state/vaults.db"
req POST "/keys/lockedout/create?$AV" -D "$W/hdr" \
    -H 'Content-Type: application/json' --data-binary '{"kty": "oct", "key_size": 128}'
kverr "create while another process locks the store" 503 ServiceUnavailable
is "the message names the store and the lock, and says to try again" True \
    "$(jb "'vault store' in j['error']['message'] and 'locked' in j['error']['message'] and 'try again' in j['error']['message']")"
check "the 503 says when to try again (Retry-After: 2)" \
    grep -qi '^Retry-After: 2.$' "$W/hdr"
unlock_store
kv GET /keys/lockedout
kverr "after the lock: the key was not made" 404 KeyNotFound
is "after the lock: no token object was made" "$N_LOCK" "$(objects "$W")"

# ------------------------------------------------------------------ purge due at start
kv POST /keys/due/create '{"kty": "oct", "key_size": 128}'
save due
kv DELETE /keys/due
st "delete the key to be purged at start" 200
N_DUE=$(objects "$W")
agent_down
python3 - "$W/state/vaults.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE keys SET scheduled_purge_date = deleted_date - 1 WHERE name = 'due'")
db.commit()
print("# store edited: %d row(s)" % db.total_changes)
PY
agent_up "the agent restarts after the store was edited"
kv GET /deletedkeys/due
kverr "purged at start: not in deletedkeys" 404 KeyNotFound
is "purged at start: its token object is gone" $((N_DUE - 1)) "$(objects "$W")"
if [ -n "$P11" ]; then
	p11all kb1 "$W/user.pin"
	is "purged at start: pkcs11-tool finds nothing labelled due" 0 "$(grep -cE 'label: *due$' "$W/p11")"
fi
req GET "/keybridge/audit?maxresults=1000"
is "purged at start: an audit record" True "$(jb "any(r['op'] == 'purge' and r['key'] == 'due' and r['result'] == 'ok' for r in j['value'])")"
kv GET /deletedkeys/pg-01
st "a key not due is still deleted" 200

# ------------------------------------------------------------------ roles
if [ "$(id -u)" != 0 ] || ! setpriv --reuid=$ROLE_UID --regid=$ROLE_UID --clear-groups true 2>/dev/null; then
	skip "the role matrix" "needs root (and setpriv) to act as uid $ROLE_UID"
	done_testing
fi
# as UID METHOD PATH [JSON]: a request from another uid
as() {
	local u=$1 m=$2 p=$3
	case $p in /keybridge/*) ;; *\?*) p="$p&$AV" ;; *) p="$p?$AV" ;; esac
	if [ $# -gt 3 ]; then
		CODE=$(setpriv --reuid="$u" --regid="$u" --clear-groups curl -s -o - -w '\n%{http_code}' -X "$m" \
		    --unix-socket "$S" -H 'Content-Type: application/json' --data-binary "$4" "http://localhost$p")
	else
		CODE=$(setpriv --reuid="$u" --regid="$u" --clear-groups curl -s -o - -w '\n%{http_code}' -X "$m" \
		    --unix-socket "$S" "http://localhost$p")
	fi
	head -n -1 <<<"$CODE" >"$W/body"
	CODE=$(tail -n 1 <<<"$CODE")
}
# Setup as the agent's uid: a key to read and use, deleted keys to read
# and purge, foreign objects to adopt.
kv POST /keys/rm-ec/create '{"kty": "EC"}'
save rm-ec
kv POST /keys/rm-del/create '{"kty": "oct", "key_size": 128}'
kv POST /keys/rm-enc/create '{"kty": "oct", "key_size": 128}'
kv DELETE /keys/rm-del
for role in Reader Contributor Owner Administrator; do
	kv POST "/keys/rm-p-$role/create" '{"kty": "oct", "key_size": 128}'
	kv DELETE "/keys/rm-p-$role"
	[ -n "$P11" ] && p11gen --keypairgen --key-type EC:prime256v1 --label "fo-$role" --id 77
done
kv POST /keys/rm-ec/sign "{\"alg\": \"ES256\", \"value\": \"$DG256\"}"
RM_SIG=$(jb "j['value']")

# matrix ROLE: every operation class as uid $ROLE_UID holding ROLE
matrix() {
	local role=$1 rd=yes wr=no cr=no pu=no ad=no line n=0 bad="" denied=""
	case $role in
	Contributor) wr=yes; cr=yes ;;
	Owner) wr=yes; cr=yes; pu=yes ;;
	Administrator) wr=yes; cr=yes; pu=yes; ad=yes ;;
	esac
	local adopt_uri="pkcs11:object=fo-$role;type=private"
	while IFS='|' read -r cls op m p body; do
		[ -z "$cls" ] && continue
		[ -z "$P11" ] && [ "$op" = adopt ] && continue
		local want
		case $cls in read) want=$rd ;; write) want=$wr ;; crypto) want=$cr ;; purge) want=$pu ;; admin) want=$ad ;; esac
		p=${p//@R@/$role}
		body=${body//@R@/$role}
		body=${body//@DG@/$DG256}
		body=${body//@SIG@/$RM_SIG}
		body=${body//@URI@/$adopt_uri}
		if [ -n "$body" ]; then as $ROLE_UID "$m" "$p" "$body"; else as $ROLE_UID "$m" "$p"; fi
		n=$((n + 1))
		if [ "$want" = yes ]; then
			case $CODE in 2??) ;; *) bad="$bad $op($m $p)=$CODE" ;; esac
		else
			if [ "$CODE" != 403 ] || [ "$(jb "j['error']['code']" 2>/dev/null)" != Forbidden ]; then
				bad="$bad $op($m $p)=$CODE"
			fi
			denied="$denied $op"
		fi
	done <<'OPS'
read|get|GET|/keys/rm-ec|
read|get|GET|/keys/rm-ec/|
read|list|GET|/keys|
read|list-versions|GET|/keys/rm-ec/versions|
read|list-deleted|GET|/deletedkeys|
read|get-deleted|GET|/deletedkeys/rm-del|
read|status|GET|/keybridge/status|
read|vaults|GET|/keybridge/vaults|
write|create|POST|/keys/rm-new-@R@/create|{"kty": "oct", "key_size": 128}
write|update|PATCH|/keys/rm-ec|{"tags": {"by": "@R@"}}
write|rotate|POST|/keys/rm-ec/rotate|
write|delete|DELETE|/keys/rm-new-@R@|
write|recover|POST|/deletedkeys/rm-new-@R@/recover|
crypto|sign|POST|/keys/rm-ec/sign|{"alg": "ES256", "value": "@DG@"}
crypto|verify|POST|/keys/rm-ec/verify|{"alg": "ES256", "digest": "@DG@", "value": "@SIG@"}
crypto|encrypt|POST|/keys/rm-enc/encrypt|{"alg": "A128GCM", "value": "@DG@"}
purge|purge|DELETE|/deletedkeys/rm-p-@R@|
purge|adopt|POST|/keybridge/vaults/main/adopt|{"uri": "@URI@", "name": "rm-ad-@R@"}
admin|audit|GET|/keybridge/audit|
admin|tokens|GET|/keybridge/tokens|
OPS
	is "role $role: each operation allowed or denied (403 Forbidden) per the matrix" "" "$bad"
	MATRIX_DENIED=$denied
}
# denials_audited ROLE OPS...: a denied record for each op, uid and role
denials_audited() {
	local role=$1
	shift
	req GET "/keybridge/audit?maxresults=1000"
	is "role $role: each denial is in the audit log with uid $ROLE_UID, the role and the op" "" \
	    "$(python3 - "$W/body" "$role" "$@" <<PY
import json, sys
recs = json.load(open(sys.argv[1]))["value"]
role = sys.argv[2]
# Agent-wide operations (vault "*") are recorded with role none.
agentwide = ("audit", "tokens", "status", "vaults")
missing = [op for op in sys.argv[3:] if not any(r["uid"] == $ROLE_UID and r["result"] == "denied"
           and r["op"] == op and (r["role"] == role and r["vault"] == "main" if op not in agentwide
           else r["vault"] == "*") for r in recs)]
print(" ".join(missing))
PY
)"
}

for role in Reader Contributor Owner Administrator; do
	lc=$(tr '[:upper:]' '[:lower:]' <<<"$role")
	case $role in Administrator) lc=administrators ;; *) lc="${lc}s" ;; esac
	agent_down
	writeconf "$lc = $ROLE_UID"
	agent_up "restart with $lc = $ROLE_UID"
	matrix "$role"
	# shellcheck disable=SC2086
	denials_audited "$role" $MATRIX_DENIED
	as $ROLE_UID GET /vaults/locked/keys
	kverr "role $role on main: no role on vault locked" 403 Forbidden
done
req GET /keys/rm-new-Owner?$AV
is "the Owner's create, delete and recover left a key" 200 "$CODE"
req GET /keys/rm-new-Reader?$AV
is "the Reader's create made nothing" 404 "$CODE"
req GET "/deletedkeys/rm-p-Contributor?$AV"
is "the Contributor's purge was refused: still deleted" 200 "$CODE"
req GET "/deletedkeys/rm-p-Owner?$AV"
is "the Owner's purge happened" 404 "$CODE"
if [ -n "$P11" ]; then
	req GET "/keys/rm-ad-Owner?$AV"
	is "the Owner adopted fo-Owner" "200 EC-HSM" "$CODE $(jb "j['key']['kty']")"
	p11all kb1 "$W/user.pin"
	is "the Contributor's adopt left fo-Contributor alone" 2 "$(pyq p11 "$W/p11" fo-Contributor 77 | cut -d' ' -f1)"
fi

# an unlisted uid: 403 everywhere, /keybridge/status included
bad=""
for p in "GET /keybridge/status" "GET /keybridge/vaults" "GET /keys" "GET /keys/rm-ec" "POST /keys/rm-x/create" "GET /keybridge/audit"; do
	set -- $p
	if [ "$1" = POST ]; then as $OTHER_UID "$1" "$2" '{"kty": "EC"}'; else as $OTHER_UID "$1" "$2"; fi
	[ "$CODE" = 403 ] && [ "$(jb "j['error']['code']" 2>/dev/null)" = Forbidden ] || bad="$bad $p=$CODE"
done
is "an unlisted uid gets 403 Forbidden on everything" "" "$bad"
req GET "/keybridge/audit?maxresults=1000"
is "the unlisted uid's denials are audited with role none, one per request" 6 \
    "$(jb "sum(1 for r in j['value'] if r['uid'] == $OTHER_UID and r['result'] == 'denied' and r['role'] == 'none')")"
is "the unlisted uid's denial of a create is audited as op create" True \
    "$(jb "any(r['uid'] == $OTHER_UID and r['result'] == 'denied' and r['op'] == 'create' for r in j['value'])")"

done_testing
