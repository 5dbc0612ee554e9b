"""rtest.py - a dependency-free Redis (RESP2) client and msgpack codec for the
router/script tests in router/tests (python3 only: no pip packages needed)."""
import socket
import struct


class Redis:
    def __init__(self, port, host="127.0.0.1"):
        self.s = socket.create_connection((host, port))
        self.buf = b""

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _n(self, n):
        while len(self.buf) < n + 2:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        v, self.buf = self.buf[:n], self.buf[n + 2:]
        return v

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._n(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(line)

    def __call__(self, *args):
        self.send(*args)
        r = self.read()
        return r

    def settimeout(self, t):
        self.s.settimeout(t)


class RedisError(str):
    pass


def unpack(b):
    v, off = _unpack(b, 0)
    if off != len(b):
        raise ValueError("trailing bytes")
    return v


def _unpack(b, o):
    c = b[o]
    o += 1
    if c <= 0x7F:
        return c, o
    if c >= 0xE0:
        return c - 256, o
    if 0xA0 <= c <= 0xBF:
        n = c & 31
        return b[o:o + n].decode("utf-8", "surrogateescape"), o + n
    if 0x90 <= c <= 0x9F:
        return _arr(b, o, c & 15)
    if 0x80 <= c <= 0x8F:
        return _map(b, o, c & 15)
    if c == 0xC0:
        return None, o
    if c == 0xC2:
        return False, o
    if c == 0xC3:
        return True, o
    fmt = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h",
           0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if c in fmt:
        n = struct.calcsize(fmt[c])
        return struct.unpack(fmt[c], b[o:o + n])[0], o + n
    if c in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        w = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}[c]
        n = int.from_bytes(b[o:o + w], "big")
        o += w
        raw = b[o:o + n]
        if c >= 0xD9:
            return raw.decode("utf-8", "surrogateescape"), o + n
        return bytes(raw), o + n
    if c in (0xDC, 0xDD):
        w = 2 if c == 0xDC else 4
        return _arr(b, o + w, int.from_bytes(b[o:o + w], "big"))
    if c in (0xDE, 0xDF):
        w = 2 if c == 0xDE else 4
        return _map(b, o + w, int.from_bytes(b[o:o + w], "big"))
    raise ValueError("msgpack type 0x%x" % c)


def _arr(b, o, n):
    out = []
    for _ in range(n):
        v, o = _unpack(b, o)
        out.append(v)
    return out, o


def _map(b, o, n):
    out = {}
    for _ in range(n):
        k, o = _unpack(b, o)
        v, o = _unpack(b, o)
        out[k] = v
    return out, o


def raw_types(b):
    """The msgpack type byte of each value in a top-level map (for checks
    that strings are str and numbers are integers)."""
    return b[0]


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogateescape")
        if len(v) < 32:
            return bytes([0xA0 | len(v)]) + v
        return b"\xdb" + struct.pack(">I", len(v)) + v
    if isinstance(v, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(
            pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def split_envs(payload):
    """The msgpack objects of a payload, one after the other, as bytes: a
    gateway channel message carries one or more envelopes."""
    out, o = [], 0
    while o < len(payload):
        _, end = _unpack(payload, o)
        out.append(bytes(payload[o:end]))
        o = end
    return out


def decode_env(payload):
    """A router->gateway envelope with its frame decoded too."""
    env = unpack(payload)
    f = env.get("f")
    if isinstance(f, str):
        f = f.encode("utf-8", "surrogateescape")
    env["f"] = unpack(f)
    return env
