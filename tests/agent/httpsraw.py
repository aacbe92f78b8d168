#!/usr/bin/env python3
"""httpsraw.py: raw TLS conversations for t-https.sh, standard library only.

  plain HOST PORT              plain HTTP to the TLS port: prints "closed" if
                               the agent closed the connection without an
                               HTTP answer, else the first line it sent
  slow HOST PORT CA SECS       a TLS connection that sends half a request and
                               then nothing: prints "closed after N s" once
                               the agent drops it (or "open" after SECS)
  hold HOST PORT CA N SECS     opens N TLS connections, each with half a
                               request, keeps them SECS seconds; prints how
                               many completed the handshake and stayed open
  bigheader HOST PORT CA KB    a request with a KB-kilobyte header: the status
                               line, or "closed"
  version HOST PORT CA V       a handshake with only TLS version V (1.0, 1.1,
                               1.2, 1.3): prints "ok" or "refused"
  twice HOST PORT CA TOKENFILE BODY
                               on one connection, a GET /keys without a token
                               (with a 20-byte body if BODY is "body"), then
                               one with the token: prints both statuses, or
                               "closed" for the second if the agent closed
  refused HOST PORT CA TOKENFILE N
                               up to N GETs of /keys on one connection, one
                               after another, with the token: prints each
                               status, and "closed" if the agent closed it
  records HOST PORT CA TOKENFILE|none PATH...
                               on one connection, after a GET /keys read
                               whole, a GET of each PATH (with the token
                               unless "none"): prints "STATUS RECORDS BYTES"
                               for each, RECORDS being the TLS application
                               data records that carried the answer
  pipeline HOST PORT CA TOKENFILE N PATH
                               N GETs of PATH sent in one write: prints the
                               N statuses, then "same" if the N bodies are
                               equal
"""
import socket
import ssl
import sys
import time


def ctx(ca, version=None):
    c = ssl.create_default_context(cafile=ca)
    if version is not None:
        v = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
             "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
        # Old versions need a security level that still allows them.
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
        c.minimum_version = v
        c.maximum_version = v
    return c


def tls(host, port, ca, version=None, timeout=10):
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    return ctx(ca, version).wrap_socket(raw, server_hostname=host)


def first_line(s):
    buf = b""
    try:
        while b"\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
    except (ConnectionError, ssl.SSLError, socket.timeout):
        pass
    if not buf:
        return "closed"
    return buf.split(b"\r\n", 1)[0].decode("latin-1")


def read_answer(recv, buf=b""):
    """One whole answer, reading with recv() after buf: (status, body,
    bytes left over).  ConnectionError if the connection ends first."""
    def more():
        d = recv()
        if not d:
            raise ConnectionError("closed")
        return d

    while b"\r\n\r\n" not in buf:
        buf += more()
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    n = 0
    for h in lines[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            n = int(v.strip())
    while len(rest) < n:
        rest += more()
    return lines[0].split(" ")[1], rest[:n], rest[n:]


def response(s):
    """One whole answer on s: its status, or "closed"."""
    try:
        return read_answer(lambda: s.recv(4096))[0]
    except (ConnectionError, ssl.SSLError, socket.timeout):
        return "closed"


class Counted:
    """A TLS client over a memory BIO, counting the records it receives."""

    def __init__(self, host, port, ca):
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx(ca).wrap_bio(self.inc, self.out, server_hostname=host)
        self.raw = b""
        self.records = 0
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._feed()
        self._flush()

    def _flush(self):
        d = self.out.read()
        if d:
            self.sock.sendall(d)

    def _feed(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("closed")
        self.raw += d
        # Whole records only: 5-byte header, then its length.
        while len(self.raw) >= 5:
            n = 5 + int.from_bytes(self.raw[3:5], "big")
            if len(self.raw) < n:
                break
            if self.raw[0] == 23:
                self.records += 1
            self.inc.write(self.raw[:n])
            self.raw = self.raw[n:]

    def send(self, data):
        self.tls.write(data)
        self._flush()

    def recv(self):
        while True:
            try:
                d = self.tls.read(65536)
                self._flush()
                return d
            except ssl.SSLWantReadError:
                self._feed()

    def answer(self, buf=b""):
        """One answer: (status, body, bytes left over)."""
        return read_answer(self.recv, buf)


def get(path, token):
    auth = b"" if token is None else b"Authorization: Bearer " + token + b"\r\n"
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"


def main():
    cmd = sys.argv[1]
    if cmd == "plain":
        s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=10)
        s.sendall(b"GET /keys?api-version=7.6 HTTP/1.1\r\nHost: x\r\n\r\n")
        line = first_line(s)
        # A TLS alert is binary, not an HTTP status line.
        print(line if line.startswith("HTTP/") else "closed")
    elif cmd == "slow":
        s = tls(sys.argv[2], sys.argv[3], sys.argv[4])
        s.sendall(b"GET /keys?api-version=7.6 HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        s.settimeout(float(sys.argv[5]))
        try:
            d = s.recv(4096)
            print("closed after %d s" % round(time.monotonic() - t0)
                  if not d or not d.startswith(b"HTTP/") else
                  "answered: " + d.split(b"\r\n")[0].decode())
        except socket.timeout:
            print("open")
        except (ConnectionError, ssl.SSLError):
            print("closed after %d s" % round(time.monotonic() - t0))
    elif cmd == "hold":
        n, secs = int(sys.argv[5]), float(sys.argv[6])
        held = []
        for _ in range(n):
            try:
                s = tls(sys.argv[2], sys.argv[3], sys.argv[4], timeout=3)
                s.sendall(b"GET /keys HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            except (OSError, ssl.SSLError):
                pass
        time.sleep(secs)
        alive = 0
        for s in held:
            s.settimeout(0.2)
            try:
                d = s.recv(1)
                alive += 0 if d == b"" else 1
            except socket.timeout:
                alive += 1
            except (OSError, ssl.SSLError):
                pass
        print(alive)
    elif cmd == "bigheader":
        s = tls(sys.argv[2], sys.argv[3], sys.argv[4])
        big = b"x" * (int(sys.argv[5]) * 1024)
        try:
            s.sendall(b"GET /keys?api-version=7.6 HTTP/1.1\r\nHost: x\r\nX-Big: " +
                      big + b"\r\n\r\n")
        except (ConnectionError, ssl.SSLError):
            pass
        print(first_line(s))
    elif cmd == "version":
        try:
            s = tls(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
            s.close()
            print("ok")
        except (ssl.SSLError, ConnectionError, ValueError):
            print("refused")
    elif cmd == "twice":
        s = tls(sys.argv[2], sys.argv[3], sys.argv[4])
        token = open(sys.argv[5]).read().strip()
        body = b"x" * 20 if sys.argv[6] == "body" else b""
        req = b"GET /keys?api-version=7.6 HTTP/1.1\r\nHost: x\r\n"
        if body:
            req += b"Content-Type: application/json\r\nContent-Length: 20\r\n"
        first = response(s) if s.sendall(req + b"\r\n" + body) is None else ""
        try:
            s.sendall(req.replace(b"Host: x\r\n", b"Host: x\r\nAuthorization: "
                                  b"Bearer " + token.encode() + b"\r\n") +
                      b"\r\n" + body)
            second = response(s)
        except (ConnectionError, ssl.SSLError):
            second = "closed"
        print(first, second)
    elif cmd == "refused":
        s = tls(sys.argv[2], sys.argv[3], sys.argv[4])
        token = open(sys.argv[5]).read().strip().encode()
        out = []
        for _ in range(int(sys.argv[6])):
            try:
                s.sendall(get("/keys?api-version=7.6", token))
            except (ConnectionError, ssl.SSLError):
                out.append("closed")
                break
            out.append(response(s))
            if out[-1] == "closed":
                break
        print(" ".join(out))
    elif cmd == "records":
        c = Counted(sys.argv[2], sys.argv[3], sys.argv[4])
        token = (None if sys.argv[5] == "none" else
                 open(sys.argv[5]).read().strip().encode())
        # The first answer comes after TLS 1.3's session tickets.
        c.send(get("/keys?api-version=7.6", token))
        c.answer()
        for path in sys.argv[6:]:
            before = c.records
            c.send(get(path, token))
            st, body, _ = c.answer()
            print(st, c.records - before, len(body))
    elif cmd == "pipeline":
        c = Counted(sys.argv[2], sys.argv[3], sys.argv[4])
        token = open(sys.argv[5]).read().strip().encode()
        n = int(sys.argv[6])
        c.send(get(sys.argv[7], token) * n)
        left, out, bodies = b"", [], set()
        for _ in range(n):
            st, body, left = c.answer(left)
            out.append(st)
            bodies.add(body)
        print(" ".join(out), "same" if len(bodies) == 1 else "differ")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
