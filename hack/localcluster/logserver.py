"""The node's log endpoint, so ``kubectl logs`` works against the process kubelet.

The apiserver proxies ``pods/log`` to ``https://<node InternalIP>:<kubelet
port>/containerLogs/{namespace}/{pod}/{container}`` with its kubelet client
certificate; this serves the container's log file from there (``follow``,
``tailLines``, ``limitBytes``, ``previous``; no ``timestamps``).
"""

from __future__ import annotations

import logging
import ssl
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .podstatus import HOST_IP

if TYPE_CHECKING:
    from .kubelet import ProcessKubelet

log = logging.getLogger("kubelet")


class LogHandler(BaseHTTPRequestHandler):
    """``GET /containerLogs/{namespace}/{pod}/{container}``: the apiserver asking for logs."""

    kubelet: ProcessKubelet
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("logs: " + format, *args)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            self.send_error(404, "only /containerLogs/{namespace}/{pod}/{container} is served")
            return
        _, namespace, name, container = parts
        query = urllib.parse.parse_qs(url.query)
        found = self.kubelet.find_run(namespace, name, container)
        if found is None:
            self.send_error(
                404, f'container "{container}" in pod "{name}" is not known to this node'
            )
            return
        worker, run = found
        attempt = run.restart_count
        if query.get("previous", ["false"])[0] == "true":
            attempt -= 1
        path = worker.dir / "containers" / container / f"{attempt}.log"
        if not path.exists():
            self.send_error(
                400, f'previous terminated container "{container}" in pod "{name}" not found'
            )
            return
        tail_lines = int(query["tailLines"][0]) if "tailLines" in query else None
        limit = int(query["limitBytes"][0]) if "limitBytes" in query else None
        follow = query.get("follow", ["false"])[0] == "true"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        with open(path, "rb") as handle:
            data = handle.read()
            if tail_lines is not None:
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[-tail_lines:]) if tail_lines else b""
            while True:
                if limit is not None:
                    data = data[: max(0, limit - sent)]
                if data:
                    self._chunk(data)
                    sent += len(data)
                if not follow or (limit is not None and sent >= limit):
                    break
                if run.proc is None and run.exited.is_set():
                    data = handle.read()
                    if not data:
                        break
                    continue
                time.sleep(0.2)
                data = handle.read()
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def log_server(
    kubelet: ProcessKubelet, *, port: int, cert: Path, key: Path, client_ca: Path | None
) -> ThreadingHTTPServer:
    """An HTTPS server for the log endpoint; with ``client_ca``, callers need a certificate."""

    class Handler(LogHandler):
        pass

    Handler.kubelet = kubelet
    server = ThreadingHTTPServer((HOST_IP, port), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    if client_ca:
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server
