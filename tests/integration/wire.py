"""wire.py - raw socketmap_table(5) and tcp_table(5) clients for bad-input tests.

Unlike postmap, these send exactly the bytes they are given, so tests can send malformed
netstrings, overlong keys, NUL bytes and unknown verbs. Every read has a timeout: a server
that neither answers nor closes makes the read raise socket.timeout, which a test reports
as "hung". A closed connection reads as None.
"""

import socket


def netstring(payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return str(len(payload)).encode() + b":" + payload + b","


def hex_quote(key):
    """tcp_table(5) key quoting as Postfix's hex_quote(3): '%', whitespace and every byte
    that is not printable ASCII become %XX."""
    if isinstance(key, str):
        key = key.encode()
    return "".join(chr(b) if 0x20 < b < 0x7f and b != 0x25 else f"%{b:02X}" for b in key)


class _Client:
    def __init__(self, address, timeout):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""

    def send_raw(self, data):
        """Sends bytes; False if the server already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self):
        """Reads more bytes; False on EOF or reset."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SocketmapClient(_Client):
    """address: a unix socket path or (host, port)."""

    def __init__(self, address, timeout=5):
        super().__init__(address, timeout)

    def read_reply(self):
        """The next reply payload (bytes), or None if the server closed the connection.
        Raises ValueError on a malformed reply, socket.timeout if the server hangs."""
        while b":" not in self.buf:
            if len(self.buf) > 10:
                raise ValueError(f"malformed netstring length: {self.buf[:20]!r}")
            if not self._fill():
                return None
        digits, _, rest = self.buf.partition(b":")
        if not digits.isdigit():
            raise ValueError(f"malformed netstring length: {digits!r}")
        need = int(digits) + 1
        while len(rest) < need:
            if not self._fill():
                return None
            digits, _, rest = self.buf.partition(b":")
        payload, comma = rest[:need - 1], rest[need - 1:need]
        if comma != b",":
            raise ValueError(f"netstring not terminated by ',': {comma!r}")
        self.buf = rest[need:]
        return payload

    def request(self, map_name, key):
        """Sends '<map> <key>' (key: str or bytes); returns the reply as str, or None."""
        if isinstance(key, str):
            key = key.encode()
        if not self.send_raw(netstring(map_name.encode() + b" " + key)):
            return None
        reply = self.read_reply()
        return None if reply is None else reply.decode("utf-8", "replace")


class TcpTableClient(_Client):
    """address: (host, port)."""

    def __init__(self, address, timeout=5):
        super().__init__(address, timeout)

    def read_line(self):
        """The next reply line without its LF, or None if the server closed."""
        while b"\n" not in self.buf:
            if not self._fill():
                return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def get(self, quoted_key):
        """Sends 'get <quoted_key>\\n' (the caller does the %XX quoting); returns the line."""
        if isinstance(quoted_key, str):
            quoted_key = quoted_key.encode()
        if not self.send_raw(b"get " + quoted_key + b"\n"):
            return None
        return self.read_line()
