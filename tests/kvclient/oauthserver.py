#!/usr/bin/env python3
"""oauthserver.py: a loopback Entra ID token endpoint and managed identity
endpoints, for kv-client's credential tests and end-to-end tests.

Usage:  python3 oauthserver.py CONFIG.json

CONFIG is JSON, read again at every request (a test may rewrite it while
the server runs; write it atomically: temp file + rename):

  "tls_cert", "tls_key"   PEM server certificate and key of the HTTPS
                          listener (make them with a test CA)
  "https_port_file"       the HTTPS port is written there once listening
  "http_port_file"        optional: a plain-http listener too (IMDS and
                          App Service are plain http on the real platform)
  "record"                optional: a JSONL file; one object per request
                          (what was asked and what was decided; see below)
  "clients": {            registered applications, by client id
     "ID": {"secret": "S"}                     client secret
     "ID": {"cert": "cert.pem"}                certificate (client assertion)
     "ID": {"federated_file": "accepted.txt"}  workload identity: the
                          assertion must be one line of that file
  }
  "access_token_file"     optional: every token issued is this file's
                          content (stripped), so another test can predict
                          it; else "oauth-token-N"
  "expires_in"            optional: lifetime of issued tokens (3599)
  "delay_ms"              optional: wait this long before issuing a token
  "identity_header"       App Service's X-IDENTITY-HEADER value expected
  "identities"            optional: user-assigned client ids IMDS and App
                          Service know (any other client_id: 400)
  "app_service_expires_on" "int" (default), "string", "date" or "date12"
                          ("06/20/2019 02:57:58 +00:00")
  "fail": {"id": "X", "path": "imds"|"app"|"token", "statuses": [503, ...]}
                          answer those statuses first, once per id

Endpoints (either listener):
  POST /{tenant}/oauth2/v2.0/token   client_credentials with client_secret
       or client_assertion (jwt-bearer).  Client assertions are VERIFIED
       against the registered certificate: header alg PS256, typ JWT,
       x5t#S256 = base64url(SHA-256(DER)); RSASSA-PSS SHA-256 signature
       (MGF1-SHA-256, 32-byte salt); aud = https://{Host}/{tenant}/oauth2/
       v2.0/token; iss = sub = client_id; now < exp <= now + 3600;
       nbf, iat <= now + 60; jti unique (a replay is refused).
  GET /metadata/identity/oauth2/token  IMDS (api-version=2018-02-01,
       "Metadata: true"); expires_in/expires_on as strings.
  GET /msi/token                       App Service (api-version=2019-08-01,
       X-IDENTITY-HEADER).

Record lines: {"path": "token"|"imds"|"app", "status": N, "error": code or
null, "tenant", "client_id", "scope" or "resource", "auth": "secret" |
"assertion" | "federated", "jwt_header", "jwt_claims", "assertion" (the
federated token only), "metadata", "api_version", "query"}.
Errors look like Entra's: {"error", "error_description": "AADSTS...: ..."}.
"""
import base64
import hashlib
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CONFIG = sys.argv[1]
lock = threading.Lock()
seen_jti = set()
fail_done = {}
issued = [0]


def config():
    with open(CONFIG) as f:
        return json.load(f)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def record(cfg, obj):
    path = cfg.get("record")
    if not path:
        return
    with lock, open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def new_token(cfg):
    p = cfg.get("access_token_file")
    if p:
        with open(p) as f:
            return f.read().strip()
    with lock:
        issued[0] += 1
        return "oauth-token-%d" % issued[0]


def take_fault(cfg, path):
    f = cfg.get("fail")
    if not f or f.get("path") != path:
        return None
    with lock:
        n = fail_done.get(f["id"], 0)
        if n < len(f["statuses"]):
            fail_done[f["id"]] = n + 1
            return f["statuses"][n]
    return None


class AssertionError_(Exception):
    def __init__(self, code, desc):
        super().__init__(desc)
        self.code = code
        self.desc = desc


def verify_jwt(jwt, cert_path, aud, client_id, rec):
    parts = jwt.split(".")
    if len(parts) != 3:
        raise AssertionError_("invalid_client", "AADSTS50027: the client assertion is not a JWT")
    try:
        hdr = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except Exception:
        raise AssertionError_("invalid_client", "AADSTS50027: the client assertion cannot be decoded")
    rec["jwt_header"] = hdr
    rec["jwt_claims"] = claims
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    if hdr.get("alg") != "PS256" or hdr.get("typ") != "JWT":
        raise AssertionError_("invalid_client", "AADSTS5002738: alg must be PS256 and typ JWT")
    want = b64url(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())
    if hdr.get("x5t#S256") != want:
        raise AssertionError_("invalid_client", "AADSTS700027: the x5t#S256 thumbprint is not the registered certificate's")
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        raise AssertionError_("invalid_client", "AADSTS700027: the registered certificate is not RSA")
    try:
        pub.verify(sig, (parts[0] + "." + parts[1]).encode(),
                   padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                   hashes.SHA256())
    except InvalidSignature:
        raise AssertionError_("invalid_client", "AADSTS700027: the client assertion contains an invalid signature")
    now = time.time()
    if claims.get("aud") != aud:
        raise AssertionError_("invalid_client", "AADSTS700016: aud must be the token endpoint")
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionError_("invalid_client", "AADSTS700023: iss and sub must be the client id")
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not all(isinstance(v, int) for v in (exp, nbf, iat)):
        raise AssertionError_("invalid_client", "AADSTS700024: exp, nbf and iat must be integers")
    if exp <= now:
        raise AssertionError_("invalid_client", "AADSTS700024: the client assertion has expired")
    if exp > now + 3600:
        raise AssertionError_("invalid_client", "AADSTS700024: the client assertion lives too long")
    if nbf > now + 60 or iat > now + 60:
        raise AssertionError_("invalid_client", "AADSTS700024: the client assertion is not valid yet")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise AssertionError_("invalid_client", "AADSTS700021: the client assertion has no jti")
    with lock:
        if jti in seen_jti:
            raise AssertionError_("invalid_client", "AADSTS700021: the client assertion's jti was used before (replay)")
        seen_jti.add(jti)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("oauthserver: " + (fmt % args) + "\n")

    def send(self, status, doc, extra=None):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def fail(self, cfg, rec, status, code, desc):
        rec["status"] = status
        rec["error"] = code
        rec["error_description"] = desc
        record(cfg, rec)
        self.send(status, {"error": code, "error_description": desc,
                           "error_codes": [int(desc[6:desc.index(":")])] if desc.startswith("AADSTS") else [],
                           "trace_id": "00000000-0000-0000-0000-000000000000"})

    def do_POST(self):
        cfg = config()
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        parts = u.path.split("/")
        rec = {"path": "token", "status": 0, "error": None}
        if len(parts) != 5 or parts[2:] != ["oauth2", "v2.0", "token"]:
            return self.fail(cfg, rec, 404, "not_found", "no such endpoint")
        tenant = parts[1]
        rec["tenant"] = tenant
        f = urllib.parse.parse_qs(body, keep_blank_values=True, strict_parsing=False)
        g = lambda k: f.get(k, [None])[0]
        rec["client_id"] = g("client_id")
        rec["scope"] = g("scope")
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return self.fail(cfg, rec, 400, "invalid_request", "AADSTS900144: the body must be a form")
        st = take_fault(cfg, "token")
        if st:
            return self.fail(cfg, rec, st, "temporarily_unavailable", "AADSTS90033: injected fault")
        if g("grant_type") != "client_credentials":
            return self.fail(cfg, rec, 400, "unsupported_grant_type", "AADSTS70003: grant_type must be client_credentials")
        if not (g("scope") or "").endswith("/.default"):
            return self.fail(cfg, rec, 400, "invalid_scope", "AADSTS1002012: scope must end with /.default")
        client = cfg.get("clients", {}).get(g("client_id") or "")
        if client is None:
            return self.fail(cfg, rec, 400, "unauthorized_client", "AADSTS700016: application not found in the directory")
        if g("client_secret") is not None:
            rec["auth"] = "secret"
            if "secret" not in client or g("client_secret") != client["secret"]:
                return self.fail(cfg, rec, 401, "invalid_client", "AADSTS7000215: invalid client secret provided")
        elif g("client_assertion") is not None:
            if g("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                return self.fail(cfg, rec, 400, "invalid_request", "AADSTS50027: client_assertion_type must be jwt-bearer")
            a = g("client_assertion")
            if "federated_file" in client:
                rec["auth"] = "federated"
                rec["assertion"] = a
                with open(client["federated_file"]) as ff:
                    ok = a in [l.strip() for l in ff if l.strip()]
                if not ok:
                    return self.fail(cfg, rec, 400, "invalid_client", "AADSTS700211: no matching federated identity record for the presented assertion")
            elif "cert" in client:
                rec["auth"] = "assertion"
                aud = "https://%s%s" % (self.headers.get("Host", ""), u.path)
                try:
                    verify_jwt(a, client["cert"], aud, g("client_id"), rec)
                except AssertionError_ as e:
                    return self.fail(cfg, rec, 401, e.code, e.desc)
            else:
                return self.fail(cfg, rec, 401, "invalid_client", "AADSTS700027: no certificate registered for the application")
        else:
            return self.fail(cfg, rec, 401, "invalid_client", "AADSTS7000218: the request body must contain client_secret or client_assertion")
        e = int(cfg.get("expires_in", 3599))
        if cfg.get("delay_ms"):
            time.sleep(cfg["delay_ms"] / 1000.0)
        rec["status"] = 200
        record(cfg, rec)
        self.send(200, {"token_type": "Bearer", "expires_in": e, "ext_expires_in": e,
                        "access_token": new_token(cfg)})

    def do_GET(self):
        cfg = config()
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        g = lambda k: q.get(k, [None])[0]
        if u.path == "/metadata/identity/oauth2/token":
            kind, api = "imds", "2018-02-01"
        elif u.path.rstrip("/") == "/msi/token":
            kind, api = "app", "2019-08-01"
        else:
            return self.send(404, {"error": "not_found"})
        rec = {"path": kind, "status": 0, "error": None, "resource": g("resource"),
               "client_id": g("client_id"), "api_version": g("api-version"),
               "query": u.query, "metadata": self.headers.get("Metadata")}
        st = take_fault(cfg, kind)
        if st:
            return self.fail(cfg, rec, st, "service_unavailable", "injected fault")
        if g("api-version") != api:
            return self.fail(cfg, rec, 400, "invalid_request", "api-version must be " + api)
        if kind == "imds" and self.headers.get("Metadata") != "true":
            return self.fail(cfg, rec, 400, "invalid_request", "Required metadata header not specified")
        if kind == "app" and self.headers.get("X-IDENTITY-HEADER") != cfg.get("identity_header"):
            return self.fail(cfg, rec, 401, "unauthorized", "X-IDENTITY-HEADER missing or wrong")
        if not g("resource") or g("resource").endswith("/.default"):
            return self.fail(cfg, rec, 400, "invalid_resource", "resource must be a resource URI, not a scope")
        cid = g("client_id")
        if cid is not None and cid not in cfg.get("identities", []):
            return self.fail(cfg, rec, 400, "invalid_request", "Identity not found")
        e = int(cfg.get("expires_in", 3599))
        now = int(time.time())
        tok = new_token(cfg)
        rec["status"] = 200
        record(cfg, rec)
        if kind == "imds":
            return self.send(200, {"access_token": tok, "client_id": cid or "system",
                                   "expires_in": str(e), "expires_on": str(now + e),
                                   "ext_expires_in": str(e), "not_before": str(now),
                                   "resource": g("resource"), "token_type": "Bearer"})
        fmt = cfg.get("app_service_expires_on", "int")
        if fmt == "date":
            eo = time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(now + e))
        elif fmt == "date12":
            # Windows hosts: a 12-hour clock, no leading zeros.
            t = time.gmtime(now + e)
            eo = "%d/%d/%d %d:%02d:%02d %s +00:00" % (
                t.tm_mon, t.tm_mday, t.tm_year, t.tm_hour % 12 or 12, t.tm_min,
                t.tm_sec, "AM" if t.tm_hour < 12 else "PM")
        elif fmt == "string":
            eo = str(now + e)
        else:
            eo = now + e
        return self.send(200, {"access_token": tok, "expires_on": eo,
                               "resource": g("resource"), "token_type": "Bearer",
                               "client_id": cid or "system"})


def serve(srv):
    srv.serve_forever()


def main():
    cfg = config()
    threads = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["tls_cert"], cfg["tls_key"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threads.append(threading.Thread(target=serve, args=(srv,), daemon=True))
    ports = [(cfg["https_port_file"], srv.server_address[1])]
    if cfg.get("http_port_file"):
        plain = ThreadingHTTPServer(("127.0.0.1", 0), H)
        plain.daemon_threads = True
        threads.append(threading.Thread(target=serve, args=(plain,), daemon=True))
        ports.append((cfg["http_port_file"], plain.server_address[1]))
    for t in threads:
        t.start()
    for path, port in ports:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.rename(tmp, path)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
