#!/usr/bin/env python3
"""kvserver.py: a loopback HTTPS server that plays Key Vault (challenge,
bearer tokens, faults) and an Entra ID v2 token endpoint, for kv-client's
tests.  Usage: kvserver.py CERT KEY PORTFILE

Vault side, paths /s/<scenario>/<id>...: no Authorization gives Key
Vault's 401 challenge (resource https://vault.azure.net, or a foreign one
on /s/foreign); a token not issued here gives 401 too.  Per-path hit
counters make "fail N times, then answer" scenarios.  GET /_stats (no
auth) returns the counters the tests assert on.

Token side, POST /<tenant>/oauth2/v2.0/token: checks the form fields of
the client credentials grant (client_id, client_secret, scope,
grant_type) and the content type, and issues oauth-token-<n>.
"""
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cr&t=+/ x%~"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AUTHZ = "https://login.microsoftonline.com/" + TENANT

lock = threading.RLock()
hits = {}
stats = {"token_requests": 0, "token_bad_form": 0, "probe_with_body": 0,
         "authed": 0, "unauthed": 0, "bad_token": 0}
issued = {"test-token"}


def bump(key):
    with lock:
        hits[key] = hits.get(key, 0) + 1
        return hits[key]


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b"", ctype="application/json; charset=utf-8",
             headers=(), length=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("x-ms-request-id", "req-%d" % bump("_reqid"))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def challenge(self, resource="https://vault.azure.net", msg="AKV10000: Request is missing a Bearer or PoP token."):
        self.send(401, {"error": {"code": "Unauthorized", "message": msg}},
                  headers=[("WWW-Authenticate",
                            'Bearer authorization="%s", resource="%s"' % (AUTHZ, resource))])

    def do_token(self, tenant, body):
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
        ok = (self.headers.get("Content-Type") == "application/x-www-form-urlencoded" and
              form.get("client_id") == [CLIENT_ID] and
              form.get("scope") == ["https://vault.azure.net/.default"] and
              form.get("grant_type") == ["client_credentials"] and tenant == TENANT)
        with lock:
            stats["token_requests"] += 1
            if not ok:
                stats["token_bad_form"] += 1
        if not ok:
            return self.send(400, {"error": "invalid_request", "error_description":
                                   "AADSTS900144: a form field is missing or wrong.\r\nTrace ID: x"})
        if form.get("client_secret") != [CLIENT_SECRET]:
            return self.send(401, {"error": "invalid_client", "error_description":
                                   "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: y",
                                   "error_codes": [7000215]})
        with lock:
            tok = "oauth-token-%d" % stats["token_requests"]
            issued.add(tok)
        self.send(200, {"token_type": "Bearer", "expires_in": 3599,
                        "ext_expires_in": 3599, "access_token": tok})

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        parts = u.path.split("/")
        body = self.read_body()
        if u.path == "/_stats":
            with lock:
                return self.send(200, dict(stats, hits=hits))
        if len(parts) == 5 and parts[2:] == ["oauth2", "v2.0", "token"] and self.command == "POST":
            return self.do_token(parts[1], body)
        if len(parts) < 3 or parts[1] != "s":
            return self.send(404, {"error": {"code": "NotFound", "message": "no such path"}})
        scen = parts[2]
        q = urllib.parse.parse_qs(u.query)
        if q.get("api-version") != ["2026-04-01"]:
            return self.send(400, {"error": {"code": "BadParameter", "message": "api-version"}})
        auth = self.headers.get("Authorization")
        if auth is None:
            with lock:
                stats["unauthed"] += 1
                if self.command in ("POST", "PUT", "PATCH") and body:
                    stats["probe_with_body"] += 1
            return self.challenge("https://vault.evil.example" if scen == "foreign" else "https://vault.azure.net")
        if not auth.startswith("Bearer ") or auth[7:] not in issued:
            with lock:
                stats["bad_token"] += 1
            return self.challenge(msg="AKV10022: Invalid audience.")
        with lock:
            stats["authed"] += 1
        key = u.path
        n = bump(key)
        if scen == "ok":
            return self.send(200, {"attempts": n, "method": self.command,
                                   "body": json.loads(body) if body else None,
                                   "exp": 2524723200, "far": 4102444800123})
        if scen == "rechallenge":
            if n == 1:
                return self.challenge(msg="AKV10032: Token expired.")
            return self.send(200, {"attempts": n})
        if scen == "429-always":
            return self.send(429, {"error": {"code": "Throttled", "message": "Too many requests"}},
                             headers=[("Retry-After", "1")])
        if scen.startswith("429-"):
            if n == 1:
                h = {"429-ra": ("Retry-After", "1"),
                     "429-ms": ("retry-after-ms", "300"),
                     "429-xms": ("x-ms-retry-after-ms", "300"),
                     "429-date": ("Retry-After", formatdate(time.time() + 2, usegmt=True)),
                     "429-none": None}[scen]
                return self.send(429, {"error": {"code": "Throttled", "message": "Too many requests"}},
                                 headers=[h] if h else [])
            return self.send(200, {"attempts": n, "at": time.time()})
        if scen == "503":
            if n == 1:
                return self.send(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}})
            return self.send(200, {"attempts": n})
        if scen == "503-always":
            return self.send(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}})
        if scen == "reset":
            if n == 1:
                # RST instead of an answer.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            return self.send(200, {"attempts": n})
        if scen == "stall":
            time.sleep(3)
            return self.send(200, {"late": True})
        if scen == "trunc":
            self.close_connection = True
            return self.send(200, b'{"key": {"kid": "https://x', length=200)
        if scen == "badjson":
            return self.send(200, b'{"key": {"kid": ')
        if scen == "big":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b'"' + b"x" * 4000 + b'",'
            self.wfile.write(b"1\r\n[\r\n")
            for _ in range(64):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"2\r\n1]\r\n0\r\n\r\n")
            return
        if scen == "conflict":
            # A soft-deleted name reused (NOTES.md 1.4): the innererror.
            return self.send(409, {"error": {
                "code": "Conflict",
                "message": "Key kc is currently in a deleted but recoverable state.",
                "innererror": {"code": "ObjectIsDeletedButRecoverable"}}})
        if scen == "html":
            return self.send(200, b"<html><body>Sign in</body></html>", ctype="text/html")
        if scen == "pages":
            # /s/pages/<id>?page=N&end=<null|absent|empty|foreign>
            page = int(q.get("page", ["0"])[0])
            end = q.get("end", ["null"])[0]
            host = self.headers.get("Host")
            items = [{"kid": "https://%s/keys/k%d" % (host, page * 25 + i)} for i in range(25 if page < 2 else 3)]
            doc = {"value": items}
            if page < 2:
                doc["nextLink"] = "https://%s%s?api-version=7.2&page=%d&end=%s&$skiptoken=abc%%3D%%3D" % (host, u.path, page + 1, end)
                if end == "foreign" and page == 1:
                    doc["nextLink"] = "https://login.example:443/s/pages/x?page=2"
            elif end == "null":
                doc["nextLink"] = None
            elif end == "empty":
                doc["nextLink"] = ""
            return self.send(200, doc)
        if scen == "dense":
            # /s/dense/<id>?page=N&bad=<0|1>: a first page whose tree is
            # many times its text (900 small items: kv-client's page
            # arena overflows), then 3 items, or the same 900 cut short.
            page = int(q.get("page", ["0"])[0])
            bad = q.get("bad", ["0"])[0] == "1"
            host = self.headers.get("Host")
            if page == 0:
                doc = {"value": [{"kid": "k"}] * 900,
                       "nextLink": "https://%s%s?page=1&bad=%d" % (host, u.path, bad)}
                return self.send(200, doc)
            if bad:
                return self.send(200, b'{"value":[' + b'{"kid":"k"},' * 900)
            return self.send(200, {"value": [{"kid": "k"}] * 3})
        return self.send(404, {"error": {"code": "NotFound", "message": "no scenario " + scen}})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    cert, key, portfile = sys.argv[1:4]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
