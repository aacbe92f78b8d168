#!/bin/bash
# t-oauthserver.sh: the test token endpoint refuses what Entra ID refuses,
# so that a credential test passing against it means something: assertions
# signed by another key, tampered, replayed, for another audience or
# client, expired, too long-lived, RS256; a wrong secret.  TAP.
set -u
. "$(dirname "$0")/oauth-setup.sh"
W=$(mktemp -d /tmp/kvc-oauth.XXXXXX)
cleanup() { oauth_stop; rm -rf "$W"; }
trap cleanup EXIT
oauth_setup "$W" || { echo "1..0 # SKIP $OAUTH_WHY"; exit 0; }
python3 - "$W" "$OAUTH_PORT" <<'PY'
import base64, hashlib, json, os, ssl, sys, time, urllib.parse, urllib.request, uuid
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
W, port = sys.argv[1], sys.argv[2]
APP, TENANT = "app-1", "tenant-1"
cfg = json.load(open(W + "/config.json"))
cfg["clients"] = {APP: {"cert": W + "/client.crt"}, "sec": {"secret": "pw"}}
json.dump(cfg, open(W + "/config.json.tmp", "w")); os.rename(W + "/config.json.tmp", W + "/config.json")
ctx = ssl.create_default_context(cafile=W + "/ca.pem")
aud = "https://127.0.0.1:%s/%s/oauth2/v2.0/token" % (port, TENANT)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = serialization.load_pem_private_key(open(W + "/client.key", "rb").read(), None)
okey = serialization.load_pem_private_key(open(W + "/other.key", "rb").read(), None)
der = x509.load_pem_x509_certificate(open(W + "/client.crt", "rb").read()).public_bytes(serialization.Encoding.DER)
n = [0]
def tap(ok, name):
    n[0] += 1
    print("%sok %d - %s" % ("" if ok else "not ", n[0], name)); sys.stdout.flush()
def jwt(k=key, alg="PS256", **over):
    now = int(time.time())
    h = {"alg": alg, "typ": "JWT", "x5t#S256": b64(hashlib.sha256(der).digest())}
    c = {"aud": aud, "iss": APP, "sub": APP, "jti": str(uuid.uuid4()), "nbf": now, "iat": now, "exp": now + 600}
    c.update(over)
    m = (b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode())).encode()
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if alg == "PS256" else padding.PKCS1v15()
    return m.decode() + "." + b64(k.sign(m, pad, hashes.SHA256()))
def post(form):
    req = urllib.request.Request(aud, data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        r = urllib.request.urlopen(req, context=ctx)
        return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
def assertion(a, client=APP):
    return post({"client_id": client, "scope": "https://vault.azure.net/.default",
        "grant_type": "client_credentials", "client_assertion": a,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
good = jwt()
s, b = assertion(good)
tap(s == 200 and b.get("token_type") == "Bearer" and b.get("access_token"), "a good PS256 assertion gets a token")
s, b = assertion(good)
tap(s == 401 and "replay" in b.get("error_description", ""), "the same jti again is refused (replay)")
s, b = assertion(jwt(k=okey))
tap(s == 401 and "invalid signature" in b.get("error_description", ""), "signed by another key")
p = jwt().split(".")
c = json.loads(base64.urlsafe_b64decode(p[1] + "=="))
c["sub"] = "someone-else"
s, b = assertion(p[0] + "." + b64(json.dumps(c).encode()) + "." + p[2])
tap(s == 401 and "invalid signature" in b.get("error_description", ""), "claims changed after signing")
s, b = assertion(jwt(aud="https://login.microsoftonline.com/%s/oauth2/v2.0/token" % TENANT))
tap(s == 401 and "aud" in b.get("error_description", ""), "another audience")
s, b = assertion(jwt(iss="x", sub="x"))
tap(s == 401 and "iss" in b.get("error_description", ""), "iss and sub not the client id")
s, b = assertion(jwt(exp=int(time.time()) - 10))
tap(s == 401 and "expired" in b.get("error_description", ""), "expired")
s, b = assertion(jwt(exp=int(time.time()) + 7200))
tap(s == 401 and "too long" in b.get("error_description", ""), "exp too far ahead")
s, b = assertion(jwt(nbf=int(time.time()) + 600))
tap(s == 401 and "not valid yet" in b.get("error_description", ""), "nbf in the future")
s, b = assertion(jwt(alg="RS256"))
tap(s == 401 and "PS256" in b.get("error_description", ""), "RS256 instead of PS256")
s, b = assertion(jwt(), client="unknown")
tap(s == 400 and "AADSTS700016" in b.get("error_description", ""), "an unknown client")
s, b = post({"client_id": "sec", "scope": "https://vault.azure.net/.default",
    "grant_type": "client_credentials", "client_secret": "nope"})
tap(s == 401 and "AADSTS7000215" in b.get("error_description", ""), "a wrong client secret")
s, b = post({"client_id": "sec", "scope": "https://vault.azure.net/.default",
    "grant_type": "client_credentials", "client_secret": "pw"})
tap(s == 200, "the right client secret")
recs = [json.loads(l) for l in open(W + "/record.jsonl")]
tap(len(recs) == 13 and recs[0]["jwt_claims"]["jti"] and recs[1]["status"] == 401, "every request recorded")
print("1..%d" % n[0])
PY
