#!/usr/bin/env python3
"""vaultcheck.py: helpers for t-vault.sh, standard library only.

  serve                      answer the commands below, one per line on stdin
                             (fields separated by tabs), one line each on
                             stdout (newlines escaped, "ERROR: ..." on
                             failure), plus
                             json FILE EXPR: EXPR on the JSON in FILE (as j),
                             py EXPR: EXPR with base64/json/re/unb64u/b64u;
                             commands writing bytes take an output file last.
                             One process for the whole test: a python3
                             start-up per check costs more than the checks.

  pem BUNDLE.json            the KeyBundle's public JWK (RSA or EC) as a PEM
                             SubjectPublicKeyInfo, written by hand in DER
  b64u FILE                  FILE's bytes in base64url without padding
  unb64u STRING              base64url (padding optional) to raw bytes on stdout
  rs2der B64U                a raw r||s ECDSA signature as a DER ECDSA-Sig-Value
  disconnect SOCKET PATH     send a request announcing a longer body than sent,
                             then close the socket; prints "sent"
  snapshot SOCKET            every vault's keys, versions (full bundles) and
                             deleted keys, as sorted JSON: two equal snapshots
                             mean nothing changed
  p11 FILE LABEL ID          from `pkcs11-tool -O` output: "COUNT USAGES", the
                             objects with that label and ID and the union of
                             their usage flags (sorted, comma-separated, or none)
  usage KTY OPS              the usage flags key_ops (comma-separated) must give
"""
import http.client
import base64
import json
import socket
import sys


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(v):
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return tlv(0x02, b)


def der_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, out)


def seq(*items):
    return tlv(0x30, b"".join(items))


def bitstring(b):
    return tlv(0x03, b"\x00" + b)


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


CURVES = {
    "P-256": ("1.2.840.10045.3.1.7", 32),
    "P-384": ("1.3.132.0.34", 48),
    "P-521": ("1.3.132.0.35", 66),
}


def spki(jwk):
    kty = jwk["kty"]
    if kty in ("RSA", "RSA-HSM"):
        n = int.from_bytes(unb64u(jwk["n"]), "big")
        e = int.from_bytes(unb64u(jwk["e"]), "big")
        alg = seq(der_oid("1.2.840.113549.1.1.1"), tlv(0x05, b""))
        return seq(alg, bitstring(seq(der_int(n), der_int(e))))
    if kty in ("EC", "EC-HSM"):
        oid, size = CURVES[jwk["crv"]]
        x, y = unb64u(jwk["x"]), unb64u(jwk["y"])
        if len(x) != size or len(y) != size:
            raise SystemExit("EC coordinates of %d/%d bytes for %s" % (len(x), len(y), jwk["crv"]))
        alg = seq(der_oid("1.2.840.10045.2.1"), der_oid(oid))
        return seq(alg, bitstring(b"\x04" + x + y))
    raise SystemExit("no public key for kty " + kty)


def pem(der):
    b = base64.b64encode(der).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def get(sock, path):
    c = UnixConnection(sock)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        raise SystemExit("GET %s: %d %s" % (path, r.status, body[:200]))
    return json.loads(body)


def pages(sock, path):
    out = []
    while path:
        j = get(sock, path)
        out += j["value"]
        path = j.get("nextLink")
        if path:
            path = path[len("http://localhost"):]
    return out


def snapshot(sock):
    av = "api-version=7.5"
    snap = {}
    for v in get(sock, "/keybridge/vaults")["value"]:
        pre = "/vaults/" + v["name"]
        keys = {}
        for k in pages(sock, pre + "/keys?" + av):
            name = k["kid"].rsplit("/", 1)[1]
            vers = {}
            for ver in pages(sock, pre + "/keys/%s/versions?%s" % (name, av)):
                vid = ver["kid"].rsplit("/", 1)[1]
                vers[vid] = get(sock, pre + "/keys/%s/%s?%s" % (name, vid, av))
            keys[name] = {"item": k, "versions": vers}
        deleted = pages(sock, pre + "/deletedkeys?" + av)
        snap[v["name"]] = {"keys": keys, "deleted": deleted}
    return snap


def p11_objects(text):
    objs, cur = [], None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            cur = {"type": line.split(";")[0].strip(), "label": None, "id": None, "usage": set()}
            objs.append(cur)
        elif cur is not None and ":" in line:
            k, v = line.strip().split(":", 1)
            v = v.strip()
            if k == "label":
                cur["label"] = v
            elif k == "ID":
                cur["id"] = v.lower()
            elif k == "Usage":
                cur["usage"] = set() if v == "none" else {u.strip() for u in v.split(",")}
    return objs


USAGE = {"encrypt": ["encrypt"], "decrypt": ["decrypt"], "sign": ["sign"],
         "verify": ["verify"], "wrapKey": ["wrap"], "unwrapKey": ["unwrap"]}
RSA_EXTRA = {"wrapKey": ["encrypt"], "unwrapKey": ["decrypt"]}


def serve():
    import re
    env = {"base64": base64, "json": json, "re": re, "unb64u": unb64u, "b64u": b64u}
    for line in sys.stdin:
        f = line.rstrip("\n").split("\t")
        try:
            cmd = f[0]
            if cmd == "json":
                with open(f[1]) as fh:
                    j = json.load(fh)
                out = str(eval(f[2], dict(env, j=j)))
            elif cmd == "py":
                out = str(eval(f[1], dict(env)))
            elif cmd == "b64u":
                with open(f[1], "rb") as fh:
                    out = b64u(fh.read())
            elif cmd == "unb64u":
                with open(f[2], "wb") as fh:
                    fh.write(unb64u(f[1]))
                out = ""
            elif cmd == "rs2der":
                sig = unb64u(f[1])
                h = len(sig) // 2
                with open(f[2], "wb") as fh:
                    fh.write(seq(der_int(int.from_bytes(sig[:h], "big")),
                                 der_int(int.from_bytes(sig[h:], "big"))))
                out = ""
            elif cmd == "pem":
                with open(f[1]) as fh:
                    p = pem(spki(json.load(fh)["key"]))
                with open(f[2], "w") as fh:
                    fh.write(p)
                out = ""
            elif cmd == "snapshot":
                with open(f[2], "w") as fh:
                    fh.write(json.dumps(snapshot(f[1]), sort_keys=True) + "\n")
                out = ""
            elif cmd == "p11":
                out = p11(f[1], f[2], f[3])
            elif cmd == "usage":
                out = usage(f[1], f[2])
            else:
                out = "ERROR: unknown command " + cmd
        except BaseException as e:  # noqa: B036 -- the answer must come
            out = "ERROR: %s: %s" % (type(e).__name__, e)
        sys.stdout.write(out.replace("\\", "\\\\").replace("\n", "\\n") + "\n")
        sys.stdout.flush()


def p11(path, label, ident):
    with open(path) as f:
        objs = [o for o in p11_objects(f.read())
                if o["label"] == label and o["id"] == ident.lower()]
    u = set().union(*[o["usage"] for o in objs]) if objs else set()
    return "%d %s" % (len(objs), ",".join(sorted(u)) or "none")


def usage(kty, ops):
    u = set()
    for op in filter(None, ops.split(",")):
        u.update(USAGE[op])
        if kty.startswith("RSA"):
            u.update(RSA_EXTRA.get(op, []))
    return ",".join(sorted(u)) or "none"


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        serve()
        return
    if cmd == "pem":
        with open(sys.argv[2]) as f:
            sys.stdout.write(pem(spki(json.load(f)["key"])))
    elif cmd == "b64u":
        with open(sys.argv[2], "rb") as f:
            print(b64u(f.read()))
    elif cmd == "unb64u":
        sys.stdout.buffer.write(unb64u(sys.argv[2]))
    elif cmd == "rs2der":
        sig = unb64u(sys.argv[2])
        h = len(sig) // 2
        r = int.from_bytes(sig[:h], "big")
        s = int.from_bytes(sig[h:], "big")
        sys.stdout.buffer.write(seq(der_int(r), der_int(s)))
    elif cmd == "disconnect":
        body = b'{"kty": "EC", "crv": "P-256"}'  # complete JSON: only the length is short
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[2])
        s.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                   % (sys.argv[3], len(body) + 100)).encode() + body)
        s.close()
        print("sent")
    elif cmd == "snapshot":
        print(json.dumps(snapshot(sys.argv[2]), sort_keys=True))
    elif cmd == "p11":
        print(p11(sys.argv[2], sys.argv[3], sys.argv[4]))
    elif cmd == "usage":
        print(usage(sys.argv[2], sys.argv[3]))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
