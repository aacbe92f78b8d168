#!/usr/bin/env python3
"""apicheck2.py: rotation policy, random bytes and import over raw HTTP on
the agent's Unix socket (issue 4, section 3), as TAP.  Standard library
only; keys to import are made by the openssl command and read back from
`openssl pkey -text`, and results are checked with the openssl command
(signatures) or with AES through `openssl enc -aes-256-ecb` (key wrap),
never with the agent's own code.

  apicheck2.py --socket PATH --state DIR --log FILE --tokens DIR

DIR is the agent's state_dir (no private byte may be in it), FILE its
debug log (same), DIR the SoftHSM token directory (objects are counted:
a refused import creates none).
"""
import argparse
import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

AV = "api-version=7.5"
N = 0
FAILED = 0


def ok(cond, name, diag=None):
    global N, FAILED
    N += 1
    print("%sok %d - %s" % ("" if cond else "not ", N, name))
    if not cond:
        FAILED += 1
        if diag is not None:
            for line in str(diag).splitlines()[:12]:
                print("#   " + line)
    sys.stdout.flush()
    return cond


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect(self.path)


SOCK = None


def req(method, path, body=None, raw=None):
    """(status, parsed JSON or None, text)."""
    c = UnixConnection(SOCK)
    sep = "&" if "?" in path else "?"
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    hdr = {"Content-Type": "application/json"} if data is not None else {}
    c.request(method, path + sep + AV, body=data, headers=hdr)
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace")
    c.close()
    try:
        j = json.loads(text) if text else None
    except ValueError:
        j = None
    return r.status, j, text


def kverr(got, status, code, name):
    st, j, text = got
    good = st == status and isinstance(j, dict) and \
        isinstance(j.get("error"), dict) and j["error"].get("code") == code
    return ok(good, name, "%d %s" % (st, text[:300]))


# ------------------------------------------------------------ openssl keys

def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout


def text_fields(pem):
    """`openssl pkey -text` as {field: bytes} (hex blocks) and the OID."""
    out = openssl("pkey", "-text", "-noout", data=pem).decode()
    fields, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\w+):\s*(.*)$", line)
        if m:
            cur = m.group(1)
            rest = m.group(2)
            if cur == "publicExponent":
                fields[cur] = int(rest.split()[0]).to_bytes(3, "big")
                cur = None
            elif rest and cur in ("ASN1", "NIST"):
                cur = None
            else:
                fields[cur] = b""
            continue
        if cur is not None and re.match(r"^\s+[0-9a-f:]+$", line):
            fields[cur] += bytes.fromhex(line.strip().replace(":", ""))
    return fields


def strip0(b):
    while len(b) > 1 and b[0] == 0:
        b = b[1:]
    return b


def rsa_key(bits=2048):
    pem = openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                  "rsa_keygen_bits:%d" % bits)
    f = text_fields(pem)
    jwk = {"kty": "RSA", "n": b64u(strip0(f["modulus"])),
           "e": b64u(strip0(f["publicExponent"])),
           "d": b64u(strip0(f["privateExponent"])),
           "p": b64u(strip0(f["prime1"])), "q": b64u(strip0(f["prime2"])),
           "dp": b64u(strip0(f["exponent1"])), "dq": b64u(strip0(f["exponent2"])),
           "qi": b64u(strip0(f["coefficient"]))}
    return pem, jwk


CURVES = {"P-256": ("prime256v1", 32), "P-384": ("secp384r1", 48),
          "P-521": ("secp521r1", 66)}


def ec_key(crv):
    name, size = CURVES[crv]
    pem = openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:" + name)
    f = text_fields(pem)
    pub = f["pub"]
    d = strip0(f["priv"]).rjust(size, b"\0")
    jwk = {"kty": "EC", "crv": crv, "x": b64u(pub[1:1 + size]),
           "y": b64u(pub[1 + size:]), "d": b64u(d)}
    return pem, jwk


def tmpfile(data):
    f = tempfile.NamedTemporaryFile(delete=False)
    f.write(data)
    f.close()
    return f.name


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def rs2der(sig):
    h = len(sig) // 2
    out = b""
    for v in (sig[:h], sig[h:]):
        v = strip0(v)
        if v[0] & 0x80:
            v = b"\0" + v
        out += b"\x02" + der_len(len(v)) + v
    return b"\x30" + der_len(len(out)) + out


def ossl_verify(pem, digest, sig, pss=False, hashname="sha256"):
    """openssl pkeyutl -verify of a signature over a digest."""
    k, d, s = tmpfile(pem), tmpfile(digest), tmpfile(sig)
    args = ["pkeyutl", "-verify", "-inkey", k, "-in", d, "-sigfile", s,
            "-pkeyopt", "digest:" + hashname]
    if pss:
        args += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt",
                 "rsa_pss_saltlen:digest"]
    try:
        openssl(*args)
        return True
    except subprocess.CalledProcessError:
        return False
    finally:
        for p in (k, d, s):
            os.unlink(p)


def aes_block(key, block, decrypt=False):
    args = ["enc", "-aes-%d-ecb" % (len(key) * 8), "-nopad", "-K", key.hex()]
    if decrypt:
        args.append("-d")
    return openssl(*args, data=block)


def aes_kw_unwrap(key, wrapped):
    """RFC 3394 section 2.2.2, one AES block at a time through openssl."""
    n = len(wrapped) // 8 - 1
    a, r = wrapped[:8], [wrapped[8 * (i + 1):8 * (i + 2)] for i in range(n)]
    for j in range(5, -1, -1):
        for i in range(n, 0, -1):
            t = (n * j + i).to_bytes(8, "big")
            b = aes_block(key, bytes(x ^ y for x, y in zip(a, t)) + r[i - 1],
                          decrypt=True)
            a, r[i - 1] = b[:8], b[8:]
    return r if a == b"\xa6" * 8 else None


# ----------------------------------------------------------------- helpers

def create(name, body=None, vault=""):
    return req("POST", "%s/keys/%s/create" % (vault, name),
               body or {"kty": "EC", "crv": "P-256"})


def policy(name, vault=""):
    return req("GET", "%s/keys/%s/rotationpolicy" % (vault, name))


def put_policy(name, body, vault="", raw=None):
    return req("PUT", "%s/keys/%s/rotationpolicy" % (vault, name), body, raw)


def acts(j):
    return sorted("%s:%s:%s" % (a["action"]["type"],
                                a["trigger"].get("timeAfterCreate", ""),
                                a["trigger"].get("timeBeforeExpiry", ""))
                  for a in j["lifetimeActions"])


def audit_ops():
    st, j, _ = req("GET", "/keybridge/audit?maxresults=1000")
    ops = []
    while st == 200:
        ops += [(r["op"], r.get("key"), r["result"]) for r in j["value"]]
        if not j.get("nextLink"):
            break
        nl = j["nextLink"]
        st, j, _ = req("GET", nl[nl.index("/keybridge"):])
    return ops


def wait_deleted(name):
    for _ in range(100):
        if req("GET", "/deletedkeys/" + name)[0] == 200:
            return True
        time.sleep(0.05)
    return False


EXAMPLE = {"lifetimeActions": [
    {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}},
    {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}],
    "attributes": {"expiryTime": "P2Y"}}


# ---------------------------------------------------------- rotation policy

def test_policy():
    st, _, text = create("pol-k")
    ok(st == 200, "create pol-k", text)
    st, j, text = policy("pol-k")
    ok(st == 200 and j["id"].endswith("/keys/pol-k/rotationpolicy") and
       acts(j) == ["Notify::P30D"] and
       isinstance(j["attributes"].get("created"), int) and
       isinstance(j["attributes"].get("updated"), int) and
       "expiryTime" not in j["attributes"],
       "a key without a policy: 200 with Key Vault's default (Notify P30D "
       "before expiry), id, created and updated", text)
    st, j, text = put_policy("pol-k", EXAMPLE)
    ok(st == 200 and acts(j) == ["Notify::P30D", "Rotate:P90D:"] and
       j["attributes"].get("expiryTime") == "P2Y" and
       j["id"].endswith("/keys/pol-k/rotationpolicy") and
       isinstance(j["attributes"].get("created"), int),
       "PUT the UpdateKeyRotationPolicy example: 200, the policy back", text)
    put_answer = j
    st, j, text = policy("pol-k")
    ok(st == 200 and j == put_answer, "GET gives what PUT answered", text)
    st, j, text = put_policy("pol-k", {"lifetimeActions": [
        {"trigger": {"timeBeforeExpiry": "P45D"}, "action": {"type": "rOTATE"}}],
        "attributes": {"expiryTime": "P1Y2M3DT4H"}})
    ok(st == 200 and acts(j) == ["Notify::P30D", "Rotate::P45D"] and
       j["attributes"]["expiryTime"] == "P1Y2M3DT4H",
       "the action type is compared case-insensitively and written Rotate; "
       "Key Vault's Notify P30D is added when none is given", text)
    ok(j["attributes"]["updated"] >= j["attributes"]["created"],
       "updated >= created")
    good = j
    bad = [
        ("rotate P1D with expiryTime P7D (the SDK test)",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P1D"},
                               "action": {"type": "Rotate"}}],
          "attributes": {"expiryTime": "P7D"}}),
        ("expiryTime P27D (at least 28 days)",
         {"lifetimeActions": [], "attributes": {"expiryTime": "P27D"}}),
        ("timeAfterCreate P6D (at least 7 days)",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P6D"},
                               "action": {"type": "Rotate"}}]}),
        ("Notify P6D before expiry",
         {"lifetimeActions": [{"trigger": {"timeBeforeExpiry": "P6D"},
                               "action": {"type": "Notify"}}]}),
        ("Notify with timeAfterCreate",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"},
                               "action": {"type": "Notify"}}]}),
        ("two Rotate actions",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"},
                               "action": {"type": "Rotate"}},
                              {"trigger": {"timeAfterCreate": "P60D"},
                               "action": {"type": "rotate"}}]}),
        ("three actions",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"},
                               "action": {"type": "Rotate"}}] * 3}),
        ("a trigger with both times",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D",
                                           "timeBeforeExpiry": "P30D"},
                               "action": {"type": "Rotate"}}]}),
        ("a trigger with no time",
         {"lifetimeActions": [{"trigger": {}, "action": {"type": "Rotate"}}]}),
        ("an unknown action type",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"},
                               "action": {"type": "Delete"}}]}),
        ("a fractional duration P1.5D",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P1.5D"},
                               "action": {"type": "Rotate"}}]}),
        ("a duration without P",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "90D"},
                               "action": {"type": "Rotate"}}]}),
        ("a duration as a number",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": 90},
                               "action": {"type": "Rotate"}}]}),
        ("designators out of order P1D2M",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P1D2M"},
                               "action": {"type": "Rotate"}}]}),
        ("rotation later than 7 days before expiryTime",
         {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"},
                               "action": {"type": "Rotate"}}],
          "attributes": {"expiryTime": "P60D"}}),
        ("lifetimeActions not an array", {"lifetimeActions": {}}),
        ("read-only attributes.created",
         {"lifetimeActions": [], "attributes": {"created": 1}}),
        ("a body that is an array", []),
    ]
    for what, body in bad:
        kverr(put_policy("pol-k", body), 400, "BadParameter",
              "policy refused: " + what)
    kverr(put_policy("pol-k", None, raw="{\"lifetimeActions\": ["), 400,
          "BadParameter", "policy refused: not JSON")
    kverr(put_policy("pol-k", None, raw='{"lifetimeActions":[],"lifetimeActions":[]}'),
          400, "BadParameter", "policy refused: a duplicate member")
    st, j, _ = policy("pol-k")
    ok(st == 200 and j == good, "after the refusals the policy is unchanged")
    # Kept across rotation.
    st, _, _ = req("POST", "/keys/pol-k/rotate")
    st2, j, _ = policy("pol-k")
    ok(st == 200 and st2 == 200 and j == good, "rotate keeps the policy")
    # Missing key.
    kverr(policy("pol-none"), 404, "KeyNotFound", "GET policy of a missing key: 404")
    kverr(put_policy("pol-none", EXAMPLE), 404, "KeyNotFound",
          "PUT policy on a missing key: 404 KeyNotFound")
    # Delete: not found while deleted (as UpdateKey); recover brings it back.
    st, _, _ = req("DELETE", "/keys/pol-k")
    ok(st == 200 and wait_deleted("pol-k"), "delete pol-k")
    kverr(policy("pol-k"), 404, "KeyNotFound", "GET policy of a deleted key: 404")
    kverr(put_policy("pol-k", EXAMPLE), 404, "KeyNotFound",
          "PUT policy on a deleted key: 404 KeyNotFound, as UpdateKey")
    st, _, _ = req("POST", "/deletedkeys/pol-k/recover")
    st2, j, _ = policy("pol-k")
    ok(st == 200 and st2 == 200 and j == good,
       "recover: the policy is back as it was")
    # Purge removes it: the name made again has the default.
    req("DELETE", "/keys/pol-k")
    wait_deleted("pol-k")
    st, _, _ = req("DELETE", "/deletedkeys/pol-k")
    ok(st == 204, "purge pol-k")
    create("pol-k")
    st, j, _ = policy("pol-k")
    ok(st == 200 and acts(j) == ["Notify::P30D"] and
       "expiryTime" not in j["attributes"],
       "after purge the name made again has no stored policy")
    # Removal with [] and {}.
    put_policy("pol-k", EXAMPLE)
    st, j, text = put_policy("pol-k", {"lifetimeActions": [], "attributes": {}})
    ok(st == 200 and j["lifetimeActions"] == [] and
       "expiryTime" not in j["attributes"],
       "{lifetimeActions: [], attributes: {}} empties the policy", text)
    # Another vault, under /vaults/NAME.
    create("pol-l", vault="/vaults/locked")
    st, j, text = put_policy("pol-l", EXAMPLE, vault="/vaults/locked")
    ok(st == 200 and "/vaults/locked/keys/pol-l/rotationpolicy" in j["id"],
       "the policy of a key of vault locked, under /vaults/locked", text)
    kverr(policy("pol-l"), 404, "KeyNotFound",
          "that key is not in the default vault")
    st, _, _ = req("DELETE", "/keys/pol-k/rotationpolicy")
    ok(st == 405, "DELETE on rotationpolicy: 405")
    ops = audit_ops()
    ok(("rotation-policy-update", "pol-k", "ok") in ops,
       "the audit log has rotation-policy-update records")


# ---------------------------------------------------------------- rng

def test_rng():
    for n in (1, 32, 128):
        st, j, text = req("POST", "/rng", {"count": n})
        ok(st == 200 and len(unb64u(j["value"])) == n and
           "=" not in j["value"], "rng %d: %d bytes in base64url" % (n, n), text)
    a = req("POST", "/rng", {"count": 32})[1]["value"]
    b = req("POST", "/rng", {"count": 32})[1]["value"]
    ok(a != b, "two draws of 32 bytes differ")
    st, j, text = req("POST", "/vaults/locked/rng", {"count": 16})
    ok(st == 200 and len(unb64u(j["value"])) == 16,
       "/vaults/locked/rng draws from that vault's token", text)
    bad = [("count 0", {"count": 0}), ("count 129", {"count": 129}),
           ("count -1", {"count": -1}), ("count 1.5", {"count": 1.5}),
           ("count \"5\"", {"count": "5"}), ("count null", {"count": None}),
           ("count true", {"count": True}), ("no count", {}),
           ("an extra member", {"count": 4, "size": 4}),
           ("an array body", [4])]
    for what, body in bad:
        kverr(req("POST", "/rng", body), 400, "BadParameter", "rng refused: " + what)
    kverr(req("POST", "/rng"), 400, "BadParameter", "rng refused: no body")
    kverr(req("POST", "/rng", raw='{"count":4,"count":5}'), 400, "BadParameter",
          "rng refused: count twice")
    st, _, _ = req("GET", "/rng")
    ok(st == 405, "GET /rng: 405")


# ---------------------------------------------------------------- import

def versions(name):
    st, j, _ = req("GET", "/keys/%s/versions" % name)
    return len(j["value"]) if st == 200 else 0


def objects(tokens):
    n = 0
    for root, _, files in os.walk(tokens):
        n += sum(1 for f in files if f.endswith(".object"))
    return n


SECRETS = []


def remember(jwk):
    for part in ("d", "p", "q", "dp", "dq", "qi", "k"):
        if part in jwk:
            SECRETS.append(unb64u(jwk[part]))


def test_import(tokens):
    # RSA, as the ImportKey example sends it (no Hsm): kty RSA.
    pem, jwk = rsa_key()
    remember(jwk)
    st, j, text = req("PUT", "/keys/imp-rsa", {"key": jwk, "tags": {"src": "openssl"}})
    ok(st == 200, "import an RSA-2048 key", text)
    if st != 200:
        return
    k = j["key"]
    ok(k["kty"] == "RSA" and k["n"] == jwk["n"] and k["e"] == jwk["e"] and
       not any(p in k for p in ("d", "p", "q", "dp", "dq", "qi")),
       "the bundle: kty RSA (as asked), the same n and e, no private part", text)
    ok(sorted(k["key_ops"]) == sorted(["encrypt", "decrypt", "sign", "verify",
                                       "wrapKey", "unwrapKey"]) and
       j.get("tags") == {"src": "openssl"} and j["attributes"]["enabled"] is True,
       "default key_ops of an RSA key, tags and attributes as create gives them")
    digest = os.urandom(32)
    for alg, pss in (("RS256", False), ("PS256", True)):
        st, s, text = req("POST", "/keys/imp-rsa/sign", {"alg": alg, "value": b64u(digest)})
        ok(st == 200 and ossl_verify(pem, digest, unb64u(s["value"]), pss),
           "openssl verifies the imported key's %s signature with the original "
           "key" % alg, text)
    st, g, _ = req("GET", "/keys/imp-rsa")
    ok(st == 200 and g["key"]["n"] == jwk["n"] and "d" not in g["key"],
       "GET shows the public parts only")
    # Hsm true: RSA-HSM; an existing name gets a new version.
    _, jwk2 = rsa_key()
    remember(jwk2)
    st, j, text = req("PUT", "/keys/imp-rsa", {"key": jwk2, "Hsm": True,
                                               "attributes": {"enabled": False}})
    ok(st == 200 and j["key"]["kty"] == "RSA-HSM" and versions("imp-rsa") == 2 and
       j["attributes"]["enabled"] is False,
       "Hsm true on an existing name: a second version, kty RSA-HSM, "
       "attributes taken", text)
    # Rotation of an imported key makes a generated one of the same shape.
    st, j, text = req("POST", "/keys/imp-rsa/rotate")
    ok(st == 200 and j["key"]["kty"] == "RSA-HSM" and
       len(unb64u(j["key"]["n"])) == 256 and j["key"]["n"] != jwk2["n"],
       "rotate after import: a new generated RSA-2048 version", text)
    # EC on every curve, with Hsm: EC-HSM; ES* verified by openssl.
    for crv, alg, h, hl in (("P-256", "ES256", "sha256", 32),
                            ("P-384", "ES384", "sha384", 48),
                            ("P-521", "ES512", "sha512", 64)):
        pem, jwk = ec_key(crv)
        remember(jwk)
        name = "imp-ec-" + crv[2:]
        st, j, text = req("PUT", "/keys/" + name,
                          {"key": dict(jwk, key_ops=["sign", "verify"]), "Hsm": True})
        ok(st == 200 and j["key"]["kty"] == "EC-HSM" and j["key"]["crv"] == crv and
           j["key"]["x"] == jwk["x"] and j["key"]["y"] == jwk["y"] and
           "d" not in j["key"] and sorted(j["key"]["key_ops"]) == ["sign", "verify"],
           "import EC %s with Hsm: kty EC-HSM, the same x and y, no d" % crv, text)
        digest = os.urandom(hl)
        st, s, text = req("POST", "/keys/%s/sign" % name,
                          {"alg": alg, "value": b64u(digest)})
        ok(st == 200 and ossl_verify(pem, digest, rs2der(unb64u(s["value"])),
                                     hashname=h),
           "openssl verifies the imported %s key's %s signature" % (crv, alg), text)
    # oct: the agent wraps, AES (openssl) unwraps with the original key.
    for size in (16, 24, 32):
        kbytes = os.urandom(size)
        SECRETS.append(kbytes)
        name = "imp-oct-%d" % (size * 8)
        st, j, text = req("PUT", "/keys/" + name,
                          {"key": {"kty": "oct-HSM", "k": b64u(kbytes)}})
        ok(st == 200 and j["key"]["kty"] == "oct-HSM" and "k" not in j["key"] and
           j["attributes"].get("key_size", size * 8) == size * 8,
           "import an oct key of %d bytes: no k in the answer" % size, text)
        cek = os.urandom(16)
        st, w, text = req("POST", "/keys/%s/wrapkey" % name,
                          {"alg": "A%dKW" % (size * 8), "value": b64u(cek)})
        got = aes_kw_unwrap(kbytes, unb64u(w["value"])) if st == 200 else None
        ok(got is not None and b"".join(got) == cek,
           "A%dKW by the imported key unwraps with the original key (RFC 3394 "
           "over openssl's AES)" % (size * 8), text)
    # Refusals: nothing created, no object on any token.
    before = objects(tokens)
    _, rj = rsa_key()
    _, ej = ec_key("P-256")
    SECRETS.extend(unb64u(rj[p]) for p in ("d", "p", "q"))
    SECRETS.append(unb64u(ej["d"]))

    def alter(j, part, flip=1):
        b = bytearray(unb64u(j[part]))
        b[-1] ^= flip
        return dict(j, **{part: b64u(bytes(b))})

    small = rsa_key(1024)[1]
    bad = [
        ("RSA without qi", {"key": {k: v for k, v in rj.items() if k != "qi"}}),
        ("RSA with n, e, d only", {"key": {k: rj[k] for k in ("kty", "n", "e", "d")}}),
        ("RSA with a d that does not match", {"key": alter(rj, "d", 2)}),
        ("RSA with a dp that does not match", {"key": alter(rj, "dp")}),
        ("RSA with n and p of another key", {"key": dict(rj, n=small["n"])}),
        ("RSA-1024", {"key": small}),
        ("EC with a point off the curve", {"key": alter(ej, "y")}),
        ("EC with a d of another point", {"key": alter(ej, "d")}),
        ("EC with a short x", {"key": dict(ej, x=b64u(unb64u(ej["x"])[1:]))}),
        ("EC without d", {"key": {k: v for k, v in ej.items() if k != "d"}}),
        ("EC without crv", {"key": {k: v for k, v in ej.items() if k != "crv"}}),
        ("EC on P-256K", {"key": dict(ej, crv="P-256K")}),
        ("EC on an unknown curve", {"key": dict(ej, crv="P-192")}),
        ("oct of 20 bytes", {"key": {"kty": "oct", "k": b64u(os.urandom(20))}}),
        ("oct with an empty k", {"key": {"kty": "oct", "k": ""}}),
        ("oct with k not base64url", {"key": {"kty": "oct", "k": "!!!"}}),
        ("oct with k a number", {"key": {"kty": "oct", "k": 5}}),
        ("an unknown kty", {"key": dict(rj, kty="DSA")}),
        ("no key", {"Hsm": True}),
        ("key not an object", {"key": "RSA"}),
        ("Hsm not a bool", {"key": rj, "Hsm": "yes"}),
        ("kty RSA-HSM with Hsm false", {"key": dict(rj, kty="RSA-HSM"), "Hsm": False}),
        ("a release_policy", {"key": rj, "release_policy": {"data": "e30"}}),
        ("key_hsm (BYOK)", {"key": dict(rj, key_hsm="abcd")}),
        ("key_ops export", {"key": dict(rj, key_ops=["sign", "export"])}),
        ("key_ops encrypt on EC", {"key": dict(ej, key_ops=["encrypt"])}),
        ("exportable", {"key": rj, "attributes": {"exportable": True}}),
        ("16 tags", {"key": ej, "tags": {"t%d" % i: "v" for i in range(16)}}),
    ]
    for what, body in bad:
        kverr(req("PUT", "/keys/imp-bad", body), 400, "BadParameter",
              "import refused: " + what)
    kverr(req("PUT", "/keys/imp-bad", None, raw='{"key":{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA","k":"AAAAAAAAAAAAAAAAAAAAAA"}}'),
          400, "BadParameter", "import refused: k twice")
    kverr(req("GET", "/keys/imp-bad"), 404, "KeyNotFound",
          "no key imp-bad after the refusals")
    ok(objects(tokens) == before, "no token object was made by the refusals",
       "%d objects before, %d after" % (before, objects(tokens)))
    # A deleted name: 409 like create.
    req("PUT", "/keys/imp-del", {"key": ej})
    req("DELETE", "/keys/imp-del")
    wait_deleted("imp-del")
    st, j, text = req("PUT", "/keys/imp-del", {"key": ej})
    ok(st == 409 and j["error"]["code"] == "Conflict" and
       j["error"].get("innererror", {}).get("code") == "ObjectIsDeletedButRecoverable",
       "import on a soft-deleted name: 409 ObjectIsDeletedButRecoverable", text)
    # Another vault.
    _, ej2 = ec_key("P-256")
    remember(ej2)
    st, j, text = req("PUT", "/vaults/locked/keys/imp-l", {"key": ej2})
    ok(st == 200 and "/vaults/locked/keys/imp-l/" in j["key"]["kid"],
       "import into vault locked under /vaults/locked", text)
    ops = audit_ops()
    ok(("import", "imp-rsa", "ok") in ops and ("import", "imp-ec-256", "ok") in ops,
       "the audit log records the imports as op import")
    ok(not any(o[0] == "import" and o[2] != "ok" for o in ops),
       "no failed import in the audit log (bad keys are refused before any "
       "intent)")


def no_secrets(paths, what):
    """No private part (raw, hex, base64url, base64) in any file under paths."""
    forms = []
    for s in SECRETS:
        if len(s) < 16:
            continue
        forms += [s, s.hex().encode(), b64u(s).encode(),
                  base64.b64encode(s).rstrip(b"=").encode()]
    hits = []
    for top in paths:
        files = [top] if os.path.isfile(top) else \
            [os.path.join(r, f) for r, _, fs in os.walk(top) for f in fs]
        for f in files:
            try:
                data = open(f, "rb").read()
            except OSError:
                continue
            if any(x in data for x in forms):
                hits.append(f)
    ok(not hits and len(forms) > 0, "no private key byte in " + what, hits)


def main():
    global SOCK
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tokens", required=True)
    a = ap.parse_args()
    SOCK = a.socket
    test_policy()
    test_rng()
    test_import(a.tokens)
    no_secrets([a.state], "the agent's state directory (store, WAL)")
    no_secrets([a.log], "the agent's debug log")
    print("1..%d" % N)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
