"""A minimal HTTP/1.1 client connection over a Unix or TCP socket.

Why not ``http.client``: importing it pulls in ``email``, ``ssl`` and ``re``
(about 25 ms), more than the whole budget of a ``squeue`` call. The controller
always answers with ``Content-Length`` (or chunked), so a keep-alive client is
a few dozen lines of socket code.
"""

import _socket  # the C module: `socket` would import enum and selectors (~4 ms)


class HTTPError(OSError):
    """The peer's answer was not HTTP we understand."""


class Connection:
    """One keep-alive connection. ``address``: a Unix socket path or (host, port)."""

    def __init__(self, address, timeout, *, tls=False):
        self.address = address
        self.timeout = timeout
        self.tls = tls
        self.sock = None
        self._buf = b""

    def connect(self):
        if isinstance(self.address, tuple):
            import socket
            sock = socket.create_connection(self.address, timeout=self.timeout)
            if self.tls:
                import ssl
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.address[0])
        else:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.address)
            except OSError:
                sock.close()
                raise
        self.sock = sock
        self._buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def stale(self):
        """True if the kept-alive socket was closed by the peer (e.g. a controller restart)."""
        if self.sock is None:
            return False
        if hasattr(self.sock, "pending"):
            # TLS (no MSG_PEEK on an SSLSocket): between requests the peer sends nothing but
            # its goodbye (close_notify or FIN), so a readable socket is a closed one
            import select
            try:
                return bool(self.sock.pending() or select.select([self.sock], [], [], 0)[0])
            except (OSError, ValueError):
                return True
        try:
            self.sock.setblocking(False)
            try:
                return self.sock.recv(1, _socket.MSG_PEEK) == b""
            finally:
                self.sock.settimeout(self.timeout)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def request(self, method, target, body=None, headers=None):
        """Send a request; return (status, headers dict with lower-case keys, body bytes)."""
        if self.sock is None:
            self.connect()
        self.sock.settimeout(self.timeout)
        lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + body if body else head)
        return self._read_response()

    def _read_until(self, marker):
        while True:
            i = self._buf.find(marker)
            if i >= 0:
                out, self._buf = self._buf[:i], self._buf[i + len(marker):]
                return out
            self._fill()

    def _read_exact(self, n):
        while len(self._buf) < n:
            self._fill()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionResetError("connection closed by the controller")
        self._buf += chunk

    def _read_response(self):
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise HTTPError(f"bad status line: {status_line!r}")
        headers = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._read_until(b"\r\n")
                    break
                body += self._read_exact(size)
                self._read_exact(2)
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        else:
            body = self._buf
            while True:
                chunk = self.sock.recv(262144)
                if not chunk:
                    break
                body += chunk
            self._buf = b""
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(parts[1]), headers, body


def quote(text, safe=""):
    """Percent-encode like urllib.parse.quote, without importing urllib (and re)."""
    out = []
    for b in str(text).encode("utf-8"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "_.-~" or c in safe):
            out.append(c)
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def urlencode(items):
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in items.items())
