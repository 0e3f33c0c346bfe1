"""A tiny read-only file server for the reports root, so every Excel output and the quality
report is one click from its asset in the Dagster UI (the assets link to it).

It listens on 127.0.0.1 only, answers GET and HEAD only (anything else: 405), serves only files
under the reports root (no ``..``, no symlink out of the root, no hidden files or folders), and
answers only requests addressed to 127.0.0.1/localhost (a web page elsewhere cannot reach it
through DNS rebinding). It never writes anything.

    python -m pipeline.fileserver --root reports --port 3001
"""

from __future__ import annotations

import argparse
import html
import mimetypes
import shutil
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 3001
LOCAL_NAMES = ("127.0.0.1", "localhost")
TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".json": "application/json; charset=utf-8",
    ".jsonl": "application/json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
INLINE = (".html", ".css", ".js", ".json", ".png", ".svg", ".ico", ".txt")


class ReportsHandler(BaseHTTPRequestHandler):
    root: Path  # set by make_server
    server_version = "huitoukan-files"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def _refuse_method(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method  # noqa: N815

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        sys.stderr.write(f"[files] {self.address_string()} {format % args}\n")

    # ----------------------------------------------------------------------------------------

    def _error(self, status: HTTPStatus, body: bool) -> None:
        text = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        if body:
            self.wfile.write(text)

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return name in LOCAL_NAMES

    def _target(self) -> Path | None:
        """The file or folder the URL names, or None when it is outside what may be served."""
        path = unquote(urlsplit(self.path).path, errors="strict")
        if "\x00" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or p.startswith(".") or p.startswith("~$") for p in parts):
            return None
        root = self.root.resolve()
        target = root.joinpath(*parts)
        try:
            resolved = target.resolve(strict=True)
        except (FileNotFoundError, RuntimeError, OSError):
            return None
        if resolved != root and root not in resolved.parents:  # a symlink pointing out of the root
            return None
        return resolved

    def _serve(self, body: bool) -> None:
        if not self._host_ok():
            return self._error(HTTPStatus.FORBIDDEN, body)
        try:
            target = self._target()
        except UnicodeDecodeError:
            target = None
        if target is None:
            return self._error(HTTPStatus.NOT_FOUND, body)
        if target.is_dir():
            if not urlsplit(self.path).path.endswith("/"):
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", urlsplit(self.path).path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            index = target / "index.html"
            if index.is_file():
                return self._send_file(index, body)
            return self._send_listing(target, body)
        return self._send_file(target, body)

    def _common_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "default-src 'self' 'unsafe-inline' data:; form-action 'none'")

    def _send_file(self, path: Path, body: bool) -> None:
        try:
            fh = path.open("rb")
        except OSError:
            return self._error(HTTPStatus.FORBIDDEN, body)
        with fh:
            size = path.stat().st_size
            suffix = path.suffix.lower()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
                             or "application/octet-stream")
            self.send_header("Content-Length", str(size))
            disposition = "inline" if suffix in INLINE else "attachment"
            self.send_header("Content-Disposition", f"{disposition}; filename*=UTF-8''{quote(path.name)}")
            self._common_headers()
            self.end_headers()
            if body:
                shutil.copyfileobj(fh, self.wfile)
        return None

    def _send_listing(self, folder: Path, body: bool) -> None:
        relative = folder.relative_to(self.root.resolve()).as_posix()
        title = "reports/" + ("" if relative == "." else relative + "/")
        entries = sorted((p for p in folder.iterdir() if not p.name.startswith((".", "~$"))),
                         key=lambda p: (not p.is_dir(), p.name))
        items = ['<li><a href="../">../</a></li>'] if relative != "." else []
        for p in entries:
            name = p.name + ("/" if p.is_dir() else "")
            items.append(f'<li><a href="{quote(name)}">{html.escape(name)}</a></li>')
        page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<h1>{html.escape(title)}</h1><ul>{''.join(items)}</ul>").encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self._common_headers()
        self.end_headers()
        if body:
            self.wfile.write(page)


def make_server(root: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    if host not in LOCAL_NAMES:
        raise ValueError("the file server only listens on 127.0.0.1 (the reports hold names and IDs)")
    handler = type("Handler", (ReportsHandler,), {"root": Path(root)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_background(root: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """Start the server on a daemon thread; ``server.shutdown()`` stops it."""
    server = make_server(root, host, port)
    threading.Thread(target=server.serve_forever, name="huitoukan-files", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the reports root read-only on 127.0.0.1")
    parser.add_argument("--root", default="reports")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    server = make_server(Path(args.root), DEFAULT_HOST, args.port)
    print(f"serving {Path(args.root).resolve()} read-only at http://{DEFAULT_HOST}:{server.server_port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
