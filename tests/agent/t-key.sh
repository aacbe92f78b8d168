#!/bin/bash
# keybridge key ... and keybridge audit list against a real agent with two
# vaults on two SoftHSM2 tokens: every command, every error path and its
# exit code, --json parsed and compared with the tables, the PKCS#11 URI
# of a version checked with pkcs11-tool, paging over 30+ keys, the audit
# log, and a second uid for denials.
. "$(dirname "$0")/lib.sh"
need curl

P11=$(command -v pkcs11-tool || true)

mktoken "$W" kb1
mktoken "$W" kb2 2
# A socket another uid can reach (the roles decide, not the file mode).
PD=$(mktemp -d /tmp/kbkey.XXXXXX)
chmod 711 "$PD"
trap 'cleanup; rm -rf "$PD"' EXIT
S=$PD/agent.sock
mkvaultconf "$W/agent.conf" "$S" "readers = 65534"
must_start "agent starts with two vaults" "$W/agent.conf" "$W/agent.err" \
    wait_socket "$S"

# k ARGS...: keybridge on our socket; stdout $W/out, stderr $W/err, $RC.
k() {
	"$KB" --socket "$S" "$@" >"$W/out" 2>"$W/err"
	RC=$?
}
# expect CODE NAME: the last k exited CODE (shows stderr otherwise).
expect() {
	if [ "$RC" -eq "$1" ]; then
		ok 0 "$2: exit $1"
	else
		ok 1 "$2: exit $1"
		diag "got exit $RC: $(cat "$W/err")"
	fi
}
# one_sentence: stderr is one line starting with keybridge.
one_sentence() {
	test "$(wc -l <"$W/err")" -eq 1 && grep -q '^keybridge' "$W/err"
}
# field NAME: a value from `key show`'s table in $W/out.
field() {
	sed -n "s/^$1  *//p" "$W/out" | head -n1
}
# p11 ARGS...: pkcs11-tool on token kb1 without login (public objects).
p11() {
	"$P11" --module "$SOFTHSM_MODULE" --token-label "${P11TOKEN:-kb1}" "$@" 2>/dev/null
}
# p11login ARGS...: with the user PIN from the environment, never argv.
p11login() {
	KB_T_PIN=$(cat "$W/user.pin") "$P11" --module "$SOFTHSM_MODULE" \
	    --token-label kb1 --login --pin env:KB_T_PIN "$@" 2>/dev/null
}

# --- help
for c in create list show versions update rotate delete recover purge adopt; do
	"$KB" key $c --help >"$W/h" 2>&1
	check "key $c --help: exit 0 and usage" bash -c "test $? -eq 0 && grep -q '^Usage: keybridge key $c' '$W/h'"
	check "key $c --help: documents --vault" grep -q -- '--vault' "$W/h"
done
"$KB" audit list --help >"$W/h" 2>&1
check "audit list --help" grep -q '^Usage: keybridge audit list' "$W/h"
"$KB" key >/dev/null 2>"$W/err"
check "'key' alone: exit 2 and lists its commands" bash -c "test $? -eq 2 && grep -q 'key create' '$W/err'"

# --- checked before the agent is contacted: a dead socket still gives 13
D=$W/dead.sock
bad() {	# bad NAME CODE ARGS...
	local name=$1 code=$2
	shift 2
	"$KB" --socket "$D" "$@" >"$W/out" 2>"$W/err"
	RC=$?
	expect "$code" "$name"
	check "$name: one sentence" one_sentence
}
bad "bad key name" 13 key create 'bad_name' --type rsa
check "bad key name: the sentence says what a name is" grep -q "letters, digits and '-'" "$W/err"
bad "key name of 128 characters" 13 key show "$(printf 'a%.0s' $(seq 128))"
bad "bad vault name" 13 key list --vault 'x'
bad "bad version" 13 key show k1 --version 'a/b'
bad "bad type" 13 key create k1 --type dsa
bad "bad RSA size" 13 key create k1 --type rsa --size 1024
bad "bad AES size" 13 key create k1 --type aes --size 512
bad "size on an EC key" 13 key create k1 --type ec --size 256
bad "bad curve" 13 key create k1 --type ec --curve P-192
bad "curve on an RSA key" 13 key create k1 --type rsa --curve P-256
bad "bad operation" 13 key create k1 --type rsa --ops encrypt,fly
bad "bad time" 13 key create k1 --type rsa --expires tomorrow
bad "bad relative time" 13 key create k1 --type rsa --expires +3y
TAGS16=()
for i in $(seq 1 16); do TAGS16+=(--tag "t$i=v"); done
bad "16 tags" 13 key create k1 --type aes "${TAGS16[@]}"
check "16 tags: names the limit" grep -q 15 "$W/err"
LONG=$(printf 'x%.0s' $(seq 257))
bad "tag value of 257 characters" 13 key create k1 --type aes --tag "a=$LONG"
bad "tag name of 257 characters" 13 key create k1 --type aes --tag "$LONG=a"
bad "tag without =" 13 key create k1 --type aes --tag novalue
bad "adopt: not a PKCS#11 URI" 13 key adopt "token=kb1" k1
bad "adopt: a PIN in the URI" 13 key adopt "pkcs11:token=kb1;object=x?pin-value=1234" k1
bad "create without --type" 2 key create k1
bad "create without NAME" 2 key create --type rsa
bad "an option of another command" 2 key list --type rsa
bad "update with nothing to do" 2 key update k1
bad "update --enable --disable" 2 key update k1 --enable --disable
bad "too many arguments" 2 key show k1 k2
bad "agent unreachable" 4 key list
check "agent unreachable: names the socket" grep -q "cannot reach the agent at $D" "$W/err"

# --- create: one key of each type
k key create k-rsa --type rsa --size 3072 --ops sign,verify,encrypt,decrypt \
    --tag env=test --tag owner=team-a --expires 2030-01-02T03:04:05Z
expect 0 "create RSA-3072 with ops, tags and expiry"
check "create: the table names the key" test "$(field name)" = k-rsa
check "create: size 3072 in the table" test "$(field size)" = 3072
check "create: expiry as RFC 3339 UTC" test "$(field expires)" = 2030-01-02T03:04:05Z
check "create: the version's PKCS#11 URI" bash -c "grep -q '^pkcs11 uri  *pkcs11:.*token=kb1.*;id=%.*;object=k-rsa' '$W/out'"
RSA_V1=$(field version)
check "create: a 32-character version" grep -qE '^[0-9a-f]{32}$' <<<"$RSA_V1"
k key show k-rsa --json
expect 0 "show --json"
cp "$W/out" "$W/rsa.json"
check "show --json: KeyBundle kty RSA-HSM" test "$(json "$W/rsa.json" "j['key']['kty']")" = RSA-HSM
check "show --json: kid ends with the version the table showed" \
    test "$(json "$W/rsa.json" "j['key']['kid'].split('/')[-1]")" = "$RSA_V1"
check "show --json: the kid is the agent's URL of the key" \
    test "$(json "$W/rsa.json" "j['key']['kid'].startswith('http://localhost/keys/k-rsa/')")" = True
check "show --json: a 3072-bit modulus" \
    test "$(json "$W/rsa.json" "len(__import__('base64').urlsafe_b64decode(j['key']['n'] + '==').lstrip(b'\\0'))")" = 384
check "show --json: key_ops as asked" \
    test "$(json "$W/rsa.json" "sorted(j['key']['key_ops'])")" = "['decrypt', 'encrypt', 'sign', 'verify']"
check "show --json: tags" test "$(json "$W/rsa.json" "sorted(j['tags'].items())")" = "[('env', 'test'), ('owner', 'team-a')]"
check "show --json: exp as Unix seconds" test "$(json "$W/rsa.json" "j['attributes']['exp']")" = 1893553445
check "show --json: recoveryLevel of a 7-day vault" \
    test "$(json "$W/rsa.json" "(j['attributes']['recoveryLevel'], j['attributes']['recoverableDays'])")" = "('CustomizedRecoverable+Purgeable', 7)"
check "show --json: no private parts" test "$(json "$W/rsa.json" "[m for m in ('d','p','q','dp','dq','qi','k') if m in j['key']]")" = "[]"

k key show k-rsa
expect 0 "show"
check "show: the table's kid is the JSON's" test "$(field kid)" = "$(json "$W/rsa.json" "j['key']['kid']")"
check "show: kty" test "$(field kty)" = RSA-HSM
check "show: enabled" test "$(field enabled)" = yes
check "show: tags" test "$(field tags)" = "env=test,owner=team-a"
check "show: created is RFC 3339 UTC" grep -qE '^created +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$W/out"
URI=$(field 'pkcs11 uri')
k key show k-rsa --version "$RSA_V1"
expect 0 "show --version"
check "show --version: the same version" test "$(field version)" = "$RSA_V1"

# The URI names the version's objects on the token: token, id and label.
k --json status
TOKEN_SERIAL=$(json "$W/out" "[t['serial'] for t in j['tokens'] if t['name'] == 't1'][0]")
check "URI: the token's serial" grep -q "serial=$TOKEN_SERIAL" <<<"$URI"
URI_ID=$(sed -n 's/.*;id=\([^;]*\).*/\1/p' <<<"$URI" | tr -d % | tr 'A-F' 'a-f')
check "URI: id is the version's bytes" test "$URI_ID" = "$RSA_V1"
if [ -n "$P11" ]; then
	p11 -O --type pubkey --id "$URI_ID" >"$W/p11"
	check "pkcs11-tool finds the public key by the URI's id" grep -q 'Public Key Object; RSA 3072 bits' "$W/p11"
	check "pkcs11-tool: its label is the key's name" grep -qE '^ *label: *k-rsa$' "$W/p11"
	p11login -O --type privkey --id "$URI_ID" >"$W/p11"
	check "pkcs11-tool finds the private key by the URI's id (login, PIN from env)" grep -qE '^ *label: *k-rsa$' "$W/p11"
else
	skip "pkcs11-tool cross-check of the URI" "pkcs11-tool not installed"
fi

k key create k-ec --type ec --curve P-384 --not-before +1h --expires +30d
expect 0 "create EC P-384 with relative times"
check "create EC: curve in the table" test "$(field curve)" = P-384
k key show k-ec --json
cp "$W/out" "$W/ec.json"
NOW=$(date +%s)
check "create EC: JSON crv and kty" test "$(json "$W/ec.json" "(j['key']['kty'], j['key']['crv'])")" = "('EC-HSM', 'P-384')"
check "create EC: +1h is an hour from now" test "$(json "$W/ec.json" "abs(j['attributes']['nbf'] - $NOW - 3600) < 120")" = True
check "create EC: +30d is 30 days from now" test "$(json "$W/ec.json" "abs(j['attributes']['exp'] - $NOW - 30*86400) < 120")" = True
check "create EC: default key_ops sign, verify" test "$(json "$W/ec.json" "sorted(j['key']['key_ops'])")" = "['sign', 'verify']"
if [ -n "$P11" ]; then
	EC_ID=$(json "$W/ec.json" "j['key']['kid'].split('/')[-1]")
	p11 -O --type pubkey --id "$EC_ID" >"$W/p11"
	check "pkcs11-tool: the EC public key with label k-ec" grep -qE '^ *label: *k-ec$' "$W/p11"
fi

k key create k-aes --type aes --size 128 --disabled
expect 0 "create AES-128 disabled"
check "create AES: disabled in the table" test "$(field enabled)" = no
k key show k-aes --json
check "create AES: oct-HSM, no key material" test "$(json "$W/out" "(j['key']['kty'], 'k' in j['key'])")" = "('oct-HSM', False)"
check "create AES: enabled false" test "$(json "$W/out" "j['attributes']['enabled']")" = False
if [ -n "$P11" ]; then
	AES_ID=$(json "$W/out" "j['key']['kid'].split('/')[-1]")
	p11login -O --type secrkey --id "$AES_ID" >"$W/p11"
	check "pkcs11-tool: the AES secret key with label k-aes" grep -qE '^ *label: *k-aes$' "$W/p11"
fi
k key create k-rsa2 --type RSA
expect 0 "create with Key Vault's kty name (RSA)"
k key create k-ops --type ec --ops encrypt
expect 13 "create EC with encrypt: the agent refuses"
check "create EC with encrypt: Key Vault's message and code" grep -q 'BadParameter' "$W/err"

# --- unknown keys: 9
for c in "show nokey" "versions nokey" "rotate nokey" "delete nokey" "recover nokey" \
    "purge nokey" "update nokey --enable" "show nokey --deleted"; do
	k key $c
	expect 9 "key $c"
	check "key $c: Key Vault's message" grep -q 'KeyNotFound' "$W/err"
done
k key show k-rsa --version 0123456789abcdef0123456789abcdef
expect 9 "show of an unknown version"
k key list --vault nosuchvault
expect 9 "unknown vault"
check "unknown vault: Key Vault-style message" grep -q VaultNotFound "$W/err"

# --- versions and rotate
k key rotate k-rsa
expect 0 "rotate"
RSA_V2=$(field version)
check "rotate: a new version" test -n "$RSA_V2" -a "$RSA_V2" != "$RSA_V1"
check "rotate: same size" test "$(field size)" = 3072
check "rotate: the key's tags" test "$(field tags)" = "env=test,owner=team-a"
k key rotate k-rsa --json
expect 0 "rotate --json"
RSA_V3=$(json "$W/out" "j['key']['kid'].split('/')[-1]")
check "rotate --json: same key_ops" test "$(json "$W/out" "sorted(j['key']['key_ops'])")" = "['decrypt', 'encrypt', 'sign', 'verify']"
k key versions k-rsa
expect 0 "versions"
check "versions: three rows and a header" test "$(wc -l <"$W/out")" -eq 4
for v in "$RSA_V1" "$RSA_V2" "$RSA_V3"; do
	check "versions: lists $v" grep -q "^$v " "$W/out"
done
k key versions k-rsa --json
check "versions --json: an array of three KeyItems with full kids" \
    test "$(json "$W/out" "sorted(i['kid'].split('/')[-1] for i in j) == sorted(['$RSA_V1','$RSA_V2','$RSA_V3'])")" = True
k key show k-rsa
check "show: the latest version after rotate" test "$(field version)" = "$RSA_V3"
k key create k-rsa --type rsa --tag env=test --tag owner=team-a
expect 0 "create on an existing name adds a version"
check "create on an existing name: a 2048-bit version" test "$(field size)" = 2048
k key versions k-rsa --json
check "create on an existing name: four versions" test "$(json "$W/out" "len(j)")" = 4

# --- update
k key update k-rsa --tag stage=blue --untag owner
expect 0 "update: add and remove tags"
check "update: tags merged with the current ones" test "$(field tags)" = "env=test,stage=blue"
k key show k-rsa --json
check "update: the agent keeps the merged tags" \
    test "$(json "$W/out" "sorted(j['tags'].items())")" = "[('env', 'test'), ('stage', 'blue')]"
k key update k-rsa --tag env=prod
check "update: a tag is replaced" test "$(field tags)" = "env=prod,stage=blue"
k key update k-rsa --disable --expires 2031-01-01T00:00:00Z
expect 0 "update: disable and expiry"
check "update: disabled" test "$(field enabled)" = no
check "update: expiry" test "$(field expires)" = 2031-01-01T00:00:00Z
k key update k-rsa --enable --expires none
expect 0 "update: enable, remove the expiry"
check "update: enabled" test "$(field enabled)" = yes
check "update: no expiry" test "$(field expires)" = -
k key update k-rsa --version "$RSA_V1" --tag old=yes --disable
expect 0 "update --version"
check "update --version: that version" test "$(field version)" = "$RSA_V1"
k key show k-rsa --version "$RSA_V1" --json
check "update --version: its own tags and state" \
    test "$(json "$W/out" "(j['tags'].get('old'), j['attributes']['enabled'])")" = "('yes', False)"
k key show k-rsa --json
check "update --version: the latest is untouched" test "$(json "$W/out" "'old' in j.get('tags', {})")" = False
TAGS14=()
for i in $(seq 1 14); do TAGS14+=(--tag "u$i=v"); done
k key update k-rsa "${TAGS14[@]}"
expect 13 "update: 2 + 14 tags is over 15"
k key show k-rsa --json
check "update over the limit: nothing sent, tags unchanged" test "$(json "$W/out" "len(j['tags'])")" = 2
k key update k-rsa --ops sign,verify
expect 0 "update: key_ops"
check "update: key_ops in the table" test "$(field key_ops)" = "sign,verify"

# --- delete, list --deleted, recover, purge
k key delete k-aes
expect 0 "delete"
check "delete: the table shows the purge date" grep -qE '^purge date +[0-9]{4}-' "$W/out"
k key delete k-ec --json
expect 0 "delete --json"
cp "$W/out" "$W/del.json"
check "delete --json: DeletedKeyBundle with recoveryId" \
    test "$(json "$W/del.json" "j['recoveryId'].endswith('/deletedkeys/k-ec')")" = True
check "delete --json: purge 7 days after deletion" \
    test "$(json "$W/del.json" "j['scheduledPurgeDate'] - j['deletedDate']")" = $((7 * 86400))
k key delete k-ec
expect 9 "delete twice"
k key show k-ec
expect 9 "show of a deleted key"
k key show k-ec --deleted
expect 0 "show --deleted"
check "show --deleted: the recovery id" test "$(field 'recovery id')" = "$(json "$W/del.json" "j['recoveryId']")"
k key list --deleted
expect 0 "list --deleted"
check "list --deleted: both deleted keys" bash -c "grep -q '^k-ec ' '$W/out' && grep -q '^k-aes ' '$W/out'"
k key list --deleted --json
check "list --deleted --json: DeletedKeyItems" \
    test "$(json "$W/out" "sorted(i['recoveryId'].split('/')[-1] for i in j)")" = "['k-aes', 'k-ec']"
k key list
check "list: deleted keys are not listed" bash -c "! grep -q '^k-ec ' '$W/out'"
k key create k-ec --type ec
expect 11 "create on a deleted name"
check "create on a deleted name: Key Vault's code" grep -q 'Conflict' "$W/err"
k key recover k-ec
expect 0 "recover"
check "recover: the key is back" test "$(field name)" = k-ec
k key show k-ec
expect 0 "show after recover"
k key recover k-ec
expect 9 "recover of an active key"
k key purge k-rsa2
expect 9 "purge of an active key"
check "purge of an active key: the key is still there" "$KB" --socket "$S" key show k-rsa2
k key purge k-aes
expect 0 "purge"
check "purge: one line" grep -q '^purged key k-aes' "$W/out"
k key purge k-aes
expect 9 "purge twice"
k key show k-aes --deleted
expect 9 "show --deleted after purge"
if [ -n "$P11" ]; then
	p11login -O --type secrkey >"$W/p11"
	check "purge: the AES object is gone from the token" bash -c "! grep -qE '^ *label: *k-aes$' '$W/p11'"
fi
k key delete k-rsa2
k key purge k-rsa2 --json
expect 0 "purge --json"
check "purge --json: prints nothing (204)" test ! -s "$W/out"
k key create k-aes --type aes
expect 0 "a purged name is free again"

# --- the second vault: paths under /vaults/locked, purge protection
k key create p1 --type aes --vault locked
expect 0 "create in vault locked"
check "vault locked: kid under /vaults/locked" bash -c "grep -q '^kid  *http://localhost/vaults/locked/keys/p1/' '$W/out'"
check "vault locked: the URI names token kb2" bash -c "grep -q '^pkcs11 uri .*token=kb2' '$W/out'"
k key list
check "the default vault does not list p1" bash -c "! grep -q '^p1 ' '$W/out'"
k key list --vault main
check "--vault main is the default vault" bash -c "grep -q '^k-rsa ' '$W/out'"
k key show p1 --vault locked --json
check "vault locked: recoveryLevel without Purgeable" \
    test "$(json "$W/out" "j['attributes']['recoveryLevel']")" = CustomizedRecoverable
k key delete p1 --vault locked
expect 0 "delete under purge protection"
k key purge p1 --vault locked
expect 10 "purge under purge protection"
check "purge under purge protection: Key Vault's message" grep -q 'Forbidden' "$W/err"
k key show p1 --vault locked --deleted
expect 0 "still recoverable after the refused purge"

# --- adopt
if [ -n "$P11" ]; then
	p11login --keypairgen --key-type EC:prime256v1 --label foreign --id 0a0b0c >"$W/gen" 2>&1
	k key adopt "pkcs11:token=kb1;object=foreign;id=%0A%0B%0C" adopted
	expect 0 "adopt (default vault from GET /keybridge/vaults)"
	check "adopt: EC-HSM P-256" test "$(field kty)/$(field curve)" = EC-HSM/P-256
	AD_V=$(field version)
	p11 -O --type pubkey --id "$AD_V" >"$W/p11"
	check "adopt: the object carries the new label and id" grep -qE '^ *label: *adopted$' "$W/p11"
	k key adopt "pkcs11:token=kb1;object=nothing-here" adopted2
	expect 9 "adopt of no object"
	k key versions adopted
	check "adopt: the version is listed" grep -q "^$AD_V " "$W/out"
else
	skip "adopt" "pkcs11-tool not installed"
fi

# --- paging: 31 more keys make three pages of 25
for i in $(seq -w 1 31); do
	"$KB" --socket "$S" key create "page-$i" --type aes --size 128 >/dev/null 2>>"$W/page.err" || echo "page-$i" >>"$W/page.fail"
done
check "31 keys created" test ! -e "$W/page.fail"
k key list --json
expect 0 "list --json over pages"
cp "$W/out" "$W/list.json"
check "list --json: one array with every key across pages" \
    test "$(json "$W/list.json" "len([i for i in j if '/keys/page-' in i['kid']])")" = 31
check "list --json: no key twice" test "$(json "$W/list.json" "len(j) == len(set(i['kid'] for i in j))")" = True
k key list
expect 0 "list over pages"
check "list: the table has the same names as the JSON" \
    test "$(tail -n +2 "$W/out" | awk '{print $1}' | sort | tr '\n' ' ')" = \
    "$(json "$W/list.json" "' '.join(sorted(i['kid'].split('/')[-1] for i in j)) + ' '")"
check "list: header" grep -q '^NAME  *ENABLED  *CREATED  *UPDATED  *EXPIRES  *TAGS' "$W/out"
for i in $(seq 1 27); do "$KB" --socket "$S" key rotate k-aes >/dev/null 2>&1; done
k key versions k-aes --json
check "versions over pages: 28 versions" test "$(json "$W/out" "len(j)")" = 28

# --- another uid: Reader on main, nothing on locked
if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$KB" 2>/dev/null; then
	nobody() {
		setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/ \
		    "$KB" --socket "$S" "$@" >"$W/out" 2>"$W/err"
		RC=$?
	}
	nobody key list
	expect 0 "a Reader lists keys"
	nobody key show k-rsa
	expect 0 "a Reader shows a key"
	nobody key create r1 --type aes
	expect 10 "a Reader cannot create"
	check "a Reader cannot create: Key Vault's Forbidden" grep -q Forbidden "$W/err"
	nobody key delete k-rsa
	expect 10 "a Reader cannot delete"
	nobody key list --vault locked
	expect 10 "no role on vault locked: denied"
	nobody audit list
	expect 10 "a Reader cannot read the audit log"
else
	skip "denials for another uid" "setpriv cannot run $KB as uid 65534"
fi

# --- audit
k audit list
expect 0 "audit list"
check "audit list: header" grep -q '^SEQ  *TIME  *UID  *ROLE  *VAULT  *OP  *KEY  *VERSION  *RESULT' "$W/out"
check "audit list: the purge of k-aes" grep -qE ' main +purge +k-aes ' "$W/out"
check "audit list: the refused purge in vault locked" grep -qE ' locked +purge +p1 ' "$W/out"
k audit list --json
expect 0 "audit list --json"
cp "$W/out" "$W/audit.jsonl"
check "audit --json: JSON lines" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) > 40
assert all(set(("seq","time","uid","role","vault","op","result")) <= set(r) for r in recs)
assert [r["seq"] for r in recs] == sorted(r["seq"] for r in recs)
' "$W/audit.jsonl"
check "audit --json: creates, deletes, recovers and purges are recorded" python3 -c '
import json, sys
ops = {(r["op"], r.get("key")) for r in map(json.loads, open(sys.argv[1]))}
for want in [("create","k-rsa"), ("update","k-rsa"), ("delete","k-ec"),
             ("recover","k-ec"), ("purge","k-aes"), ("delete","p1")]:
    assert want in ops, want
' "$W/audit.jsonl"
"$KB" --socket "$S" audit list >"$W/audit.txt"
check "audit: table rows = JSON lines" test "$(($(wc -l <"$W/audit.txt") - 1))" -eq "$(wc -l <"$W/audit.jsonl")"
if command -v setpriv >/dev/null; then
	check "audit: the denial of uid 65534 is recorded" python3 -c '
import json, sys
assert any(r["uid"] == 65534 and r["result"] != "ok" for r in map(json.loads, open(sys.argv[1])))
' "$W/audit.jsonl"
fi
k audit list --limit 3 --json
check "audit --limit 3: three lines" test "$(wc -l <"$W/out")" -eq 3
check "audit --limit 3: the most recent ones" \
    test "$(tail -n1 "$W/out")" = "$(tail -n1 "$W/audit.jsonl")"
k audit list --vault locked --json
check "audit --vault locked: only its records" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert recs and all(r["vault"] == "locked" for r in recs)
' "$W/out"
k audit list --limit 0
expect 13 "audit --limit 0"

# The store locked by another process: after its 5 s busy timeout the
# agent answers 503 with Retry-After; kv-client does not resend a create
# blindly, finds no new version, and the command ends with exit 15 (try
# again later), having made nothing.
check "another process holds the store's write lock" lock_store "$W/state/vaults.db"
N_BUSY=$(objects "$W")
k key create k-busy --type aes
expect 15 "key create while another process locks the store"
check "key create on a locked store: one sentence" one_sentence
check "key create on a locked store: it says to try again" \
    grep -q 'locked.*try again' "$W/err"
unlock_store
k key show k-busy
expect 9 "after the lock: k-busy was not made"
check "after the lock: no token object was made" test "$N_BUSY" -eq "$(objects "$W")"
k key create k-busy --type aes
expect 0 "the same create once the lock is gone"

check "no PIN in the agent's log" bash -c "! grep -qe '$(cat "$W/user.pin")' -e '$(cat "$W/user2.pin")' '$W/agent.err'"

done_testing
