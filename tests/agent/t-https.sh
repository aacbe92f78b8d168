#!/bin/bash
# t-https.sh: the HTTPS listener (issue 4, points 1-2 and "Bad input").
# Certificates come from openssl(1) here, not from `dev up --https`, so the
# agent is checked against an independent CA; curl and Python's ssl module
# are the clients.  Bearer principals: admin (Administrator), reader
# (Reader), an expired one, and one with no role.
. "$(dirname "$0")/lib.sh"
need openssl
need curl
need python3
RAW="python3 -W ignore $(dirname "$0")/httpsraw.py"

mktoken "$W" kb1
SOCK=$W/agent.sock
TLS=$W/tls
mkdir -p "$TLS"

# A CA and a server certificate for 127.0.0.1, with openssl(1).
mkcerts "$TLS" "t-https CA" 127.0.0.1 IP:127.0.0.1
# Another CA the client may be given by mistake.
mkotherca "$TLS"

T_ADMIN=$(tok); T_READER=$(tok); T_OLD=$(tok); T_LONE=$(tok)

# writeconf FILE [EXTRA-AGENT-LINES] [EXTRA-SECTIONS]
writeconf() {
	cat >"$1" <<CONF
[agent]
socket = $SOCK
state_dir = $W/state
log_level = debug
threads = 2
https_listen = 127.0.0.1:0
https_cert = $TLS/srv.pem
https_key = $TLS/srv.key
https_timeout = 2
https_max_connections = 4
auth_authorization = https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47
${2:-}

[token kb1]
label = kb1
pin_file = $W/user.pin

[vault main]
token = kb1
retention_days = 7
administrators = principal:admin
readers = principal:reader

[principal admin]
token_sha256 = $(sha "$T_ADMIN")

[principal reader]
token_sha256 = $(sha "$T_READER")

[principal old]
token_sha256 = $(sha "$T_OLD")
expires = 2020-01-01T00:00:00Z

[principal lone]
token_sha256 = $(sha "$T_LONE")
${3:-}
CONF
}

# ---- configuration errors: one sentence, exit 3, nothing started
# try_conf SED-SCRIPT: start keybridged on writeconf's config edited by
# SED-SCRIPT (none: unedited); its exit code in rc, its output in bad.out.
try_conf() {
	writeconf "$W/bad.conf"
	[ -z "$1" ] || sed -i "$1" "$W/bad.conf"
	"$KBD" --config "$W/bad.conf" >"$W/bad.out" 2>&1
	rc=$?
}
# refused NAME SED-SCRIPT PATTERN: exit 3 with a sentence matching PATTERN.
refused() {
	local want=$3
	try_conf "$2"
	check "$1" eval '[ $rc -eq 3 ] && grep -q -- "$want" "$W/bad.out"'
}
try_conf '/^https_key/d'
check "a listener without https_key is refused (exit 3)" \
    [ $rc -eq 3 ]
check "and the sentence says https_key is needed" \
    grep -q "needs https_cert and https_key" "$W/bad.out"
refused "a short token_sha256 is refused (exit 3, names file:line)" \
    's/^token_sha256 = \(.\{10\}\).*/token_sha256 = \1/' \
    "bad.conf:[0-9]*: token_sha256 must be 64 hex"
refused "a role list naming an unknown principal is refused" \
    's/^readers = principal:reader/readers = principal:nobody/' \
    "no \[principal nobody\] section"
refused "https_listen takes an address, not a host name" \
    's/^https_listen = .*/https_listen = localhost:8443/' \
    "not an IPv4 address"
refused "a quote in auth_authorization is refused (it goes in a header)" \
    's/^auth_authorization = .*/auth_authorization = https:\/\/x"y/' \
    "must not contain"
chmod 644 "$TLS/srv.key"
refused "a server key others can read is refused (exit 3, says chmod 600)" \
    "" "chmod 600"
chmod 600 "$TLS/srv.key"
cp "$TLS/other.key" "$TLS/wrong.key"
chmod 600 "$TLS/wrong.key"
try_conf "s|^https_key = .*|https_key = $TLS/wrong.key|"
check "a key that does not match the certificate: the agent does not start" \
    eval '[ $rc -ne 0 ] && grep -q "cannot start the HTTPS listener" "$W/bad.out"'
check "and no key byte appears in its messages" \
    eval '! grep -q "PRIVATE KEY" "$W/bad.out"'
check "nothing keeps running after those refusals" \
    eval '! [ -S "$SOCK" ] || ! curl -s -o /dev/null --unix-socket "$SOCK" http://l/keybridge/status'

# ---- the agent
writeconf "$W/kb.conf"
start_agent "$W/kb.conf" "$W/agent.err"
check "the agent starts with the HTTPS listener" wait_socket "$SOCK"
curl -s --unix-socket "$SOCK" http://l/keybridge/status >"$W/status.json"
URL=$(json "$W/status.json" "j['https']")
PORT=${URL##*:}
check "status shows the HTTPS URL on a loopback port ($URL)" \
    eval '[[ $URL =~ ^https://127\.0\.0\.1:[0-9]+$ ]]'
H=127.0.0.1
C="curl -s --cacert $TLS/ca.pem"

# ---- authentication
$C -D "$W/h" -o "$W/b" -w '%{http_code}' "$URL/keys?api-version=7.6" >"$W/code"
check "no token: 401" [ "$(cat "$W/code")" = 401 ]
check "with Key Vault's challenge (configured authorization, default resource)" \
    grep -qi '^WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net"' "$W/h"
check "and Key Vault's error body" \
    eval "[ \"\$(json $W/b \"j['error']['code']\")\" = Unauthorized ]"
code=$($C -o "$W/b" -w '%{http_code}' -H "Authorization: Bearer $(tok)" "$URL/keys?api-version=7.6")
check "a wrong token: 401" [ "$code" = 401 ]
check "a wrong token's answer carries the challenge too" \
    eval "$C -D - -o /dev/null -H 'Authorization: Bearer nope' '$URL/keys?api-version=7.6' | grep -qi '^WWW-Authenticate: Bearer'"
code=$($C -o "$W/b" -w '%{http_code}' -H "Authorization: Bearer $T_OLD" "$URL/keys?api-version=7.6")
check "an expired token: 401" [ "$code" = 401 ]
check "which says it expired" grep -q "expired" "$W/b"
code=$($C -o /dev/null -w '%{http_code}' -H "Authorization: Basic $(printf a:b | base64)" "$URL/keys?api-version=7.6")
check "Basic authentication: 401" [ "$code" = 401 ]
code=$($C -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -c 9000 /dev/zero | tr '\0' a)" "$URL/keys?api-version=7.6")
check "an overlong token: 401" [ "$code" = 401 ]
code=$($C -o "$W/b" -w '%{http_code}' -H "Authorization: Bearer $T_LONE" "$URL/keys?api-version=7.6")
check "a valid token of a principal without a role: 403" [ "$code" = 403 ]
check "whose message names the principal" grep -q "principal lone" "$W/b"
code=$($C -o "$W/b" -w '%{http_code}' -H "Authorization: bearer $T_ADMIN" "$URL/keys?api-version=7.6")
check "the scheme name is case-insensitive (RFC 7235): 200" [ "$code" = 200 ]
( umask 077; printf %s "$T_ADMIN" >"$W/admin.tok" )
out=$($RAW twice $H $PORT "$TLS/ca.pem" "$W/admin.tok" none)
check "the challenge keeps the connection: 401, then 200 on it with the token ($out)" \
    [ "$out" = "401 200" ]
out=$($RAW twice $H $PORT "$TLS/ca.pem" "$W/admin.tok" body)
check "a challenge to a request with a body closes it, the body unread ($out)" \
    [ "$out" = "401 closed" ]

A="Authorization: Bearer $T_ADMIN"
R="Authorization: Bearer $T_READER"
J="Content-Type: application/json"
code=$($C -o "$W/k1.json" -w '%{http_code}' -H "$A" -H "$J" -d '{"kty":"EC-HSM","crv":"P-256"}' "$URL/keys/k1/create?api-version=7.6")
check "the Administrator creates a key: 200" [ "$code" = 200 ]
check "its kid is an https URL of this listener" \
    eval "[[ \"\$(json $W/k1.json \"j['key']['kid']\")\" == https://127.0.0.1:$PORT/keys/k1/* ]]"
code=$($C -o "$W/b" -w '%{http_code}' -H "$R" "$URL/keys/k1?api-version=7.6")
check "the Reader gets it: 200" [ "$code" = 200 ]
code=$($C -o "$W/b" -w '%{http_code}' -H "$R" -H "$J" -d '{"kty":"EC"}' "$URL/keys/k2/create?api-version=7.6")
check "the Reader may not create: 403" [ "$code" = 403 ]
check "the 403 names the principal and its role" grep -q "principal reader, role Reader" "$W/b"
$C -H "$A" "$URL/vaults/main/keys?api-version=7.6" -o "$W/b"
check "/vaults/NAME paths work over HTTPS too" \
    eval "[ \"\$(json $W/b \"len(j['value'])\")\" = 1 ]"
code=$($C -o /dev/null -w '%{http_code}' -H "$A" "$URL/keys/k1/sign?api-version=7.6" -H "$J" -d '{"alg":"ES256","value":"AAAA"}')
check "a digest of the wrong size: 400" [ "$code" = 400 ]
curl -s --unix-socket "$SOCK" "http://l/keybridge/audit?maxresults=100" >"$W/audit.json"
check "audit: the create names principal admin" \
    eval "[ \"\$(json $W/audit.json \"[a.get('principal') for a in j['value'] if a['op']=='create'][0]\")\" = admin ]"
check "audit: the Reader's denied create names principal reader" \
    eval "[ \"\$(json $W/audit.json \"[(a.get('principal'),a['role']) for a in j['value'] if a['result']=='denied' and a['op']=='create'][0]\")\" = \"('reader', 'Reader')\" ]"
check "audit: the wrong token is recorded (token-invalid)" \
    eval "[ \"\$(json $W/audit.json \"len([a for a in j['value'] if a['result']=='token-invalid'])\")\" -ge 3 ]"
check "audit: the expired token is recorded (token-expired)" \
    eval "[ \"\$(json $W/audit.json \"len([a for a in j['value'] if a['result']=='token-expired'])\")\" = 1 ]"
check "audit: a request without a token (the challenge) is not a record" \
    eval "[ \"\$(json $W/audit.json \"len([a for a in j['value'] if a['result'] not in ('ok','denied','token-invalid','token-expired')])\")\" = 0 ]"
check "no token appears in the agent's log (debug level)" \
    eval '! grep -qF -e "$T_ADMIN" -e "$T_READER" -e "$T_OLD" -e "$T_LONE" "$W/agent.err"'
check "the Unix socket still serves the agent's own uid" \
    eval "curl -s -o /dev/null -w '%{http_code}' --unix-socket $SOCK 'http://l/keys?api-version=7.6' | grep -q 200"

# invalid_records: how many token-invalid audit records there are.
invalid_records() {
	curl -s --unix-socket "$SOCK" "http://l/keybridge/audit?maxresults=1000" |
	    json /dev/stdin "len([a for a in j['value'] if a['result']=='token-invalid'])"
}
printf %s "not-a-token-of-this-agent" >"$W/bad.tok"
n0=$(invalid_records)
out=$($RAW refused $H $PORT "$TLS/ca.pem" "$W/bad.tok" 12)
check "a connection is closed after 8 refused requests: 7 answers kept it open ($out)" \
    [ "$out" = "401 401 401 401 401 401 401 401 closed" ]
n1=$(invalid_records)
check "each of the 8 is an audit record, no more ($n0 -> $n1)" [ $((n1 - n0)) = 8 ]
out=$($RAW twice $H $PORT "$TLS/ca.pem" "$W/admin.tok" none)
check "a new connection is served as before ($out)" [ "$out" = "401 200" ]

# ---- one TLS record for a small answer (server.c, tls_cork)
big=$(python3 -c 'import json; print(json.dumps({"kty":"oct-HSM","key_size":256,"tags":{"t%02d" % i: "v" * 256 for i in range(15)}}))')
for n in big1 big2; do
	$C -o /dev/null -H "$A" -H "$J" -d "$big" "$URL/keys/$n/create?api-version=7.6"
done
$RAW records $H $PORT "$TLS/ca.pem" "$W/admin.tok" "/keys/k1?api-version=7.6" \
    "/keys/nothere?api-version=7.6" "/keys?api-version=7.6" >"$W/rec"
$RAW records $H $PORT "$TLS/ca.pem" none "/keys?api-version=7.6" >>"$W/rec"
diag "records: $(tr '\n' ';' <"$W/rec")"
check "a key (200, under 8 kB) comes in one TLS record" \
    eval '[ "$(sed -n 1p "$W/rec" | cut -d" " -f1-2)" = "200 1" ]'
check "an error answer (404) in one record" \
    eval '[ "$(sed -n 2p "$W/rec" | cut -d" " -f1-2)" = "404 1" ]'
check "a listing over 8 kB is not held: 200, whole, in two records or more" \
    eval 'set -- $(sed -n 3p "$W/rec"); [ "$1" = 200 ] && [ "$2" -ge 2 ] && [ "$3" -gt 8192 ]'
check "the challenge (401 at the request's end) in one record" \
    eval '[ "$(sed -n 4p "$W/rec" | cut -d" " -f1-2)" = "401 1" ]'
out=$($RAW pipeline $H $PORT "$TLS/ca.pem" "$W/admin.tok" 5 "/keys/k1?api-version=7.6")
check "five pipelined requests: five whole answers, in order ($out)" \
    [ "$out" = "200 200 200 200 200 same" ]
for n in big1 big2; do
	$C -o /dev/null -X DELETE -H "$A" "$URL/keys/$n?api-version=7.6"
	$C -o /dev/null -X DELETE -H "$A" "$URL/deletedkeys/$n?api-version=7.6"
done

# ---- TLS
check "curl without the CA refuses the certificate" \
    eval '! curl -s -o /dev/null -H "$A" "$URL/keys?api-version=7.6"'
check "curl with another CA refuses it too" \
    eval '! curl -s -o /dev/null --cacert "$TLS/other.pem" -H "$A" "$URL/keys?api-version=7.6"'
check "TLS 1.2 is accepted" eval "[ \"\$($RAW version $H $PORT $TLS/ca.pem 1.2)\" = ok ]"
check "TLS 1.3 is accepted" eval "[ \"\$($RAW version $H $PORT $TLS/ca.pem 1.3)\" = ok ]"
check "TLS 1.1 is refused" eval "[ \"\$($RAW version $H $PORT $TLS/ca.pem 1.1)\" = refused ]"
check "TLS 1.0 is refused" eval "[ \"\$($RAW version $H $PORT $TLS/ca.pem 1.0)\" = refused ]"
check "plain HTTP to the TLS port: closed, no HTTP answer" \
    eval "[ \"\$($RAW plain $H $PORT)\" = closed ]"

# ---- bad input and slow clients
code=$($C -o /dev/null -w '%{http_code}' -H "$A" -H "$J" --data-binary @<(head -c 1100000 /dev/zero | tr '\0' a) "$URL/keys/k3/create?api-version=7.6")
check "a body over 1 MiB: 413" [ "$code" = 413 ]
code=$($C -o /dev/null -w '%{http_code}' -H "$J" --data-binary @<(head -c 1100000 /dev/zero | tr '\0' a) "$URL/keys/k3/create?api-version=7.6")
check "the same body without a token: 401, before the body is read" [ "$code" = 401 ]
out=$($RAW bigheader $H $PORT "$TLS/ca.pem" 100)
check "a 100 KB header: refused (431 or closed), got '$out'" \
    eval '[[ "$out" == *431* || "$out" == closed || "$out" == *413* ]]'
code=$($C -o "$W/b" -w '%{http_code}' -H "$A" -H "$J" -d '{"kty":' "$URL/keys/k3/create?api-version=7.6")
check "malformed JSON: 400 BadParameter" \
    eval "[ $code = 400 ] && [ \"\$(json $W/b \"j['error']['code']\")\" = BadParameter ]"
code=$($C -o "$W/b" -w '%{http_code}' -H "$A" -H "$J" -d '{"kty":7}' "$URL/keys/k3/create?api-version=7.6")
check "a wrong JSON type: 400" [ "$code" = 400 ]
code=$($C -o /dev/null -w '%{http_code}' -H "$A" "$URL/nowhere?api-version=7.6")
check "an unknown path: 404" [ "$code" = 404 ]
code=$($C -o /dev/null -w '%{http_code}' -H "$A" -X PUT "$URL/keys?api-version=7.6")
check "a wrong method: 405" [ "$code" = 405 ]
code=$($C -o /dev/null -w '%{http_code}' -H "$A" "$URL/keys?api-version=1.0")
check "an unknown api-version: 400" [ "$code" = 400 ]
out=$($RAW slow $H $PORT "$TLS/ca.pem" 10)
check "a client that stalls mid-request is dropped after https_timeout ($out)" \
    eval '[[ "$out" == "closed after "[1-5]" s" ]]'
held=$($RAW hold $H $PORT "$TLS/ca.pem" 8 0.5)
check "the connection cap holds: at most 4 of 8 idle connections stay ($held)" \
    eval '[ "$held" -le 4 ] && [ "$held" -ge 1 ]'
code=$($C -o /dev/null -w '%{http_code}' -H "$A" "$URL/keys?api-version=7.6")
check "after all that, the agent serves everyone again: 200" [ "$code" = 200 ]
check "and the Unix socket too" \
    eval "curl -s -o /dev/null -w '%{http_code}' --unix-socket $SOCK 'http://l/keys?api-version=7.6' | grep -q 200"
check "the agent is still the same process" eval '! gone $AGENT_PID'

# ---- dev up --https: the files and exports the Azure SDKs need
D=$W/dev
unset SOFTHSM2_CONF
if eval "$("$KB" dev up --dir "$D" --https 2>"$W/dev.err")"; then
	ok 0 "dev up --https: exit 0"
else
	ok 1 "dev up --https: exit 0"; diag "$(cat "$W/dev.err")"
fi
check "it exports KEYBRIDGE_URL on loopback" eval '[[ ${KEYBRIDGE_URL:-} =~ ^https://127\.0\.0\.1:[0-9]+$ ]]'
check "KEYBRIDGE_CA verifies the server certificate (openssl verify)" \
    eval 'openssl verify -CAfile "$KEYBRIDGE_CA" "$D/https-cert.pem" >/dev/null'
check "the server certificate names 127.0.0.1 and localhost" \
    eval 'openssl x509 -in "$D/https-cert.pem" -noout -ext subjectAltName | grep -q "IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost"'
check "the CA's private key is not kept anywhere in DIR" \
    eval '[ "$(grep -l "PRIVATE KEY" "$D"/*.pem | wc -l)" = 1 ]'
check "the token file and key are mode 0600" \
    eval '[ "$(stat -c %a "$KEYBRIDGE_TOKEN_FILE" "$D/https-key.pem" | sort -u)" = 600 ]'
check "the config holds the token's hash, not the token" \
    eval '! grep -qF "$(cat "$KEYBRIDGE_TOKEN_FILE")" "$D/keybridge.conf" && grep -q "token_sha256 = $(sha "$(cat "$KEYBRIDGE_TOKEN_FILE")")" "$D/keybridge.conf"'
code=$(curl -s --cacert "$KEYBRIDGE_CA" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $(cat "$KEYBRIDGE_TOKEN_FILE")" -H "$J" \
    -d '{"kty":"oct-HSM","key_size":256}' "$KEYBRIDGE_URL/keys/d1/create?api-version=7.6")
check "the token file's principal creates a key over HTTPS: 200" [ "$code" = 200 ]
"$KB" dev up --dir "$D" --https >"$W/again" 2>/dev/null
check "dev up again prints the same URL" grep -qF "KEYBRIDGE_URL='$KEYBRIDGE_URL'" "$W/again"
"$KB" dev down --dir "$D" >/dev/null 2>&1
D2=$W/dev2
"$KB" dev up --dir "$D2" >/dev/null 2>&1
"$KB" dev up --dir "$D2" --https >/dev/null 2>"$W/dev2.err"
rc=$?
check "--https on an environment made without it: exit 11 and a sentence" \
    eval '[ $rc -eq 11 ] && grep -q "made without --https" "$W/dev2.err"'
"$KB" dev down --dir "$D2" >/dev/null 2>&1

done_testing
