#!/bin/bash
# t-remote.sh: remote vaults end to end (issue 5, point 4).  A second
# keybridged with HTTPS plays the Azure vault "kb2.vault.azure.net" (its
# certificate from a CA made here with openssl(1), the name pinned to
# 127.0.0.1 with connect_to); the first agent adds it with `keybridge
# vault add` and every `keybridge key ...` command runs on it through the
# first agent.  Checked on the second agent's own socket: the keys are
# there.  Checked in the first agent's config file: what vault add wrote
# and vault remove took out, and nothing on bad input.
. "$(dirname "$0")/lib.sh"
need openssl
need curl

A=$W/a
mkdir -p "$A"
mktoken "$W" kba
mkremote
mkotherca "$TLS"
"$KBD" --config "$B/agent.conf" 2>"$B/agent.err" &
BPID=$!
PIDS+=("$BPID")
check "agent B (the remote vault) starts" wait_socket "$B/agent.sock"
remote_url

# A: the agent under test, with a local vault and a role for nobody.
NOBODY=$(id -u nobody 2>/dev/null || echo 65534)
cat >"$A/agent.conf" <<CONF
# agent A, written by t-remote.sh
[agent]
socket = $A/agent.sock
state_dir = $A/state
log_level = debug
socket_mode = 0666

[token kb]
label = kba
pin_file = $W/user.pin

[vault local]
token = kb
default = true
retention_days = 7
readers = $NOBODY
CONF
cp "$A/agent.conf" "$W/a.conf.orig"
chmod 711 "$W" "$A"     # other uids reach the socket; the roles decide
start_agent "$A/agent.conf" "$A/agent.err"
check "agent A starts" wait_socket "$A/agent.sock"
kb() { "$KB" --socket "$A/agent.sock" "$@"; }
bkey() {	# bkey NAME: GET the key on B's own socket; prints the HTTP status
	curl -s -o "$W/bkey.json" -w '%{http_code}' --unix-socket "$B/agent.sock" \
	    "http://l/keys/$1?api-version=7.6"
}
conf_same() { cmp -s "$A/agent.conf" "$W/a.conf.orig"; }
# What a refused vault add must leave as it was: the config and the
# agent's files (snapshot taken by mark).
REF_CONF=$W/a.conf.orig; REF_FILES=
mark() { cp "$A/agent.conf" "$W/a.conf.ref"; REF_CONF=$W/a.conf.ref
	REF_FILES=$(ls -A "$A/state/remote" 2>/dev/null); }

# ---- bad input: one sentence, an exit code, nothing stored
expect() {	# expect NAME CODE PATTERN CMD...: exit code and sentence
	local name=$1 code=$2 pat=$3 rc
	shift 3
	"$@" >"$W/out" 2>"$W/err"
	rc=$?
	if [ "$rc" -eq "$code" ] && grep -qiE "$pat" "$W/err" &&
	    cmp -s "$A/agent.conf" "$REF_CONF" &&
	    [ "$(ls -A "$A/state/remote" 2>/dev/null)" = "$REF_FILES" ]; then
		ok 0 "$name (exit $rc)"
	else
		ok 1 "$name"
		diag "exit $rc, want $code; stderr: $(cat "$W/err")"
		cmp -s "$A/agent.conf" "$REF_CONF" || diag "the config changed: $(diff "$REF_CONF" "$A/agent.conf")"
		ls -la "$A/state/remote" 2>/dev/null | sed 's/^/# /'
	fi
}
expect "vault add: a url that is not https" 13 "https" \
    kb vault add azb --url "http://kb2.vault.azure.net:$BPORT" \
    --token-file "$W/admin.token" --ca-file "$TLS/ca.pem" --connect-to 127.0.0.1
expect "vault add: no credential" 2 "credential" \
    kb vault add azb --url "$RURL"
expect "vault add: two credentials" 2 "exactly one credential" \
    kb vault add azb --url "$RURL" --token-file "$W/admin.token" --managed-identity
(umask 022; printf '%s' "$T_ADMIN" >"$W/open.token")
expect "vault add: a token file others can read" 13 "group|others|readable|mode" \
    kb vault add azb --url "$RURL" --token-file "$W/open.token" \
    --ca-file "$TLS/ca.pem" --connect-to 127.0.0.1
expect "vault add: a token file that does not exist" 3 "cannot find" \
    kb vault add azb --url "$RURL" --token-file "$W/none.token"
# An expired JWT: header.payload.signature with exp in 2020.
b64() { printf '%s' "$1" | base64 | tr '+/' '-_' | tr -d '=\n'; }
(umask 077; printf '%s.%s.c2ln' "$(b64 '{"alg":"RS256","typ":"JWT"}')" \
    "$(b64 '{"aud":"https://vault.azure.net","exp":1577836800}')" >"$W/expired.token")
expect "vault add: an expired token file" 13 "expired" \
    kb vault add azb --url "$RURL" --token-file "$W/expired.token" \
    --ca-file "$TLS/ca.pem" --connect-to 127.0.0.1
expect "vault add: a CA that did not sign the vault's certificate" 5 "certif|TLS|SSL|verif" \
    kb vault add azb --url "$RURL" --token-file "$W/admin.token" \
    --ca-file "$TLS/other.pem" --connect-to 127.0.0.1
expect "vault add: a host outside the challenge's resource (127.0.0.1 asks for vault.azure.net)" 10 "resource|domain|vault.azure.net" \
    kb vault add azb --url "https://127.0.0.1:$BPORT" --token-file "$W/admin.token" \
    --ca-file "$TLS/ca.pem"
expect "vault add: a name the local vault has" 11 "already" \
    kb vault add local --url "$RURL" --token-file "$W/admin.token" \
    --ca-file "$TLS/ca.pem" --connect-to 127.0.0.1
(umask 077; tok >"$W/wrong.token")
expect "vault add: a token B does not know" 10 "401|Unauthorized|not valid|denied" \
    kb vault add azb --url "$RURL" --token-file "$W/wrong.token" \
    --ca-file "$TLS/ca.pem" --connect-to 127.0.0.1
if [ "$(id -u)" = 0 ] && setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups true 2>/dev/null; then
	expect "vault add: by a Reader of the agent" 10 "permission|denied|Forbidden" \
	    setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups \
	    "$KB" --socket "$A/agent.sock" vault add azb --url "$RURL" \
	    --managed-identity --connect-to 127.0.0.1
else
	skip "vault add: by a Reader of the agent" "needs root and setpriv"
fi

# ---- vault add, list, show
kb vault add azb --url "$RURL" --token-file "$W/admin.token" \
    --ca-file "$TLS/ca.pem" --connect-to 127.0.0.1 --readers "$NOBODY" \
    >"$W/out" 2>"$W/err"
ok $? "vault add azb (token file, private CA, pinned address)"
check "the config gained a [remote azb] section" grep -q '^\[remote azb\]' "$A/agent.conf"
check "the config kept everything it had" \
    eval 'head -c "$(stat -c %s "$W/a.conf.orig")" "$A/agent.conf" | cmp -s - "$W/a.conf.orig"'
check "the CA copy in the state directory is mode 0600" \
    eval '[ "$(stat -c %a "$A/state/remote/azb.ca.pem")" = 600 ]'
check "no token in the config" eval '! grep -qF "$T_ADMIN" "$A/agent.conf"'
kb vault list >"$W/vl" 2>&1
check "vault list shows the local and the remote vault" \
    eval 'grep -q "^local *local" "$W/vl" && grep -q "^azb *remote" "$W/vl" && grep -q "$RURL\|kb2.vault.azure.net" "$W/vl"'
kb --json vault show azb >"$W/vs.json" 2>&1
check "vault show azb: kind, url, credential" \
    eval '[ "$(json "$W/vs.json" "j[\"kind\"], j[\"credential\"]")" = "('"'"'remote'"'"', '"'"'token file'"'"')" ]'
kb vault add azb --url "$RURL" --token-file "$W/admin.token" \
    --ca-file "$TLS/ca.pem" --connect-to 127.0.0.1 >/dev/null 2>"$W/err"
RC=$?
check "vault add of a taken name: exit 11 ($RC)" eval '[ $RC -eq 11 ]'

# ---- every key command through A on B
kb key create rk1 --vault azb --type ec >"$W/out" 2>"$W/err"
ok $? "key create on the remote vault"
check "B has the key" eval '[ "$(bkey rk1)" = 200 ]'
kb --json key show rk1 --vault azb >"$W/show.json" 2>&1
check "key show: the kid is A's, under /vaults/azb" \
    eval 'json "$W/show.json" "j[\"key\"][\"kid\"]" | grep -q "^http://localhost/vaults/azb/keys/rk1/[0-9a-f]\{32\}$"'
kb key create lk1 --type ec >/dev/null 2>&1
kb --json key show lk1 >"$W/lshow.json" 2>&1
check "key show on the remote vault has the local vault's fields" \
    eval '[ "$(json "$W/show.json" "sorted(j) + sorted(j[\"key\"]) + sorted(j[\"attributes\"])")" = "$(json "$W/lshow.json" "sorted(j) + sorted(j[\"key\"]) + sorted(j[\"attributes\"])")" ]'
kb key show rk1 --vault azb >"$W/rs.txt" 2>&1
kb key show lk1 >"$W/ls.txt" 2>&1
check "key show prints the same lines for both (names aside)" \
    eval '[ "$(cut -c1-16 "$W/rs.txt")" = "$(cut -c1-16 "$W/ls.txt")" ]'
kb key rotate rk1 --vault azb >/dev/null 2>&1
ok $? "key rotate on the remote vault"
kb --json key versions rk1 --vault azb >"$W/ver.json" 2>&1
check "two versions, seen through A" eval '[ "$(json "$W/ver.json" "len(j[\"value\"]) if isinstance(j, dict) else len(j)")" = 2 ]'
kb key update rk1 --vault azb --ops sign >/dev/null 2>&1
ok $? "key update on the remote vault"
bkey rk1 >/dev/null
check "B has the new key_ops" eval '[ "$(json "$W/bkey.json" "j[\"key\"][\"key_ops\"]")" = "['"'"'sign'"'"']" ]'
for i in $(seq 1 27); do
	kb key create "page$i" --vault azb --type aes --size 256 >/dev/null 2>&1 || break
done
kb --json key list --vault azb >"$W/list.json" 2>&1
check "key list follows B's nextLink through A (28 keys, 2 pages)" \
    eval '[ "$(json "$W/list.json" "len(j[\"value\"]) if isinstance(j, dict) else len(j)")" = 28 ]'
curl -s --unix-socket "$A/agent.sock" "http://l/vaults/azb/keys?api-version=7.6&maxresults=5" >"$W/p1.json"
check "a page's nextLink points at A, not B" \
    eval 'json "$W/p1.json" "j[\"nextLink\"]" | grep -q "^http://l/vaults/azb/keys?"'
NEXT=$(json "$W/p1.json" "j['nextLink']")
curl -s --unix-socket "$A/agent.sock" "$NEXT" >"$W/p2.json"
check "following it gives the next page" \
    eval '[ "$(json "$W/p2.json" "len(j[\"value\"])")" -ge 1 ]'
kb key delete rk1 --vault azb >/dev/null 2>&1
ok $? "key delete on the remote vault"
check "B has it soft-deleted" eval '[ "$(bkey rk1)" = 404 ] && curl -s -o /dev/null -w "%{http_code}" --unix-socket "$B/agent.sock" "http://l/deletedkeys/rk1?api-version=7.6" | grep -q 200'
kb key show rk1 --vault azb --deleted >/dev/null 2>&1
ok $? "key show --deleted on the remote vault"
kb key create rk1 --vault azb --type ec >/dev/null 2>"$W/err"
RC=$?
check "create on B's soft-deleted name through A: B's 409 comes back, exit 11 ($RC)" \
    eval '[ $RC -eq 11 ] && grep -qi "deleted" "$W/err"'
kb key recover rk1 --vault azb >/dev/null 2>&1
ok $? "key recover on the remote vault"
check "B has it back" eval '[ "$(bkey rk1)" = 200 ]'
kb key delete rk1 --vault azb >/dev/null 2>&1
kb key purge rk1 --vault azb >/dev/null 2>&1
ok $? "key purge on the remote vault"
check "B has it no more" eval '[ "$(bkey rk1)" = 404 ] && curl -s -o /dev/null -w "%{http_code}" --unix-socket "$B/agent.sock" "http://l/deletedkeys/rk1?api-version=7.6" | grep -q 404'
kb key show nosuch --vault azb >/dev/null 2>"$W/err"
RC=$?
check "a key B does not have: exit 9 with B's message" eval '[ $RC -eq 9 ] && grep -q nosuch "$W/err"'
curl -s --unix-socket "$A/agent.sock" -X POST -H 'Content-Type: application/json' \
    -d '{"alg":"ES256","value":"'"$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"'"}' \
    "http://l/vaults/azb/keys/page1/sign?api-version=7.6" -o "$W/sig.json" -w '%{http_code}' >"$W/code"
check "crypto through A: an oct key cannot sign ES256, B's 400 comes back" eval '[ "$(cat "$W/code")" = 400 ]'
kb key create sk --vault azb --type ec >/dev/null 2>&1
curl -s --unix-socket "$A/agent.sock" -X POST -H 'Content-Type: application/json' \
    -d '{"alg":"ES256","value":"'"$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"'"}' \
    "http://l/vaults/azb/keys/sk/sign?api-version=7.6" -o "$W/sig.json" -w '%{http_code}' >"$W/code"
check "sign through A on B's key: 200 and a 64-byte signature" \
    eval '[ "$(cat "$W/code")" = 200 ] && [ "$(json "$W/sig.json" "len(j[\"value\"])")" -ge 85 ]'

# ---- roles and audit
if [ "$(id -u)" = 0 ] && setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups true 2>/dev/null; then
	as_nobody() { setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups "$KB" --socket "$A/agent.sock" "$@"; }
	as_nobody key list --vault azb >/dev/null 2>&1
	ok $? "a Reader of the remote vault lists its keys"
	as_nobody key create nope --vault azb --type ec >/dev/null 2>"$W/err"
	RC=$?
	check "a Reader cannot create on it: exit 10 ($RC)" eval '[ $RC -eq 10 ] && grep -q "permission on vault azb" "$W/err"'
	check "and nothing reached B" eval '[ "$(bkey nope)" = 404 ]'
else
	skip "roles on the remote vault" "needs root and setpriv"
fi
kb --json audit list --vault azb >"$W/audit.json" 2>&1
check "the audit log has the remote operations (JSON lines)" \
    eval '(for op in vault-add create rotate update delete recover purge; do grep -q "\"vault\":\"azb\",\"op\":\"$op\".*\"result\":\"ok\"" "$W/audit.json" || exit 1; done)'
if [ "$(id -u)" = 0 ]; then
	check "and the Reader's denied create" \
	    grep -q "\"uid\":$NOBODY,.*\"op\":\"create\",\"key\":\"nope\".*\"result\":\"denied\"" "$W/audit.json"
fi
check "and the refused vault adds, as failed" \
    grep -q '"op":"vault-add".*"result":"failed"' "$W/audit.json"

# ---- A restarts: the remote vault comes back from the config
kill "$AGENT_PID"; wait_gone "$AGENT_PID"
start_agent "$A/agent.conf" "$A/agent.err"
check "agent A restarts with the [remote] section" wait_socket "$A/agent.sock"
kb key show sk --vault azb >/dev/null 2>&1
ok $? "the remote vault works after the restart"

# ---- each credential type against a loopback token endpoint
# tests/kvclient/oauthserver.py plays Entra ID and IMDS: it checks client
# secrets, verifies client assertion JWTs against the registered
# certificate (PS256, x5t#S256, aud, iss, sub, exp, jti) and issues
# admin.token, which B knows.  The certificate's key is on A's token.
. "$(dirname "$0")/../kvclient/oauth-setup.sh"
O=$W/oauth
mkdir -p "$O"
TENANT=00000000-0000-0000-0000-000000000000   # what B's challenge names
if oauth_setup "$O"; then
	cat "$TLS/ca.pem" "$O/ca.pem" >"$W/cas.pem"
	(umask 077; printf 'app-secret-%s' "$(tok)" >"$W/app.secret"
	 printf 'federated-%s' "$(tok)" >"$W/fed.token")
	cp "$W/fed.token" "$W/fed.accepted"
	# The certificate's key: an RSA pair on A's token, made with pkcs11-tool.
	export KB_T_PIN; KB_T_PIN=$(cat "$W/user.pin")
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label kba --login \
	    --pin env:KB_T_PIN --keypairgen --key-type rsa:2048 \
	    --label azure-cred --id c0ffee >/dev/null 2>&1
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label kba --read-object \
	    --type pubkey --label azure-cred -o "$W/cred.pub.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$W/cred.pub.der" -out "$W/cred.pub.pem" 2>/dev/null
	openssl x509 -new -force_pubkey "$W/cred.pub.pem" -subj /CN=app-cert \
	    -CA "$O/ca.pem" -CAkey "$O/ca.key" -days 2 -out "$W/cred.crt" 2>/dev/null
	check "a certificate for the token's key" test -s "$W/cred.crt"
	python3 - "$O/config.json" "$W" <<'PY'
import json, os, sys
p, w = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["clients"] = {
    "app-secret": {"secret": open(w + "/app.secret").read()},
    "app-cert": {"cert": w + "/cred.crt"},
    "app-fed": {"federated_file": w + "/fed.accepted"},
}
c["access_token_file"] = w + "/admin.token"
c["identities"] = ["mi-client"]
open(p + ".tmp", "w").write(json.dumps(c))
os.rename(p + ".tmp", p)
PY
	# A again, with IMDS at the test server (as on AKS with pod identity).
	kill "$AGENT_PID"; wait_gone "$AGENT_PID"
	AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:$OAUTH_HTTP_PORT \
	    start_agent "$A/agent.conf" "$A/agent.err"
	wait_socket "$A/agent.sock"
	mark
	COMMON=(--url "$RURL" --connect-to 127.0.0.1 --ca-file "$W/cas.pem"
	        --tenant "$TENANT" --authority-host "https://127.0.0.1:$OAUTH_PORT")
	cred_case() {	# cred_case NAME WHAT AUTH OPTIONS...
		local name=$1 what=$2 auth=$3 n0
		shift 3
		n0=$(wc -l <"$O/record.jsonl" 2>/dev/null || echo 0)
		kb vault add "$name" "${COMMON[@]}" "$@" >/dev/null 2>"$W/err"
		ok $? "vault add with $what"
		[ -s "$W/err" ] && diag "$(cat "$W/err")"
		kb key create "c-$name" --vault "$name" --type ec >/dev/null 2>"$W/err"
		ok $? "key create on B through A with $what"
		local st; st=$(bkey "c-$name")
		check "B has the key made with $what" [ "$st" = 200 ]
		check "the token endpoint saw $auth and issued the token" \
		    eval 'tail -n +$((n0 + 1)) "$O/record.jsonl" | grep "\"status\": *200" | grep -q "$auth"'
		kb vault remove "$name" >/dev/null 2>&1
	}
	cred_case az-secret "a client secret" '"auth": *"secret"' \
	    --client-id app-secret --client-secret-file "$W/app.secret"
	check "no client secret in A's config or log" \
	    eval '! grep -qF "$(cat "$W/app.secret")" "$A/agent.conf" "$A/agent.err"'
	cred_case az-cert "a certificate whose key is on A's token (PS256 assertion)" \
	    '"auth": *"assertion"' \
	    --client-id app-cert --client-cert "pkcs11:token=kba;object=azure-cred" \
	    --cert-file "$W/cred.crt"
	check "the assertion's header and claims, as the server verified them" \
	    eval 'grep "\"auth\": *\"assertion\"" "$O/record.jsonl" | tail -1 | grep -q "PS256" &&
	          grep "\"auth\": *\"assertion\"" "$O/record.jsonl" | tail -1 | grep -q "x5t#S256"'
	cred_case az-fed "workload identity (a federated token file)" '"auth": *"federated"' \
	    --client-id app-fed --federated-token-file "$W/fed.token"
	cred_case az-mi "a managed identity (IMDS)" '"path": *"imds"' \
	    --managed-identity=mi-client
	expect "vault add: a certificate that is not the token key's" 13 "does not match" \
	    kb vault add az-bad "${COMMON[@]}" --client-id app-cert \
	    --client-cert "pkcs11:token=kba;object=azure-cred" --cert-file "$O/other.crt"
	expect "vault add: a client_cert URI naming no key" 13 "no key|exactly one" \
	    kb vault add az-bad "${COMMON[@]}" --client-id app-cert \
	    --client-cert "pkcs11:token=kba;object=nosuch" --cert-file "$W/cred.crt"
	printf 'wrong' >"$W/wrong.secret"; chmod 600 "$W/wrong.secret"
	expect "vault add: a client secret the token endpoint refuses" 10 "AADSTS|secret|denied|invalid" \
	    kb vault add az-bad "${COMMON[@]}" --client-id app-secret \
	    --client-secret-file "$W/wrong.secret"
	oauth_stop
else
	skip "credential types against a token endpoint" "$OAUTH_WHY"
fi

# ---- B goes away: 502 through A, a clear sentence
kill "$BPID"; wait_gone "$BPID"
kb key show sk --vault azb >/dev/null 2>"$W/err"
RC=$?
check "B down: the CLI says the remote vault did not answer (exit $RC)" \
    eval '[ $RC -ne 0 ] && grep -qi "remote vault azb did not answer" "$W/err"'
kb key list >/dev/null 2>&1
ok $? "A keeps serving its local vault"

# ---- vault remove
kb vault remove local >/dev/null 2>"$W/err"
RC=$?
check "vault remove of a local vault: exit 11" eval '[ $RC -eq 11 ]'
kb vault remove azb >/dev/null 2>&1
ok $? "vault remove azb"
check "the config is byte for byte what it was" conf_same
check "the agent's copies of the files are gone" eval '[ -z "$(ls -A "$A/state/remote")" ]'
kb key list --vault azb >/dev/null 2>&1
RC=$?
check "key commands on a removed vault: exit 9" eval '[ $RC -eq 9 ]'
kb vault remove azb >/dev/null 2>&1
RC=$?
check "removing it again: exit 9" eval '[ $RC -eq 9 ]'
check "no secret in A's log" eval '! grep -qF "$T_ADMIN" "$A/agent.err"'

done_testing
