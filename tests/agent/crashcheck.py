#!/usr/bin/env python3
"""crashcheck.py: SIGKILL keybridged during lifecycle operations, restart it,
and check the crash-consistency invariants of issue 3, point 5
(docs/vaults.md "On the token", docs/internals/store.md "Intent protocol").

Driven by tests/agent/t-crash.sh, which makes the token and the config.
Requests (create, rotate, update of key_ops, delete, recover, purge,
backup, restore of a purged key from its backup, restore onto a taken
name) go
through raw curl on the agent's socket; several may be in flight at once,
each on its own key.  After every restart, hard failures (not ok):

  * an acknowledged operation (2xx received before the kill) is missing: a
    created or rotated version exists, an update's key_ops are stored, a
    deleted key is deleted, a recovered key is active, a purged key is gone,
    a restored key has exactly the backed-up versions, ids and key_ops;
  * a request answered with an error, or never sent (curl could not
    connect), changed the store; one cut short by the kill happened
    entirely or not at all (a restore: every version or none);
  * keys no request touched changed (state, versions, key_ops);
  * an intent is left open;
  * a version in the store lacks its token objects (label = key name,
    id = version bytes; a pair for RSA and EC), an object on the token is
    no version the store knows (the test token holds only the agent's
    objects besides the two backup keys made before the run), or a version
    has duplicate objects;
  * the objects of a soft-deleted key carry a usage flag, or those of an
    active key other flags than its key_ops give;
  * the agent's start-up log does not name, with "has no object on the
    token", every version lacking an object (--check-startup-report).

SoftHSM 2.6.1's file backend is not crash-safe (ObjectFile::writeAttributes
truncates an object file and rewrites it in place; a new object's file is
created before its attributes are written; token.object is rewritten on
every C_Login), and Debian's softhsm2 has no db backend.  Token damage it
causes is tolerated in exactly three cases, each printed as a diagnostic
"# softhsm torn write: ..." and counted in the summary:

  (a) a version's object (or one half of a pair) is missing, and a delete,
      recover or update (key_ops; that version) of that key was sent and
      not answered at the kill: the usage flags were being rewritten.  What
      the torn rewrite left (an object of that class without id, labelled
      with that key's name or not at all) goes with it.  Such objects are
      then no longer expected; every other check still applies to the key;
  (b) an object without label, or without id (or with a short one) and
      labelled with the name of a key whose create, rotate or restore was
      sent and not answered at the kill, while one was in flight: a
      generation or an unwrap cut short;
  (c) the agent cannot start after a kill because token.object was cut
      short (C_Login rewrote it): it is restored from a copy made at the
      start.
Objects tolerated once stay tolerated (they are on the token for good).

The store is read with sqlite3 in read-only mode (file:...?mode=ro), the
token with pkcs11-tool -O; the PIN goes to pkcs11-tool through its
environment (--pin env:NAME), never through argv.

Prints TAP: one line per restart, one per check after it, a few summary
lines, the plan.
"""
import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse

API = "api-version=7.6"

# KV_OP_* bits (agent/kvrules.h).
OP_ENCRYPT, OP_DECRYPT, OP_SIGN, OP_VERIFY, OP_WRAP, OP_UNWRAP = 1, 2, 4, 8, 16, 32


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diags=()):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name), flush=True)
        if not cond:
            self.failed += 1
            for d in diags:
                for line in str(d).splitlines():
                    print("# " + line, flush=True)
        return cond

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line, flush=True)


TAP = Tap()
STATS = {}


# ------------------------------------------------------------------ agent

def running(pid):
    """pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Agent:
    def __init__(self, kbd, conf, sock, errlog):
        self.kbd, self.conf, self.sock, self.errlog = kbd, conf, sock, errlog
        self.proc = None
        self.start_off = 0

    def start(self):
        try:
            self.start_off = os.path.getsize(self.errlog)
        except OSError:
            self.start_off = 0
        err = open(self.errlog, "ab")
        self.proc = subprocess.Popen([self.kbd, "--config", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
        err.close()

    def status_ok(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(self.sock)
            s.sendall(b"GET /keybridge/status HTTP/1.1\r\nHost: localhost\r\n"
                      b"Connection: close\r\n\r\n")
            data = s.recv(64)
            return data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
        except OSError:
            return False
        finally:
            s.close()

    def wait_ready(self, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            if self.status_ok():
                return True
            time.sleep(0.01)
        return False

    def hosts(self):
        """Pids of the agent's keybridge-p11host children (isolate = true)."""
        out = []
        if self.proc is None:
            return out
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == self.proc.pid and os.readlink(
                        "/proc/%s/exe" % d).endswith("/keybridge-p11host"):
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
        return out

    def kill(self):
        hosts = self.hosts()
        STATS["hosts_ended"] = STATS.get("hosts_ended", 0) + len(hosts)
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        # A module host gets SIGTERM with its agent and may finish a call
        # first; the next agent refuses to start while it still serves.
        end = time.monotonic() + 15
        while hosts and time.monotonic() < end:
            hosts = [h for h in hosts if running(h)]
            if hosts:
                time.sleep(0.01)

    def log_since_start(self):
        """What the agent wrote to stderr since its last start."""
        try:
            with open(self.errlog, "rb") as f:
                f.seek(self.start_off)
                return f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []

    def tail(self, n=15):
        return "\n".join(self.log_since_start()[-n:])


# --------------------------------------------------------------- requests

class Req:
    """One operation through curl on the socket, started now."""

    def __init__(self, sock, op, name, body=None, version=None, new_ops=None):
        self.op, self.name = op, name
        self.target, self.new_ops = version, new_ops
        q = urllib.parse.quote(name)
        if op in ("create", "create-deleted"):
            method, path = "POST", "/keys/%s/create" % q
        elif op == "rotate":
            method, path = "POST", "/keys/%s/rotate" % q
        elif op in ("update", "update-bad"):
            method, path = "PATCH", "/keys/%s/%s" % (q, version)
        elif op == "delete":
            method, path = "DELETE", "/keys/%s" % q
        elif op == "recover":
            method, path = "POST", "/deletedkeys/%s/recover" % q
        elif op == "purge":
            method, path = "DELETE", "/deletedkeys/%s" % q
        elif op == "backup":
            method, path = "POST", "/keys/%s/backup" % q
        elif op in ("restore", "restore-taken"):
            method, path = "POST", "/keys/restore"
        else:
            raise ValueError(op)
        argv = ["curl", "-s", "--max-time", "60", "--unix-socket", sock,
                "-X", method, "-w", "\n%{http_code}",
                "http://localhost%s?%s" % (path, API)]
        if body is not None:
            argv[1:1] = ["-H", "Content-Type: application/json",
                         "--data-binary", json.dumps(body)]
        self.body_sent = body
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.code = None
        self.resp = None
        self.curl_rc = None

    def finish(self):
        out, _ = self.proc.communicate()
        self.curl_rc = self.proc.returncode
        text = out.decode("utf-8", "replace")
        body, _, code = text.rpartition("\n")
        try:
            self.code = int(code)
        except ValueError:
            self.code = 0
        self.resp = body
        return self

    @property
    def acked(self):
        return 200 <= self.code < 300

    @property
    def answered_error(self):
        return self.code >= 400

    @property
    def unsent(self):
        """curl could not connect: the agent never saw the request."""
        return not self.code and self.curl_rc == 7

    @property
    def in_flight(self):
        """Sent and not answered when the agent was killed."""
        return not self.code and self.curl_rc != 7

    def blob(self):
        """The value of a backup answer."""
        try:
            v = json.loads(self.resp)["value"]
            return v if isinstance(v, str) and v else None
        except (ValueError, KeyError, TypeError):
            return None

    def version(self):
        """Version id of a create/rotate answer (last part of the kid)."""
        try:
            kid = json.loads(self.resp)["key"]["kid"]
            return kid.rstrip("/").rsplit("/", 1)[1].lower()
        except (ValueError, KeyError, IndexError, TypeError):
            return None

    def describe(self):
        body = self.body_sent
        if body is not None and self.op.startswith("restore"):
            body = {"value": "<backup of %d chars>" % len(body["value"])}
        return "%s %s%s%s -> %s (curl rc %s)" % (
            self.op, self.name, "/" + self.target[:8] if self.target else "",
            " " + json.dumps(body) if body else "",
            "HTTP %d" % self.code if self.code else
            "not sent" if self.unsent else "no answer", self.curl_rc)


# ------------------------------------------------------------------ store

def read_store(db):
    """{name_lc: {"name", "state", "versions": {ver: row}}}, open intents."""
    uri = "file:%s?mode=ro" % urllib.parse.quote(db)
    c = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        keys = {}
        for name, name_lc, state in c.execute(
                "SELECT name, name_lc, state FROM keys"):
            keys[name_lc] = {"name": name, "state": state, "versions": {}}
        for name_lc, ver, kty, size, crv, ops, label, pid in c.execute(
                "SELECT k.name_lc, v.version, v.kty, v.key_size, v.crv, "
                "v.key_ops, v.p11_label, v.p11_id FROM versions v "
                "JOIN keys k ON k.id = v.key_id"):
            keys[name_lc]["versions"][ver.lower()] = {
                "kty": kty, "size": size, "crv": crv, "ops": ops,
                "label": label, "id": bytes(pid).hex()}
        intents = list(c.execute(
            "SELECT id, op, key_name, version FROM intents"))
    finally:
        c.close()
    return keys, intents


# ------------------------------------------------------------------ token

def read_token(module, token_label, pin_env):
    """Objects on the token: list of dicts cls/label/id/usage."""
    argv = ["pkcs11-tool", "--module", module, "--token-label", token_label,
            "-O", "--login", "--pin", "env:" + pin_env]
    # stderr apart: its unbuffered warnings would split the listing's blocks.
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("pkcs11-tool -O failed (%d): %s" % (
            p.returncode, p.stderr.decode("utf-8", "replace")[-500:]))
    objs = []
    cur = None
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            head = line.split(";", 1)[0].strip()
            cls = {"Public Key Object": "pub", "Private Key Object": "priv",
                   "Secret Key Object": "secret"}.get(head)
            if cls is None:
                cls = "data" if head.startswith("Data object") else head
            cur = {"cls": cls, "label": None, "id": None, "usage": None,
                   "access": None, "head": line.strip()}
            objs.append(cur)
            continue
        if cur is None:
            continue
        key, _, val = line.strip().partition(":")
        val = val.strip()
        if key == "label":
            val = val.strip("'")
            cur["label"] = None if val in ("", "<empty>") else val
        elif key == "ID":
            cur["id"] = val.lower() or None
        elif key == "Access":
            cur["access"] = val
        elif key == "Usage":
            cur["usage"] = set() if val == "none" else \
                set(u.strip() for u in val.split(","))
    return objs


def expected_usage(kty, ops):
    """Usage flags per object class for a version's key_ops (docs/vaults.md)."""
    base = kty.replace("-HSM", "")
    if base == "oct":
        s = set()
        if ops & OP_ENCRYPT:
            s.add("encrypt")
        if ops & OP_DECRYPT:
            s.add("decrypt")
        if ops & OP_WRAP:
            s.add("wrap")
        if ops & OP_UNWRAP:
            s.add("unwrap")
        return {"secret": s}
    pub, priv = set(), set()
    if ops & OP_VERIFY:
        pub.add("verify")
    if ops & OP_SIGN:
        priv.add("sign")
    if base == "RSA":
        if ops & (OP_ENCRYPT | OP_WRAP):
            pub.add("encrypt")
        if ops & OP_WRAP:
            pub.add("wrap")
        if ops & (OP_DECRYPT | OP_UNWRAP):
            priv.add("decrypt")
        if ops & OP_UNWRAP:
            priv.add("unwrap")
    return {"pub": pub, "priv": priv}


def obj_sig(o):
    """What identifies a stray object from one listing to the next
    (pkcs11-tool numbers data objects by position)."""
    head = o["head"]
    if head.startswith("Data object"):
        head = "Data object"
    return (o["cls"], head, o["label"], o["id"],
            tuple(sorted(o["usage"] or [])), o["access"])


def obj_desc(o):
    return "%s (label %s, id %s, usage %s, access %s)" % (
        o["head"], "none" if o["label"] is None else repr(o["label"]),
        o["id"] or "none", "{%s}" % ", ".join(sorted(o["usage"])) if o["usage"]
        is not None else "not shown", o["access"])


class Torn:
    """Token damage tolerated as SoftHSM's torn writes, across the run."""

    def __init__(self):
        self.lost = {}          # (name_lc, ver) -> classes lost under (a)
        self.failed = set()     # (name_lc, ver, cls) lost outside (a): reported once
        self.strays = {}        # obj_sig -> count tolerated (or reported) on the token
        self.n_lost = self.n_partial = self.n_tokobj = 0

    def note(self, msg):
        TAP.diag("softhsm torn write: " + msg)


BACKUP_LABELS = ("keybridge backup wrap", "keybridge backup seal")


def want_classes(kty):
    return ["secret"] if kty.startswith("oct") else ["priv", "pub"]


def check_token(keys, objs, torn, flag_flight, gen_flight):
    """Store <-> token invariants.  flag_flight: {name_lc: None (every
    version) or set of versions} whose usage flags a request in flight was
    rewriting; gen_flight: {name_lc} with a create, rotate or restore in
    flight.
    Returns (violations, versions lacking an object as {ver: (name, missing)})."""
    bad = []
    missing_all = {}
    by = {}
    for o in objs:
        by.setdefault((o["label"], o["id"]), []).append(o)
    known = set()
    lost_now = []   # [name_lc, label, cls] lost under (a) in this round
    for n, k in sorted(keys.items()):
        for ver, v in sorted(k["versions"].items()):
            known.add((v["label"], v["id"]))
            found = by.get((v["label"], v["id"]), [])
            have = sorted(o["cls"] for o in found)
            want = want_classes(v["kty"])
            where = "key %s (%s) version %s (%s, label %s, id %s)" % (
                k["name"], k["state"], ver, v["kty"], v["label"], v["id"])
            if len(have) != len(set(have)) or not set(have) <= set(want):
                bad.append("%s: token has %s, not %s: %s" % (
                    where, have, want, " | ".join(obj_desc(o) for o in found)))
            missing = set(want) - set(have)
            if missing:
                missing_all[ver] = (k["name"], missing)
            prev = torn.lost.get((n, ver), set())
            newly = {c for c in missing - prev if (n, ver, c) not in torn.failed}
            if newly:
                fl = flag_flight.get(n, False)
                if fl is None or (fl and ver in fl):
                    torn.lost[(n, ver)] = prev | newly
                    torn.n_lost += len(newly)
                    torn.note("%s lost its %s object(s) while a request "
                              "rewriting its usage flags was in flight" % (
                                  where, "+".join(sorted(newly))))
                    for c in newly:
                        lost_now.append([n, v["label"], c])
                else:
                    torn.failed.update((n, ver, c) for c in newly)
                    same = [o for o in objs if o["label"] == v["label"] or
                            o["label"] is None]
                    bad.append("%s: token has %s, not %s (%s missing since "
                               "this kill), and no delete, "
                               "recover or update of this %s was in flight; "
                               "objects labelled %s or unlabelled: %s" % (
                                   where, have or "no object", want,
                                   "+".join(sorted(newly)),
                                   "key" if fl is False else "version",
                                   v["label"], " | ".join(
                                       obj_desc(o) for o in same) or "none"))
            exp = expected_usage(v["kty"], v["ops"])
            for o in found:
                if o["cls"] not in exp:
                    continue
                if o["usage"] is None:
                    bad.append("%s: pkcs11-tool shows no Usage line for the %s "
                               "object" % (where, o["cls"]))
                    continue
                if k["state"] == "deleted" and o["usage"]:
                    bad.append("%s: deleted, but its %s object has usage {%s}" % (
                        where, o["cls"], ", ".join(sorted(o["usage"]))))
                if k["state"] == "active" and o["usage"] != exp[o["cls"]]:
                    bad.append("%s: active, its %s object has usage {%s}, "
                               "key_ops %d want {%s}" % (
                                   where, o["cls"], ", ".join(sorted(o["usage"])),
                                   v["ops"], ", ".join(sorted(exp[o["cls"]]))))
    # The vault's two backup keys (docs/backup.md), made before the run:
    # there all along, one of each.
    for lab in BACKUP_LABELS:
        n = len(by.get((lab, None), [])) + sum(
            len(v) for k, v in by.items() if k[0] == lab and k[1] is not None)
        if n != 1:
            bad.append("the token has %d objects labelled %r, not 1" % (n, lab))
        known.update(k for k in by if k[0] == lab)
    # Objects no version explains.
    strays = [o for key, os_ in by.items() if key not in known for o in os_]
    left = dict(torn.strays)
    kept = {}
    gen_names = {keys[n]["name"] if n in keys else n for n in gen_flight}
    gen_names_lc = {x.lower() for x in gen_names} | set(gen_flight)
    for o in sorted(strays, key=lambda o: str(obj_sig(o))):
        sig = obj_sig(o)
        if left.get(sig, 0) > 0:      # tolerated in an earlier round
            left[sig] -= 1
            kept[sig] = kept.get(sig, 0) + 1
            continue
        short_id = o["id"] is None or len(o["id"]) < 32
        # (a): the remains of an object whose rewrite was torn.
        rem = None
        if short_id:
            for x in lost_now:
                if (o["cls"] in (x[2], "data") and
                        (o["label"] is None or o["label"] == x[1])):
                    rem = x
                    break
        if rem is not None:
            lost_now.remove(rem)
            kept[sig] = kept.get(sig, 0) + 1
            torn.note("what is left of the lost %s object of %s: %s" % (
                rem[2], rem[1], obj_desc(o)))
            continue
        # (b): a generation cut short.
        if gen_flight and (o["label"] is None or (
                short_id and o["label"].lower() in gen_names_lc)):
            kept[sig] = kept.get(sig, 0) + 1
            torn.n_partial += 1
            torn.note("partial object while a create, rotate or restore of %s "
                      "was in "
                      "flight: %s" % (", ".join(sorted(gen_names)), obj_desc(o)))
            continue
        why = []
        if o["label"] is not None and o["id"] is not None and not short_id:
            why.append("an object with a label and a 16-byte id that the store "
                       "does not know")
        elif not gen_flight:
            why.append("a partial object, and no create, rotate or restore was "
                       "in flight")
        else:
            why.append("its label is not that of a key whose create, rotate "
                       "or restore "
                       "was in flight (%s)" % ", ".join(sorted(gen_names)))
        bad.append("token object unknown to the store: %s -- %s" % (
            obj_desc(o), "; ".join(why)))
        kept[sig] = kept.get(sig, 0) + 1      # reported once
    torn.strays = kept
    return bad, missing_all


# ----------------------------------------------------------------- rounds

def key_body(rng, allow_rsa):
    x = rng.random()
    if allow_rsa and x < 0.04:
        return {"kty": "RSA", "key_size": 2048}
    if x < 0.55:
        return {"kty": rng.choice(["EC", "EC-HSM"]), "crv": "P-256"}
    return {"kty": rng.choice(["oct", "oct-HSM"]), "key_size": rng.choice([128, 256])}


OPS_BY_KTY = {
    "RSA": [("encrypt", OP_ENCRYPT), ("decrypt", OP_DECRYPT), ("sign", OP_SIGN),
            ("verify", OP_VERIFY), ("wrapKey", OP_WRAP), ("unwrapKey", OP_UNWRAP)],
    "EC": [("sign", OP_SIGN), ("verify", OP_VERIFY)],
    "oct": [("encrypt", OP_ENCRYPT), ("decrypt", OP_DECRYPT),
            ("wrapKey", OP_WRAP), ("unwrapKey", OP_UNWRAP)],
}


def update_args(rng, k):
    """(op, version, body, new key_ops bits) for an update of key_ops."""
    ver = rng.choice(sorted(k["versions"]))
    kty = k["versions"][ver]["kty"].replace("-HSM", "")
    if rng.random() < 0.08:
        # An operation the key type cannot do: 400, nothing changes.
        bad = "encrypt" if kty == "EC" else "sign" if kty == "oct" else "import"
        return "update-bad", ver, {"key_ops": [bad]}, None
    table = OPS_BY_KTY[kty]
    pick = [t for t in table if rng.random() < 0.5] or [rng.choice(table)]
    return "update", ver, {"key_ops": [t[0] for t in pick]}, \
        sum(t[1] for t in pick)


# {name_lc: (name, backup value, snap of the key when it was backed up)}:
# the newest acknowledged backup of each key, for restores.
BLOBS = {}


def choose_ops(rng, keys, names, nreq, allow_rsa, allow_backup=True):
    """Up to nreq operations, each on its own key, valid for its state."""
    picks = rng.sample(names, nreq)
    reqs = []
    for name in picks:
        k = keys.get(name.lower())
        blob = BLOBS.get(name.lower())
        if k is None:
            if blob is not None and rng.random() < 0.85:
                # Restored under the name it was backed up with.
                reqs.append(("restore", blob[0], {"value": blob[1]}, None, None))
            else:
                reqs.append(("create", name, key_body(rng, allow_rsa), None, None))
        elif k["state"] == "active":
            x = rng.random()
            if x < 0.2:
                reqs.append(("rotate", name, None, None, None))
            elif x < 0.32:
                reqs.append(("create", name, key_body(rng, allow_rsa), None, None))
            elif x < 0.45:
                op, ver, body, bits = update_args(rng, k)
                reqs.append((op, name, body, ver, bits))
            elif x < 0.65 and allow_backup:
                reqs.append(("backup", name, None, None, None))
            elif x < 0.69 and blob is not None:
                # Refused (409: the name is taken); must change nothing.
                reqs.append(("restore-taken", blob[0], {"value": blob[1]},
                             None, None))
            else:
                reqs.append(("delete", name, None, None, None))
        else:
            x = rng.random()
            if x < (0.25 if blob is not None else 0.45):
                reqs.append(("recover", name, None, None, None))
            elif x < 0.93:
                reqs.append(("purge", name, None, None, None))
            else:
                # Refused (409 ObjectIsDeletedButRecoverable); must change nothing.
                reqs.append(("create-deleted", name, key_body(rng, False), None, None))
    return reqs


def snap(k):
    if k is None:
        return None
    return (k["state"], frozenset((v, r["ops"]) for v, r in k["versions"].items()))


def fmt(k):
    if k is None:
        return "absent"
    return "%s with %d version(s) [%s]" % (
        k["state"], len(k["versions"]), ", ".join(
            "%s key_ops %d" % (v[:8], r["ops"]) for v, r in sorted(k["versions"].items())))


def fmt_snap(sn):
    return "%s with %d version(s) [%s]" % (sn[0], len(sn[1]), ", ".join(
        "%s key_ops %d" % (v[:8], o) for v, o in sorted(sn[1])))


def check_op(r, before, after):
    """Violations for one request, given the key before and after the round."""
    b, a = before, after
    desc = r.describe()
    refused = ("create-deleted", "update-bad", "restore-taken")
    if r.answered_error or r.unsent or r.op in refused + ("backup",):
        # An error answer, a request the agent never saw, a create on a
        # deleted name, an impossible update, a restore onto a taken name,
        # a backup: nothing changed.
        if snap(b) != snap(a):
            return ["%s: key changed from %s to %s" % (desc, fmt(b), fmt(a))]
        if r.op in refused and r.acked:
            return ["%s: this request succeeded" % desc]
        if r.op == "backup" and r.acked and r.blob() is None:
            return ["%s: acknowledged, but the answer has no value" % desc]
        return []
    old = set(b["versions"]) if b else set()
    # Operations other than an update never change an old version's key_ops.
    if a is not None and b is not None and r.op != "update":
        for v in old & set(a["versions"]):
            if a["versions"][v]["ops"] != b["versions"][v]["ops"]:
                return ["%s: key_ops of version %s changed: %s -> %s" % (
                    desc, v, fmt(b), fmt(a))]
    if r.op in ("create", "rotate"):
        if r.acked:
            v = r.version()
            if a is None or v is None or v not in a["versions"]:
                return ["%s: acknowledged version %s is missing; store has %s" % (
                    desc, v, fmt(a))]
            if a["state"] != "active" or set(a["versions"]) != old | {v}:
                return ["%s: after the acknowledged create the key is %s "
                        "(before: %s)" % (desc, fmt(a), fmt(b))]
            return []
        # Cut short: the old versions, plus at most one new one, still active.
        if a is None:
            if b is None:
                return []
            return ["%s (cut short): key vanished (before: %s)" % (desc, fmt(b))]
        new = set(a["versions"]) - old
        if not old <= set(a["versions"]) or len(new) > 1 or a["state"] != "active":
            return ["%s (cut short): key went from %s to %s" % (desc, fmt(b), fmt(a))]
        return []
    if r.op == "update":
        if a is None or set(a["versions"]) != old or a["state"] != b["state"]:
            return ["%s: key went from %s to %s" % (desc, fmt(b), fmt(a))]
        for v in old - {r.target}:
            if a["versions"][v]["ops"] != b["versions"][v]["ops"]:
                return ["%s: another version's key_ops changed: %s -> %s" % (
                    desc, fmt(b), fmt(a))]
        got = a["versions"][r.target]["ops"]
        if r.acked and got != r.new_ops:
            return ["%s: acknowledged, but version %s has key_ops %d, not %d" % (
                desc, r.target, got, r.new_ops)]
        if got not in (r.new_ops, b["versions"][r.target]["ops"]):
            return ["%s (cut short): version %s has key_ops %d, neither the "
                    "old %d nor the new %d" % (desc, r.target, got,
                                               b["versions"][r.target]["ops"],
                                               r.new_ops)]
        return []
    if r.op == "delete":
        if a is None or set(a["versions"]) != old:
            return ["%s: versions changed: %s -> %s" % (desc, fmt(b), fmt(a))]
        if r.acked and a["state"] != "deleted":
            return ["%s: acknowledged delete, but the key is %s" % (desc, a["state"])]
        return []
    if r.op == "recover":
        if a is None or set(a["versions"]) != old:
            return ["%s: versions changed: %s -> %s" % (desc, fmt(b), fmt(a))]
        if r.acked and a["state"] != "active":
            return ["%s: acknowledged recover, but the key is %s" % (desc, a["state"])]
        return []
    if r.op == "restore":
        # All of the backup or nothing: every version, its id and key_ops.
        want = BLOBS[r.name.lower()][2]
        if r.acked and snap(a) != want:
            return ["%s: acknowledged, but the key is %s, not the backup's %s" % (
                desc, fmt(a), fmt_snap(want))]
        if a is not None and snap(a) != want:
            return ["%s (cut short): the key is %s, neither absent nor the "
                    "backup's %s" % (desc, fmt(a), fmt_snap(want))]
        return []
    if r.op == "purge":
        if r.acked and a is not None:
            return ["%s: acknowledged purge, but the key is still there: %s" % (
                desc, fmt(a))]
        if a is not None and snap(a) != snap(b):
            return ["%s (cut short): key went from %s to %s" % (desc, fmt(b), fmt(a))]
        return []
    return ["unknown op %s" % r.op]


NO_OBJECT = "has no object on the token"


def check_report(log, missing):
    """The start-up log names every version lacking an object, and only those."""
    bad = []
    lines = [l for l in log if NO_OBJECT in l]
    text = "\n".join(lines).lower()
    for ver, (name, cls) in sorted(missing.items()):
        if ver not in text:
            bad.append("start-up report: the agent's log does not say that key %s "
                       "version %s %s (%s missing on the token)" % (
                           name, ver, NO_OBJECT, "+".join(sorted(cls))))
    for l in lines:
        hexes = [w for w in l.replace(";", " ").replace(",", " ").split()
                 if len(w) == 32 and all(c in "0123456789abcdefABCDEF" for c in w)]
        if hexes and not any(h.lower() in missing for h in hexes):
            bad.append("start-up report names a version whose objects are all on "
                       "the token: %s" % l.strip())
    return bad


def wait_connected(sock, reqs, timeout=3.0):
    """Until the agent's socket holds a connection for every request still
    running (/proc/net/unix names the path on the listening socket and on
    each connection it accepted or queued), so that a slow machine starting
    curl does not turn the kills into kills before any request."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        running = sum(1 for r in reqs if r.proc.poll() is None)
        try:
            with open("/proc/net/unix") as f:
                conns = sum(1 for l in f if l.rstrip().endswith(" " + sock)) - 1
        except OSError:
            return
        if conns >= running:
            return
        time.sleep(0.001)


def full_check(args, agent, before, reqs, torn):
    """After a restart: every invariant; returns (violations, store)."""
    bad = []
    try:
        keys, intents = read_store(args.db)
    except sqlite3.Error as e:
        return ["cannot read the store: %s" % e], None
    if intents:
        bad.append("open intents after the restart: %s" % intents)
    touched = set()
    flag_flight, gen_flight = {}, set()
    for r in reqs:
        n = r.name.lower()
        touched.add(n)
        bad += check_op(r, before.get(n), keys.get(n))
        if not r.in_flight:
            continue
        if r.op in ("delete", "recover"):
            flag_flight[n] = None
        elif r.op == "update":
            if flag_flight.get(n, set()) is not None:
                flag_flight.setdefault(n, set()).add(r.target)
        elif r.op in ("create", "rotate", "restore"):
            gen_flight.add(n)
    for n in set(before) | set(keys):
        if n not in touched and snap(before.get(n)) != snap(keys.get(n)):
            bad.append("untouched key %s changed: %s -> %s" % (
                n, fmt(before.get(n)), fmt(keys.get(n))))
    for n, k in keys.items():
        if not k["versions"]:
            bad.append("key %s (%s) has no version" % (k["name"], k["state"]))
    # Versions purged are no longer expected anywhere.
    for lk in [x for x in torn.lost if x[0] not in keys or
               x[1] not in keys[x[0]]["versions"]]:
        del torn.lost[lk]
    try:
        objs = read_token(args.module, args.token_label, "KB_CRASH_PIN")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return bad + ["cannot list the token: %s" % e], keys
    tb, missing = check_token(keys, objs, torn, flag_flight, gen_flight)
    bad += tb
    if args.check_startup_report:
        bad += check_report(agent.log_since_start(), missing)
        STATS["report_checked"] = STATS.get("report_checked", 0) + len(missing)
    STATS["stray_max"] = max(STATS.get("stray_max", 0), sum(torn.strays.values()))
    return bad, keys


def involved_log(agent, reqs, bad, round_off):
    """Agent log lines for the report of a failure: since the round began
    (the killed agent and the restarted one), those naming a key of the
    round or of a violation, and every warning or error since the restart."""
    names = {r.name for r in reqs}
    for b in bad:
        for w in b.replace(",", " ").replace(":", " ").split():
            if w.startswith("ck") or w.startswith("Ck-") or w.startswith("crash-key"):
                names.add(w)
    try:
        with open(agent.errlog, "rb") as f:
            f.seek(round_off)
            log = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        log = []
    hits = [l for l in log if any(n in l for n in names)]
    since = agent.log_since_start()
    warn = [l for l in since if "[warn" in l or "[err" in l]
    answers = ["%s: %s" % (r.describe(), r.resp.strip()[:300]) for r in reqs
               if r.answered_error]
    return (["error answers:"] + answers if answers else []) + \
        ["agent log since the round began, lines naming %s:" % ", ".join(
        sorted(names))] + (hits[-25:] or ["(none)"]) + \
        ["agent warnings and errors since the restart:"] + (warn[-25:] or ["(none)"])


def token_object(token_dir):
    if not token_dir:
        return None
    for d in os.listdir(token_dir):
        p = os.path.join(token_dir, d, "token.object")
        if os.path.exists(p):
            return p
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kbd", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--sock", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--module", required=True)
    ap.add_argument("--token-label", required=True)
    ap.add_argument("--pin-file", required=True)
    ap.add_argument("--errlog", required=True)
    ap.add_argument("--kills", type=int, default=210)
    ap.add_argument("--max-seconds", type=float, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--delay-scale", type=float, default=1.0,
                    help="stretch the delay before each kill (a slower agent, "
                    "e.g. under sanitizers, still acknowledges some requests)")
    ap.add_argument("--stop-on-violation", action="store_true")
    ap.add_argument("--token-dir", default=None,
                    help="SoftHSM token directory, to tell a lost token.object")
    ap.add_argument("--check-startup-report", action="store_true",
                    help="the agent's start-up log must name every version "
                    "lacking its object (\"%s\")" % NO_OBJECT)
    ap.add_argument("--startup-report-skip", default="",
                    help="why the start-up report is not checked (a TAP skip)")
    ap.add_argument("--isolated", action="store_true",
                    help="the token's module runs isolated: check that hosts "
                    "were there to end")
    ap.add_argument("--no-backups", default="",
                    help="no backups or restores, and why (a TAP skip)")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    TAP.diag("seed %d (KB_CRASH_SEED=%d reproduces the choices, not the timing)" %
             (seed, seed))
    if args.delay_scale != 1.0:
        TAP.diag("delays before the kills stretched %g times" % args.delay_scale)
    with open(args.pin_file) as f:
        os.environ["KB_CRASH_PIN"] = f.read().strip()

    names = ["ck%d" % i for i in range(10)] + ["Ck-Mixed", "crash-key-%d" % 7]
    agent = Agent(args.kbd, args.conf, args.sock, args.errlog)
    torn = Torn()
    stats = {"kills": 0, "op_kills": 0, "recovery_kills": 0, "requests": 0,
             "acked": 0, "errors": 0, "unsent": 0, "cut": 0, "cut_applied": 0,
             "checks": 0, "violations": 0, "backups": 0, "restores": 0,
             "restores_acked": 0}
    t0 = time.monotonic()
    try:
        agent.start()
        if not TAP.ok(agent.wait_ready(), "agent starts", [agent.tail()]):
            return 1
        keys, _ = read_store(args.db)
        seen = set()
        tok_path = token_object(args.token_dir)
        tok_backup = None
        if tok_path:
            with open(tok_path, "rb") as f:
                tok_backup = f.read()
        while stats["op_kills"] < args.kills:
            if time.monotonic() - t0 > args.max_seconds:
                TAP.ok(False, "time budget of %.0f s exceeded after %d kills" % (
                    args.max_seconds, stats["kills"]))
                break
            nreq = rng.choice([1, 1, 1, 2, 2, 3, 4])
            plan = choose_ops(rng, keys, names, nreq, allow_rsa=rng.random() < 0.5,
                              allow_backup=not args.no_backups)
            before = keys
            try:
                round_off = os.path.getsize(args.errlog)
            except OSError:
                round_off = 0
            reqs = []
            for op, name, body, ver, bits in plan:
                reqs.append(Req(args.sock, op, name, body, ver, bits))
                stats["requests"] += 1
                if rng.random() < 0.3:
                    time.sleep(rng.uniform(0, 0.01) * args.delay_scale)
            if rng.random() < 0.85:   # else some are killed before sent
                wait_connected(args.sock, reqs)
            time.sleep(rng.uniform(0, 0.05) * args.delay_scale)
            agent.kill()
            stats["kills"] += 1
            stats["op_kills"] += 1
            for r in reqs:
                r.finish()
                if r.acked:
                    stats["acked"] += 1
                elif r.answered_error:
                    stats["errors"] += 1
                elif r.unsent:
                    stats["unsent"] += 1
                else:
                    stats["cut"] += 1
            # Sometimes kill it again while it resolves the intents.
            agent.start()
            again = rng.random() < 0.1
            if again:
                time.sleep(rng.uniform(0, 0.03))
                agent.kill()
                stats["kills"] += 1
                stats["recovery_kills"] += 1
                agent.start()
            ready = agent.wait_ready()
            what = "kill %d: %s%s" % (stats["op_kills"], "; ".join(
                r.describe() for r in reqs), "; killed again during start-up"
                if again else "")
            if tok_backup is not None:
                size = os.path.getsize(tok_path)
                if size < len(tok_backup):
                    # (c) SoftHSM rewrites token.object in place (truncate,
                    # then write) on every C_Login: a kill in between loses it.
                    torn.n_tokobj += 1
                    TAP.diag("softhsm torn write: token.object cut to %d bytes "
                             "(was %d) by the kill; the agent %s; restored "
                             "from the copy made at the start" % (
                                 size, len(tok_backup),
                                 "started anyway" if ready else "cannot start"))
                    agent.kill()
                    with open(tok_path, "wb") as f:
                        f.write(tok_backup)
                    agent.start()
                    ready = agent.wait_ready()
            if not TAP.ok(ready, "%s: agent restarts" % what, [agent.tail()]):
                break
            bad, after = full_check(args, agent, before, reqs, torn)
            stats["checks"] += 1
            for r in reqs:
                if r.in_flight and after is not None:
                    b, a = before.get(r.name.lower()), after.get(r.name.lower())
                    if snap(a) != snap(b):
                        stats["cut_applied"] += 1
            # A broken object stays broken: report each violation once.
            new = [b for b in bad if b not in seen]
            seen.update(bad)
            stats["violations"] += len(new)
            TAP.ok(not new, "%s: invariants hold%s" % (
                what, " (%d violation(s) seen before persist)" % (len(bad) - len(new))
                if len(bad) > len(new) else ""),
                new + (involved_log(agent, reqs, new, round_off) if new else []))
            if after is None or (bad and args.stop_on_violation):
                break
            for r in reqs:
                if r.op == "backup" and r.acked and r.blob() is not None:
                    n = r.name.lower()
                    BLOBS[n] = (r.name, r.blob(), snap(before[n]))
                    stats["backups"] += 1
                elif r.op == "restore":
                    stats["restores"] += 1
                    if r.acked:
                        stats["restores_acked"] += 1
            keys = after
    finally:
        agent.kill()
    el = time.monotonic() - t0
    TAP.diag("%d kills (%d during operations, %d during start-up recovery), "
             "%d requests: %d acknowledged, %d refused, %d never sent, %d cut "
             "short (%d of them took effect); %d checks, %d distinct "
             "violations; %.1f s" % (
                 stats["kills"], stats["op_kills"], stats["recovery_kills"],
                 stats["requests"], stats["acked"], stats["errors"],
                 stats["unsent"], stats["cut"], stats["cut_applied"],
                 stats["checks"], stats["violations"], el))
    TAP.diag("%d torn writes tolerated: %d lost objects during delete/recover "
             "in flight, %d partial objects from create/rotate in flight, %d "
             "token.object restores" % (
                 torn.n_lost + torn.n_partial + torn.n_tokobj, torn.n_lost,
                 torn.n_partial, torn.n_tokobj))
    TAP.diag("at most %d stray object(s) on the token at once; %d version(s) "
             "without objects at the end" % (STATS.get("stray_max", 0),
                                              len(torn.lost)))
    TAP.ok(stats["op_kills"] >= args.kills,
           "%d kills during create, rotate, update, delete, recover, purge, "
           "backup and restore (at least %d)" % (stats["op_kills"], args.kills))
    if args.isolated:
        TAP.ok(STATS.get("hosts_ended", 0) >= stats["kills"] // 2,
               "the module ran in keybridge-p11host: %d hosts ended with the %d "
               "killed agents" % (STATS.get("hosts_ended", 0), stats["kills"]))
    if args.no_backups:
        print("ok %d - restores were among them # SKIP %s" % (
            TAP.n + 1, args.no_backups), flush=True)
        TAP.n += 1
    else:
        TAP.ok(stats["restores"] >= 10 and stats["restores_acked"] > 0,
               "restores were among them: %d sent (%d acknowledged), from %d "
               "acknowledged backups" % (stats["restores"],
                                        stats["restores_acked"],
                                        stats["backups"]))
    TAP.ok(stats["cut"] > 0 and stats["acked"] > 0,
           "both acknowledged and cut-short requests occurred (%d, %d)" % (
               stats["acked"], stats["cut"]))
    if args.check_startup_report:
        TAP.ok(True, "the start-up log named every version without its object "
               "(%d namings checked)" % STATS.get("report_checked", 0))
    else:
        print("ok %d - the start-up log names every version without its object "
              "# SKIP %s" % (TAP.n + 1, args.startup_report_skip or "not asked"),
              flush=True)
        TAP.n += 1
    print("1..%d" % TAP.n, flush=True)
    return 1 if TAP.failed else 0


if __name__ == "__main__":
    sys.exit(main())
