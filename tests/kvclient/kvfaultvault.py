#!/usr/bin/env python3
"""kvfaultvault.py: a loopback HTTPS Key Vault with real state and
injected faults, for kv-client's limiter and safe create/import/rotate
tests.  Usage: kvfaultvault.py CERT KEY PORTFILE

Keys have versions: POST /keys/N/create, PUT /keys/N (import) and
POST /keys/N/rotate each make one; GET /keys/N[/V] and
GET /keys/N/versions (two items a page, nextLink with $skiptoken) read
them.  DELETE /keys/N moves a key to the deleted keys, DELETE
/deletedkeys/N purges it, POST /keys/N/backup gives an opaque blob and
POST /keys/restore {"value": blob} brings its key back.  No
authentication (the tests' clients have no token source).

Control (no api-version):
  POST /_fault {"method", "path", "action", "count", "skip", "headers"}
     (the first "skip" matching requests pass untouched)
     action: 503-before | reset-before | 503-after | reset-after |
             stall-after (3 s) | 500 | 429 (with headers)
     "-after" makes the version first, then loses the answer.
  POST /_throttle {"create": N, "other": N, "maint": N, "window_ms": W}: a
     sliding window per class (create, import and rotate are "create";
     delete, purge, backup and restore "maint", Managed HSM's ten a
     second, whatever the host); above it,
     429 with retry-after-ms saying when the window frees.  0: off.
  POST /_reset: forget every key, fault, counter and throttle.
  GET /_stats: versions per key, hits per "METHOD path", and per class
     accepted, throttled, the busiest window and first/last times.
"""
import base64
import collections
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "2026-04-01"
lock = threading.RLock()
CLASSES = ("create", "other", "maint")


def fresh_state():
    return {
        "keys": {},          # name -> [bundle, ...] oldest first
        "deleted": {},       # name -> [bundle, ...]
        "backups": {},       # blob -> (name, [bundle, ...])
        "faults": [],
        "hits": {},
        "throttle": {"create": 0, "other": 0, "maint": 0, "window_ms": 1000},
        "win": {c: collections.deque() for c in CLASSES},
        "cls": {c: {"accepted": 0, "throttled": 0, "max_window": 0,
                    "first": 0.0, "last": 0.0} for c in CLASSES},
    }


S = fresh_state()


def classify(method, parts):
    # parts: ["", "keys", name, ...]
    if method == "POST" and len(parts) == 4 and parts[3] in ("create", "rotate"):
        return "create"
    if method == "PUT" and len(parts) == 3:
        return "create"
    # NOTES.md 4.2: Managed HSM's "delete, purge, backup, restore".
    if method == "DELETE" and len(parts) == 3:
        return "maint"
    if method == "POST" and len(parts) == 4 and parts[3] == "backup":
        return "maint"
    if method == "POST" and len(parts) == 3 and parts[1:] == ["keys", "restore"]:
        return "maint"
    return "other"


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b"", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, msg, headers=()):
        return self.send(status, {"error": {"code": code, "message": msg}}, headers)

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def control(self, path, body):
        global S
        with lock:
            if path == "/_stats" and self.command == "GET":
                return self.send(200, {
                    "versions": {k: len(v) for k, v in S["keys"].items()},
                    "hits": S["hits"], "cls": S["cls"],
                    "faults_left": len(S["faults"])})
            if path == "/_reset" and self.command == "POST":
                S = fresh_state()
                return self.send(200, {})
            doc = json.loads(body or b"{}")
            if path == "/_fault" and self.command == "POST":
                doc.setdefault("count", 1)
                S["faults"].append(doc)
                return self.send(200, {})
            if path == "/_throttle" and self.command == "POST":
                S["throttle"] = {c: int(doc.get(c, 0)) for c in CLASSES}
                S["throttle"]["window_ms"] = int(doc.get("window_ms", 1000))
                return self.send(200, {})
        return self.error(404, "NotFound", "no such control path")

    def take_fault(self, path):
        with lock:
            for f in S["faults"]:
                if f["method"] == self.command and f["path"] == path and f["count"] > 0:
                    if f.get("skip", 0) > 0:
                        f["skip"] -= 1
                        return None
                    f["count"] -= 1
                    if f["count"] == 0:
                        S["faults"].remove(f)
                    return f
        return None

    def throttled(self, cls):
        """None, or the ms until the class's window frees (a 429)."""
        now = time.monotonic()
        with lock:
            t = S["throttle"]
            limit = t[cls]
            w = S["win"][cls]
            win = t["window_ms"] / 1000.0
            st = S["cls"][cls]
            while w and w[0] <= now - win:
                w.popleft()
            if limit > 0 and len(w) >= limit:
                st["throttled"] += 1
                return max(1, int((w[0] + win - now) * 1000) + 1)
            w.append(now)
            st["accepted"] += 1
            st["max_window"] = max(st["max_window"], len(w))
            if st["first"] == 0.0:
                st["first"] = now
            st["last"] = now
        return None

    def bundle(self, name, kty, hsm):
        host = self.headers.get("Host")
        ver = uuid.uuid4().hex
        now = int(time.time())
        key = {"kid": "https://%s/keys/%s/%s" % (host, urllib.parse.quote(name, safe=""), ver),
               "kty": kty + ("-HSM" if hsm and not kty.endswith("-HSM") else ""),
               "key_ops": ["sign", "verify"]}
        if kty.startswith("EC"):
            key.update({"crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
        else:
            key.update({"n": "u" * 342, "e": "AQAB"})
        return {"key": key, "attributes": {"enabled": True, "created": now,
                                           "updated": now,
                                           "recoveryLevel": "Recoverable+Purgeable"}}

    def make_version(self, op, name, body):
        doc = json.loads(body) if body else {}
        with lock:
            vers = S["keys"].get(name)
            if op == "rotate":
                if not vers:
                    return None
                kty = vers[-1]["key"]["kty"]
                b = self.bundle(name, kty, False)
            elif op == "import":
                b = self.bundle(name, doc.get("key", {}).get("kty", "RSA"), doc.get("Hsm"))
            else:
                b = self.bundle(name, doc.get("kty", "RSA"), False)
            S["keys"].setdefault(name, []).append(b)
            return b

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        body = self.read_body()
        if path.startswith("/_"):
            return self.control(path, body)
        with lock:
            k = "%s %s" % (self.command, path)
            S["hits"][k] = S["hits"].get(k, 0) + 1
        q = urllib.parse.parse_qs(u.query)
        if q.get("api-version") != [API]:
            return self.error(400, "BadParameter", "api-version")
        parts = path.split("/")
        if len(parts) < 3 or parts[1] not in ("keys", "deletedkeys") or parts[2] == "":
            return self.error(404, "NotFound", "no such path")
        name = urllib.parse.unquote(parts[2])
        cls = classify(self.command, parts)
        fault = self.take_fault(path)
        if fault and fault["action"] == "429":
            return self.error(429, "Throttled", "Too many requests",
                              [tuple(h) for h in fault.get("headers", [])])
        wait = self.throttled(cls)
        if wait is not None:
            return self.error(429, "Throttled", "Rate limit is exceeded.",
                              [("retry-after-ms", str(wait))])
        act = fault["action"] if fault else None
        if act == "503-before":
            return self.error(503, "ServiceUnavailable", "busy")
        if act == "reset-before":
            return self.reset()
        if act == "500":
            return self.error(500, "InternalServerError", "injected")
        if cls == "maint":
            return self.maint(parts, name, body)
        if parts[1] != "keys":
            return self.error(404, "NotFound", "no such path")

        op = None
        if self.command == "POST" and len(parts) == 4 and parts[3] == "create":
            op = "create"
        elif self.command == "POST" and len(parts) == 4 and parts[3] == "rotate":
            op = "rotate"
        elif self.command == "PUT" and len(parts) == 3:
            op = "import"
        if op:
            b = self.make_version(op, name, body)
            if b is None:
                return self.error(404, "KeyNotFound", "A key with (name/id) %s was not found in this key vault." % name)
            if act == "503-after":
                return self.error(503, "ServiceUnavailable", "busy")
            if act == "reset-after":
                return self.reset()
            if act == "stall-after":
                time.sleep(3)
                try:
                    return self.send(200, b)
                except OSError:
                    return
            return self.send(200, b)
        if self.command != "GET":
            return self.error(405, "MethodNotAllowed", "method")
        with lock:
            vers = list(S["keys"].get(name) or [])
        if not vers:
            return self.error(404, "KeyNotFound", "A key with (name/id) %s was not found in this key vault." % name)
        if len(parts) == 3:
            return self.send(200, vers[-1])
        if len(parts) == 4 and parts[3] == "versions":
            skip = int(q.get("$skiptoken", ["0"])[0])
            page = vers[skip:skip + 2]
            doc = {"value": [{"kid": b["key"]["kid"], "attributes": b["attributes"]}
                             for b in page]}
            if skip + 2 < len(vers):
                doc["nextLink"] = "https://%s%s?api-version=%s&$skiptoken=%d" % (
                    self.headers.get("Host"), path, API, skip + 2)
            else:
                doc["nextLink"] = None
            return self.send(200, doc)
        if len(parts) == 4:
            for b in vers:
                if b["key"]["kid"].endswith("/" + parts[3]):
                    return self.send(200, b)
            return self.error(404, "KeyNotFound", "no such version")
        return self.error(404, "NotFound", "no such path")

    def maint(self, parts, name, body):
        not_found = "A key with (name/id) %s was not found in this key vault." % name
        with lock:
            if self.command == "DELETE" and parts[1] == "deletedkeys":
                if S["deleted"].pop(name, None) is None:
                    return self.error(404, "KeyNotFound", not_found)
                return self.send(204)
            if self.command == "DELETE":
                vers = S["keys"].pop(name, None)
                if vers is None:
                    return self.error(404, "KeyNotFound", not_found)
                S["deleted"][name] = vers
                b = dict(vers[-1])
                now = int(time.time())
                b.update({"recoveryId": "https://%s/deletedkeys/%s" % (
                    self.headers.get("Host"), urllib.parse.quote(name, safe="")),
                    "deletedDate": now, "scheduledPurgeDate": now + 90 * 86400})
                return self.send(200, b)
            if parts[2] == "restore" and len(parts) == 3:
                blob = (json.loads(body) if body else {}).get("value")
                if blob not in S["backups"]:
                    return self.error(400, "BadParameter", "not a backup")
                rname, vers = S["backups"][blob]
                if rname in S["keys"] or rname in S["deleted"]:
                    return self.error(409, "Conflict", "key %s exists" % rname)
                S["keys"][rname] = list(vers)
                return self.send(200, vers[-1])
            vers = S["keys"].get(name)
            if not vers:
                return self.error(404, "KeyNotFound", not_found)
            blob = base64.urlsafe_b64encode(("kfv-backup:%s:%s" % (
                name, uuid.uuid4().hex)).encode()).decode().rstrip("=")
            S["backups"][blob] = (name, list(vers))
            return self.send(200, {"value": blob})

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
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
