#!/usr/bin/env python3
"""kvreplay.py: a loopback HTTPS server that replays a conversation
recorded from a real Key Vault or Managed HSM (../shared/keyvault/
recordings, the Azure SDKs' test-proxy format) against kv-client, and
plays the Entra ID v2 token endpoint in between.
Usage: kvreplay.py CERT KEY PORTFILE RECORDINGS_DIR

POST /_replay/load?name=FILE (no auth) starts FILE from its first entry.
Each request to the vault must be the next recorded one: same method,
path and query, the same JSON body (none for the challenge probe), no
Authorization on the entry recorded as the 401 challenge and a bearer
token issued here on every other one.  A request that matches gets the
recorded status, headers (the WWW-Authenticate challenge included, as
recorded) and body; one that does not gets 400 ReplayMismatch, is
counted, and the conversation does not advance.

POST /<tenant>/oauth2/v2.0/token: the client credentials grant; the
tenant and the scope must be the ones the last challenge served named
(the recordings' authorization host is replaced by this server through
the credential's authority override, as AZURE_AUTHORITY_HOST does).

GET /_replay/state (no auth): position, mismatches, token requests.
"""
import json
import os
import re
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "replay-s3cret"
# Hop-by-hop or recomputed: never replayed from the recording.
SKIP_HEADERS = {"content-length", "transfer-encoding", "connection", "date",
                "keep-alive", "content-encoding"}

state = {"name": None, "entries": [], "pos": 0, "mismatches": [],
         "token_requests": 0, "token_tenants": [], "token_scopes": [],
         "challenge_tenant": None, "challenge_scope": None, "issued": set()}


def challenge_of(header):
    """(tenant, scope) of a recorded Bearer challenge."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', header or ""))
    auth = params.get("authorization") or params.get("authorization_uri") or ""
    tenant = urllib.parse.urlsplit(auth).path.strip("/").split("/")[0] or None
    scope = params.get("scope") or (params.get("resource", "").rstrip("/") + "/.default")
    return tenant, scope


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))

    def send(self, status, body=b"", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        have_ct = False
        for k, v in headers:
            have_ct = have_ct or k.lower() == "content-type"
            self.send_header(k, v)
        if not have_ct:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def mismatch(self, why):
        with state_lock():
            state["mismatches"].append("entry %d: %s" % (state["pos"], why))
        sys.stderr.write("mismatch at entry %d: %s\n" % (state["pos"], why))
        return self.send(400, {"error": {"code": "ReplayMismatch", "message": why}})

    def do_token(self, tenant, body):
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        with state_lock():
            state["token_requests"] += 1
            state["token_tenants"].append(tenant)
            state["token_scopes"].append((form.get("scope") or [""])[0])
            want_tenant, want_scope = state["challenge_tenant"], state["challenge_scope"]
        if (self.headers.get("Content-Type") != "application/x-www-form-urlencoded" or
                form.get("client_id") != [CLIENT_ID] or
                form.get("client_secret") != [CLIENT_SECRET] or
                form.get("grant_type") != ["client_credentials"]):
            return self.send(401, {"error": "invalid_client", "error_description":
                                   "AADSTS7000215: Invalid client secret provided."})
        if tenant != want_tenant or form.get("scope") != [want_scope]:
            return self.send(400, {"error": "invalid_request", "error_description":
                                   "AADSTS90002: tenant %s / scope %s, the challenge "
                                   "named %s / %s" % (tenant, form.get("scope"),
                                                      want_tenant, want_scope)})
        with state_lock():
            tok = "replay-token-%d" % state["token_requests"]
            state["issued"].add(tok)
        self.send(200, {"token_type": "Bearer", "expires_in": 3599,
                        "ext_expires_in": 3599, "access_token": tok})

    def control(self, u):
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/_replay/load":
            name = os.path.basename(q.get("name", [""])[0])
            with open(os.path.join(RECDIR, name)) as f:
                rec = json.load(f)
            with state_lock():
                state.update(name=name, entries=rec["Entries"], pos=0, mismatches=[],
                             token_requests=0, token_tenants=[], token_scopes=[],
                             challenge_tenant=None, challenge_scope=None)
            return self.send(200, {"entries": len(rec["Entries"])})
        if u.path == "/_replay/state":
            with state_lock():
                return self.send(200, {k: v for k, v in state.items()
                                       if k not in ("entries", "issued")} |
                                 {"total": len(state["entries"])})
        return self.send(404, {"error": {"code": "NotFound", "message": u.path}})

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        if u.path.startswith("/_replay/"):
            return self.control(u)
        parts = u.path.split("/")
        if len(parts) == 5 and parts[2:] == ["oauth2", "v2.0", "token"] and self.command == "POST":
            return self.do_token(parts[1], body)
        with state_lock():
            if state["pos"] >= len(state["entries"]):
                entry = None
            else:
                entry = state["entries"][state["pos"]]
        if entry is None:
            return self.mismatch("%s %s after the end of the recording" % (self.command, self.path))
        want = urllib.parse.urlsplit(entry["RequestUri"])
        want_path = want.path + ("?" + want.query if want.query else "")
        if self.command != entry["RequestMethod"] or self.path != want_path:
            return self.mismatch("got %s %s, recorded %s %s" % (
                self.command, self.path, entry["RequestMethod"], want_path))
        rh = entry["ResponseHeaders"]
        is_challenge = entry["StatusCode"] == 401 and "WWW-Authenticate" in rh
        auth = self.headers.get("Authorization")
        if is_challenge:
            if auth is not None:
                return self.mismatch("the challenge probe carried Authorization")
            if body:
                return self.mismatch("the challenge probe carried a body")
        else:
            with state_lock():
                good = auth is not None and auth.startswith("Bearer ") and auth[7:] in state["issued"]
            if not good:
                return self.mismatch("no bearer token issued here (%s)" % (
                    "none" if auth is None else "an unknown one"))
            got = json.loads(body) if body else None
            if got != entry["RequestBody"]:
                return self.mismatch("body %s, recorded %s" % (
                    json.dumps(got)[:200], json.dumps(entry["RequestBody"])[:200]))
        with state_lock():
            state["pos"] += 1
            if is_challenge:
                state["challenge_tenant"], state["challenge_scope"] = \
                    challenge_of(rh["WWW-Authenticate"])
        rb = entry["ResponseBody"]
        out = b"" if rb is None else json.dumps(rb).encode()
        headers = [(k, v) for k, v in rh.items() if k.lower() not in SKIP_HEADERS]
        return self.send(entry["StatusCode"], out, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


_lock_obj = threading.RLock()


def state_lock():
    return _lock_obj


def main():
    global RECDIR
    cert, key, portfile, RECDIR = sys.argv[1:5]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
