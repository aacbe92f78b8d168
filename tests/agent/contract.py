#!/usr/bin/env python3
"""contract.py: Key Vault's own request examples against keybridged (TAP).

Every example in the Key Vault keys spec's examples folder
(azure-rest-api-specs, data-plane/Keys/examples/2026-04-01, copied to
../shared/keyvault/spec/2026-04-01/examples) that applies to a keys vault
is sent to the agent, with the example's api-version, and the answer is
checked against the example's response:

  - the status is the example's success status (200 or 204);
  - the body has every field name of the example's body, recursively,
    with the same JSON type (string, number, bool, object, array, null);
    for an array, the first element of each is compared.  Values differ
    and are not compared, except where this script made the input itself
    (a decrypt of its own ciphertext, a verify of its own signature).

The examples came from another vault, so the requests are adapted, and
only what must be: key names get a suffix unique to this run; a version
in the path becomes a real version of that key (each distinct example
version of a key maps to a distinct real version, made by rotating when
needed); ciphertexts, signatures and backup blobs are made by earlier
requests to the agent; a $skiptoken is one the agent gave on the page
before.  Keys the examples assume exist are created first, in the shape
the example's response shows (its tags, enabled, nbf, exp), so a missing
field is the agent's, not the setup's.

Examples that do not apply to a keys vault of this agent are skipped by
name (SKIP below, each with its reason), and the few fields the agent
cannot produce are listed in EXEMPT with theirs.  An example file that is
in neither the plan nor SKIP fails: a new example must be looked at.

Usage:
  contract.py --socket PATH                      the agent's Unix socket
  contract.py --url https://127.0.0.1:PORT --ca FILE --token-file FILE
                                                 HTTPS with a bearer token
Options:
  --examples DIR   the examples (default: ../../../shared/keyvault/spec/
                   2026-04-01/examples from this file, or $KB_KV_EXAMPLES)
  --vault NAME     send requests under /vaults/NAME (default vault if not)
  --first N        number the TAP tests from N (the caller printed N-1)
  --only A,B       run only these examples (their setup still runs)
  --prefix TEXT    put TEXT before each test name (e.g. "https: ")

Standard library only.  The bearer token is read from its file and never
printed.
"""
import base64
import copy
import http.client
import json
import os
import secrets
import socket
import ssl
import sys
import urllib.parse

# Examples that do not apply to a keys vault of keybridge, with the reason
# printed in the TAP SKIP directive.
SKIP = {
    "release": "needs an exportable key with a release policy and an "
               "attestation token; keys of a local vault never leave the "
               "token, so the agent refuses exportable keys by design",
    "securewrapkey": "2026-04-01 TEE operation: the key is made and wrapped "
                     "inside a Managed HSM's trusted execution environment",
    "secureunwrapkey": "2026-04-01 TEE operation: needs a Microsoft Azure "
                       "Attestation token of the target TEE",
    "GetKeyAttestation": "key attestation (certificatePemFile, "
                         "private/publicKeyAttestation) comes from the HSM "
                         "vendor; SoftHSM and PKCS#11 have none",
}

# Examples the agent does not serve yet: run, reported as TAP TODO (an
# expected failure that does not fail the suite), so the day they pass
# shows.  Remove a line when its operation lands.
TODO = {
}

# Fields of an example response the agent cannot produce, as
# "Example:json.path" (or "*:json.path" for every example), with reasons.
# Keep this minimal: each line hides a difference from Key Vault.
EXEMPT = {
}

HTTP_TIMEOUT = 60
EXCERPT = 600


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def shape_diff(example, want, got, path=""):
    """Problems of got against want: missing fields, other JSON types."""
    out = []
    where = path or "the body"
    if jtype(want) != jtype(got):
        return ["%s: %s in the example, %s here" % (where, jtype(want), jtype(got))]
    if isinstance(want, dict):
        for k, v in want.items():
            p = path + "." + k if path else k
            if exempt(example, p):
                continue
            if k not in got:
                out.append("%s: missing (the example has a %s)" % (p, jtype(v)))
            else:
                out += shape_diff(example, v, got[k], p)
    elif isinstance(want, list) and want:
        if not got:
            out.append("%s: an empty array (the example's has %s elements)"
                       % (where, jtype(want[0])))
        else:
            out += shape_diff(example, want[0], got[0], path + "[0]")
    return out


def fields(v):
    """How many field names shape_diff compares in v."""
    if isinstance(v, dict):
        return sum(1 + fields(x) for x in v.values())
    if isinstance(v, list) and v:
        return fields(v[0])
    return 0


def exempt(example, path):
    return ("%s:%s" % (example, path)) in EXEMPT or ("*:" + path) in EXEMPT


class Fail(Exception):
    """A setup request or an adaptation failed: the example cannot run."""


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=HTTP_TIMEOUT)
        self.sock_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(HTTP_TIMEOUT)
        self.sock.connect(self.sock_path)


class Client:
    """One request per connection: a refused or failed request never
    leaves a half-read connection for the next one."""

    def __init__(self, args):
        self.sock = args.socket
        self.token = None
        self.prefix = "/vaults/" + args.vault if args.vault else ""
        if args.url:
            u = urllib.parse.urlsplit(args.url)
            if u.scheme != "https" or not u.hostname:
                raise SystemExit("--url must be https://HOST[:PORT]")
            self.host, self.port = u.hostname, u.port or 443
            self.ctx = ssl.create_default_context(cafile=args.ca)
            with open(args.token_file) as f:
                self.token = f.read().strip()
            if not self.token:
                raise SystemExit("the token file is empty")

    def conn(self):
        if self.sock:
            return UnixConnection(self.sock)
        return http.client.HTTPSConnection(self.host, self.port,
                                           timeout=HTTP_TIMEOUT, context=self.ctx)

    def request(self, method, path, query, body=None):
        """(status, parsed JSON or None, raw text) of METHOD prefix+path."""
        q = "&".join(k + "=" + v for k, v in query)
        url = self.prefix + path + ("?" + q if q else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        c = self.conn()
        try:
            c.request(method, url, body=data, headers=headers)
            r = c.getresponse()
            raw = r.read()
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            raise Fail("%s %s: %s" % (method, url, e))
        finally:
            c.close()
        text = raw.decode("utf-8", "replace")
        parsed = None
        if raw:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return status, parsed, text


def qv(s):
    return urllib.parse.quote(str(s), safe="")


def excerpt(text):
    text = text.replace("\n", " ")
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


def kid_version(kid):
    """The version at the end of a versioned kid, or None."""
    if not isinstance(kid, str):
        return None
    parts = urllib.parse.urlsplit(kid).path.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-3] == "keys":
        return parts[-1]
    return None


def body_kid(body):
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("key"), dict):
        return body["key"].get("kid")
    return body.get("kid")


def skiptoken(next_link):
    """The raw $skiptoken query member of a nextLink (kept as sent)."""
    if not isinstance(next_link, str):
        return None
    for part in urllib.parse.urlsplit(next_link).query.split("&"):
        if part.startswith("$skiptoken=") or part.startswith("%24skiptoken="):
            return part.split("=", 1)[1]
    return None


class Run:
    def __init__(self, client, examples):
        self.c = client
        self.ex = examples
        self.suffix = secrets.token_hex(4)
        # lower-cased example name -> {"name", "versions", "map", "deleted"}
        # (Key Vault's names are case-insensitive: Key01 and key01 are one key).
        self.keys = {}
        self.saved = {}     # values made by earlier steps (signatures, blobs)

    # --------------------------------------------------------- requests
    def send(self, method, path, api_version, body=None, query=()):
        return self.c.request(method, path,
                              [("api-version", qv(api_version))] + list(query), body)

    def setup(self, what, method, path, body=None, want=200, query=(), av="7.5"):
        st, j, text = self.send(method, path, av, body, query)
        if st != want:
            raise Fail("setup %s: %s %s answered %d (wanted %d): %s"
                       % (what, method, path, st, want, excerpt(text)))
        return j

    # ------------------------------------------------------------- keys
    def real(self, exname):
        k = self.keys.get(exname.lower())
        return k["name"] if k else "%s-%s" % (exname, self.suffix)

    def key(self, exname):
        return self.keys.setdefault(exname.lower(), {
            "name": "%s-%s" % (exname, self.suffix), "versions": [], "map": {},
            "deleted": False})

    def note_bundle(self, exname, ex_body, body):
        """Record the real version of a returned KeyBundle, mapped to the
        example's version when the example's bundle shows one."""
        k = self.key(exname)
        real_v = kid_version(body_kid(body))
        if real_v is None:
            return
        if real_v not in k["versions"]:
            k["versions"].append(real_v)
        ex_v = kid_version(body_kid(ex_body))
        if ex_v is not None and ex_v not in k["map"]:
            k["map"][ex_v] = real_v

    def ensure(self, exname, like=None, kty="RSA", key_size=2048):
        """The key exists (created now if not), in the shape of the example
        bundle `like`: its tags, enabled, nbf and exp."""
        k = self.key(exname)
        if k["versions"] and not k["deleted"]:
            return k
        if k["deleted"]:
            raise Fail("setup: %s was deleted by an earlier step" % k["name"])
        body = {"kty": kty, "key_size": key_size}
        if isinstance(like, dict):
            if isinstance(like.get("tags"), dict):
                body["tags"] = like["tags"]
            at = {a: like["attributes"][a] for a in ("enabled", "nbf", "exp")
                  if a in like.get("attributes", {})}
            if at:
                body["attributes"] = at
        j = self.setup("create " + k["name"], "POST",
                       "/keys/%s/create" % k["name"], body)
        self.note_bundle(exname, None, j)
        return k

    def version(self, exname, ex_version, like=None):
        """The real version standing for the example's version of a key:
        the same one each time; a new version (rotate) for each new one."""
        k = self.ensure(exname, like)
        if ex_version in k["map"]:
            return k["map"][ex_version]
        used = set(k["map"].values())
        free = [v for v in k["versions"] if v not in used]
        if not free:
            j = self.setup("rotate " + k["name"], "POST",
                           "/keys/%s/rotate" % k["name"])
            self.note_bundle(exname, None, j)
            free = [v for v in k["versions"] if v not in used]
            if not free:
                raise Fail("setup: rotate of %s gave no new version" % k["name"])
        k["map"][ex_version] = free[0]
        return free[0]

    def ensure_deleted(self, exname, like=None):
        k = self.key(exname)
        if not k["deleted"]:
            self.ensure(exname, like)
            self.setup("delete " + k["name"], "DELETE", "/keys/" + k["name"])
            k["deleted"] = True
        return k

    # --------------------------------------------------------- examples
    @staticmethod
    def body_param(ex):
        """The example's request body: its one object-valued parameter."""
        objs = [v for v in ex["parameters"].values() if isinstance(v, dict)]
        return copy.deepcopy(objs[0]) if objs else None

    @staticmethod
    def success(ex):
        for s in ("200", "201", "204"):
            if s in ex["responses"]:
                return int(s), ex["responses"][s].get("body")
        raise Fail("the example has no success response")

    def paged(self, path, av, maxresults):
        """First page (setup), then the example's request: the same with
        the agent's own $skiptoken, as the example carries Key Vault's."""
        j = self.setup("first page of " + path, "GET", path,
                       query=[("maxresults", qv(maxresults))], av=av)
        tok = skiptoken(j.get("nextLink") if isinstance(j, dict) else None)
        if tok is None:
            raise Fail("setup: the first page of %s (maxresults=%s) has no "
                       "nextLink with a $skiptoken: %s"
                       % (path, maxresults, excerpt(json.dumps(j))))
        return [("maxresults", qv(maxresults)), ("$skiptoken", tok)]

    def plan(self, name, ex):
        """(method, path, body, query, extra-check) for one example, after
        running the setup it needs."""
        p = ex["parameters"]
        av = p["api-version"]
        _, want = self.success(ex)
        body = self.body_param(ex)
        exname = p.get("key-name")
        exver = p.get("key-version")

        if name == "CreateKey":
            k = self.key(exname)
            return "POST", "/keys/%s/create" % k["name"], body, (), None
        if name == "GetKey":
            self.ensure(exname, want)
            v = self.version(exname, exver)
            return "GET", "/keys/%s/%s" % (self.real(exname), v), None, (), None
        if name == "UpdateKey":
            # A plain key: the example's answer shows it after the update.
            v = self.version(exname, exver)
            return "PATCH", "/keys/%s/%s" % (self.real(exname), v), body, (), None
        if name == "RotateKey":
            self.ensure(exname, want)
            return "POST", "/keys/%s/rotate" % self.real(exname), None, (), None
        if name == "GetKeyVersions":
            # Three versions: the page after the first still has a nextLink.
            self.ensure(exname, want["value"][0])
            for i in range(3):
                self.version(exname, "contract-%d" % i)
            path = "/keys/%s/versions" % self.real(exname)
            return "GET", path, None, self.paged(path, av, p["maxresults"]), None
        if name == "GetKeys":
            for i in range(3):
                self.ensure("listkeytest%d" % i, want["value"][0])
            return "GET", "/keys", None, self.paged("/keys", av, p["maxresults"]), None
        if name == "GetDeletedKeys":
            for n in ("listdeletedkeytest0", "listdeletedkeytest1",
                      "listdeletedkeytest2"):
                self.ensure_deleted(n, want["value"][0])
            return ("GET", "/deletedkeys", None,
                    self.paged("/deletedkeys", av, p["maxresults"]), None)

        if name in ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"):
            return self.plan_crypto(name, ex, body)

        if name == "ImportKey":
            k = self.key(exname)
            return "PUT", "/keys/" + k["name"], body, (), None
        if name == "BackupKey":
            self.ensure(exname)
            return "POST", "/keys/%s/backup" % self.real(exname), None, (), None
        if name == "RestoreKey":
            # The example restores a backup of KeyBackupRestoreTest made by
            # another vault: back up such a key here (in the shape of the
            # example's answer), free its name, restore the blob.
            exn = urllib.parse.urlsplit(want["key"]["kid"]).path.split("/")[2]
            k = self.ensure(exn, want)
            j = self.setup("backup " + k["name"], "POST", "/keys/%s/backup" % k["name"])
            blob = j.get("value") if isinstance(j, dict) else None
            if not isinstance(blob, str):
                raise Fail("setup: the backup of %s has no value" % k["name"])
            self.setup("delete " + k["name"], "DELETE", "/keys/" + k["name"])
            self.setup("purge " + k["name"], "DELETE", "/deletedkeys/" + k["name"],
                       want=204)
            k["versions"], k["map"] = [], {}
            body["value"] = blob
            self.restore_name = exn
            return "POST", "/keys/restore", body, (), None
        if name == "GetKeyRotationPolicy":
            # The example's key has a policy: give this key the example's.
            self.ensure(exname)
            self.setup("rotation policy of " + self.real(exname), "PUT",
                       "/keys/%s/rotationpolicy" % self.real(exname),
                       {"lifetimeActions": want["lifetimeActions"],
                        "attributes": {a: v for a, v in want["attributes"].items()
                                       if a not in ("created", "updated")}},
                       av=av)
            return ("GET", "/keys/%s/rotationpolicy" % self.real(exname),
                    None, (), None)
        if name == "UpdateKeyRotationPolicy":
            self.ensure(exname)
            return ("PUT", "/keys/%s/rotationpolicy" % self.real(exname),
                    body, (), None)
        if name == "GetRandomBytes":
            def count(j):
                n = len(unb64u(j["value"]))
                return [] if n == body["count"] else [
                    "value: %d bytes, %d asked" % (n, body["count"])]
            return "POST", "/rng", body, (), count

        if name == "DeleteKey":
            self.ensure(exname, want)
            return "DELETE", "/keys/" + self.real(exname), None, (), None
        if name == "GetDeletedKey":
            self.ensure_deleted(exname, want)
            return "GET", "/deletedkeys/" + self.real(exname), None, (), None
        if name == "RecoverDeletedKey":
            self.ensure_deleted(exname, want)
            return ("POST", "/deletedkeys/%s/recover" % self.real(exname),
                    None, (), None)
        if name == "PurgeDeletedKey":
            self.ensure_deleted(exname)
            return "DELETE", "/deletedkeys/" + self.real(exname), None, (), None
        raise Fail("no adaptation is written for this example")

    def plan_crypto(self, name, ex, body):
        p = ex["parameters"]
        exname, exver = p["key-name"], p["key-version"]
        v = self.version(exname, exver)
        path = "/keys/%s/%s" % (self.real(exname), v)
        av = p["api-version"]
        check = None
        if name == "decrypt" or name == "unwrapKey":
            # A ciphertext of the example's plaintext under this version.
            plain = self.success(ex)[1]["value"]
            op = "encrypt" if name == "decrypt" else "wrapkey"
            j = self.setup("%s for %s" % (op, name), "POST", "%s/%s" % (path, op),
                           {"alg": body["alg"], "value": plain}, av=av)
            body["value"] = j["value"]

            def check(j, plain=plain):
                return [] if j.get("value") == plain else [
                    "value: not the plaintext that was encrypted"]
        elif name == "sign":
            def check(j):
                self.saved[("signature", path, body["alg"], body["value"])] = j.get("value")
                return []
        elif name == "verify":
            # The example's verify carries the digest in "value" and the
            # signature in "digest", swapped against the spec (digest is the
            # digest, value the signature): the digest is the shorter one.
            # Send them the spec's way, with a signature this agent made.
            digest = min(body["value"], body["digest"], key=lambda x: len(unb64u(x)))
            sig = self.saved.get(("signature", path, body["alg"], digest))
            if sig is None:     # the sign example did not run on this version
                j = self.setup("sign for verify", "POST", path + "/sign",
                               {"alg": body["alg"], "value": digest}, av=av)
                sig = j["value"]
            body["digest"], body["value"] = digest, sig

            def check(j):
                return [] if j.get("value") is True else [
                    "value: %r for a signature the agent made" % j.get("value")]
        return "POST", "%s/%s" % (path, name.lower()), body, (), check

    def after(self, name, ex, body):
        """Record what a successful example step made."""
        p = ex["parameters"]
        _, want = self.success(ex)
        if name in ("CreateKey", "RotateKey", "ImportKey", "RecoverDeletedKey"):
            self.key(p["key-name"])["deleted"] = False
            self.note_bundle(p["key-name"], want, body)
        elif name == "DeleteKey":
            self.key(p["key-name"])["deleted"] = True
        elif name == "PurgeDeletedKey":
            k = self.key(p["key-name"])
            k["deleted"], k["versions"], k["map"] = False, [], {}
        elif name == "RestoreKey":
            self.note_bundle(self.restore_name, want, body)


def load_examples(d):
    out = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith("-example.json"):
            continue
        with open(os.path.join(d, f)) as fh:
            ex = json.load(fh)
        name = f[:-len("-example.json")]
        if ex.get("operationId") != name:
            raise SystemExit("%s: operationId %r" % (f, ex.get("operationId")))
        out[name] = ex
    return out


# The order the examples run in: each one's setup may rely on keys made by
# earlier ones (a deleted key stays deleted, a purged name is free).
ORDER = [
    "CreateKey", "GetKey", "UpdateKey", "RotateKey", "GetKeyVersions", "GetKeys",
    "encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey",
    "ImportKey", "BackupKey", "RestoreKey",
    "UpdateKeyRotationPolicy", "GetKeyRotationPolicy", "GetRandomBytes",
    "DeleteKey", "GetDeletedKey", "GetDeletedKeys", "RecoverDeletedKey",
    "PurgeDeletedKey",
]


def parse_args(argv):
    import argparse
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.environ.get("KB_KV_EXAMPLES") or os.path.normpath(os.path.join(
        here, "..", "..", "..", "shared", "keyvault", "spec", "2026-04-01", "examples"))
    ap = argparse.ArgumentParser(description="Key Vault example requests against keybridged (TAP)")
    ap.add_argument("--socket")
    ap.add_argument("--url")
    ap.add_argument("--ca")
    ap.add_argument("--token-file")
    ap.add_argument("--examples", default=default)
    ap.add_argument("--vault")
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--only")
    ap.add_argument("--prefix", default="")
    a = ap.parse_args(argv)
    if bool(a.socket) == bool(a.url):
        ap.error("give --socket PATH or --url URL (with --ca and --token-file)")
    if a.url and not (a.ca and a.token_file):
        ap.error("--url needs --ca FILE and --token-file FILE")
    return a


def check_one(run, name, ex, want_status, want):
    """Run one example: [] if it passed, else what went wrong."""
    if name not in ORDER:
        raise Fail("no adaptation is written for this example")
    if want_status is None:
        raise Fail("the example has no success response")
    method, path, body, query, check = run.plan(name, ex)
    av = ex["parameters"]["api-version"]
    st, got, text = run.send(method, path, av, body, query)
    problems = []
    if st != want_status:
        problems.append("status %d, the example's is %d" % (st, want_status))
    elif want is None:
        if text.strip():
            problems.append("a body where the example has none: " + excerpt(text))
    elif got is None:
        problems.append("the body is not JSON")
    else:
        problems += shape_diff(name, want, got)
        if check is not None and not problems:
            problems += check(got)
    if not problems:
        run.after(name, ex, got)
        return []
    req = "%s %s%s" % (method, path, "" if not query else "?" + "&".join(
        k + "=" + (v if k != "$skiptoken" else "...") for k, v in query))
    return (["request: %s api-version=%s" % (req, av)] + problems +
            ["answer (%d): %s" % (st, excerpt(text))])


def main(argv):
    a = parse_args(argv)
    if not os.path.isdir(a.examples):
        print("1..0 # SKIP no Key Vault examples at %s" % a.examples)
        return 0
    examples = load_examples(a.examples)
    run = Run(Client(a), examples)
    only = set(a.only.split(",")) if a.only else None
    n = a.first - 1
    failed = 0

    def tap(ok, text, diag=(), todo=None):
        nonlocal n, failed
        n += 1
        print("%s %d - %s%s" % ("ok" if ok else "not ok", n, text,
                                " # TODO " + todo if todo else ""))
        for d in diag:
            print("# " + d)
        if not ok and not todo:
            failed += 1
        sys.stdout.flush()

    names = [x for x in ORDER if x in examples]
    names += sorted(x for x in examples if x not in ORDER and x not in SKIP)
    for name in sorted(x for x in examples if x in SKIP):
        if only is None or name in only:
            n += 1
            print("ok %d - %s%s # SKIP %s" % (n, a.prefix, name, SKIP[name]))
    for name in names:
        if only is not None and name not in only:
            continue
        ex = examples[name]
        try:
            want_status, want = run.success(ex)
            what = ("%d, no body" % want_status if want is None else
                    "%d, the example's fields (%d) with their JSON types" %
                    (want_status, fields(want)))
        except Fail:
            want_status, want, what = None, None, "no success response"
        label = "%s%s (%s-example.json): %s" % (a.prefix, name, name, what)
        try:
            diag = check_one(run, name, ex, want_status, want)
        except Fail as e:
            diag = [str(e)]
        except Exception as e:  # a setup answer without a field we read
            diag = ["%s: %s" % (type(e).__name__, e)]
        tap(not diag, label, diag, TODO.get(name))
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
