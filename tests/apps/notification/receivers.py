"""Misbehaving webhook receivers on real loopback sockets (a raw TCP server whose every
connection a function handles), and a throwaway CA for TLS receivers."""

from __future__ import annotations

import contextlib
import datetime
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class RawServer:
    """Accepts connections on `host` and runs `handle(connection)` for each in a thread.
    `connections` counts them; `sent` is for handlers to add the bytes they wrote."""

    def __init__(
        self, handle: Callable[[socket.socket, RawServer], None], *, host: str = "127.0.0.1"
    ) -> None:
        self._handle = handle
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.connections = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> RawServer:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                self._handle(connection, self)
            except OSError:
                pass  # the caller hung up: what these receivers wait for

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        self._listener.close()
        self._thread.join(timeout=5)


def read_request(connection: socket.socket) -> bytes:
    """Read a request's head and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def write_certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a certificate for `name` it signed: (CA cert, cert, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def build(
        subject: str, issuer: str, key: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        build("webhook test CA", "webhook test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        build(name, "webhook test CA", key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
