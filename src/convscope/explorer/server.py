"""The explorer's web server: the Flask app, its safety checks, and serving it on a local address.

Safety, because a local server is reachable from every web page the user visits:

* bound to 127.0.0.1 unless ``--host`` says otherwise; any other address must name the
  Host values it answers to (``--allow-host``), and the start-up warning says what is
  exposed to whom;
* a request whose Host header is not this server (localhost, 127.0.0.1 or [::1] with
  its port, or an allowed name) is refused: that defeats DNS rebinding, on every bind,
  0.0.0.0 included;
* a POST with a foreign Origin (or a browser's ``Sec-Fetch-Site: cross-site``) is
  refused, and JSON endpoints take only application/json, which a cross-site form
  cannot send;
* request bodies are capped (``MAX_BODY_BYTES``); only the files shipped in
  ``static/`` can be read, looked up by exact name;
* connections are capped (``MAX_CONNECTIONS``) and an idle one is closed after
  ``IDLE_SECONDS``, so half-sent requests cannot hold the server's threads;
* every error is a JSON body with a one-line message, those the HTTP layer answers
  itself (414, 431) included: no traceback reaches the page, and no bad request stops
  the server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
import threading
import webbrowser
from urllib.parse import urlsplit

from flask import Flask, jsonify, request, send_file
from werkzeug.exceptions import Forbidden, HTTPException, NotFound
from werkzeug.serving import WSGIRequestHandler, make_server

from .api import api

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
MAX_BODY_BYTES = 4 * 2**20  # the 280x280 drawing as JSON is ~0.5 MB; uploads are capped lower in inputs.py
MAX_CONNECTIONS = 32
IDLE_SECONDS = 10
HOST_HEADER = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?$")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_local(host: str) -> bool:
    """Whether ``host`` (a name or address, IPv6 with or without brackets) is this machine's loopback."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_names(host: str, allow_hosts=()) -> set[str]:
    """Host-header names this server answers to: this machine's loopback names, and the names a non-local
    bind allows (``allow_hosts``; ValueError if a non-loopback bind names none: a wildcard or public address
    with no allow-list would answer any Host, which DNS rebinding turns against the user)."""
    names = set(LOCAL_NAMES)
    if is_local(host) and not allow_hosts:
        return names
    if not allow_hosts:
        raise ValueError(f"--host {host} serves beyond this machine: name the Host values the page will be reached "
                         "at with --allow-host (e.g. --allow-host 192.168.1.20 --allow-host mybox.local)")
    for name in allow_hosts:
        shown = f"[{name}]" if ":" in name and not name.startswith("[") else name  # IPv6 as a Host header writes it
        match = HOST_HEADER.match(shown)
        if not match or match.group(2) is not None:
            raise ValueError(f"--allow-host {name!r}: expected a host name or address without a port")
        names.add(shown.lower())
    return names


def create_app(workspace, host: str = "127.0.0.1", allow_hosts=()) -> Flask:
    """The explorer app for ``workspace``; ``ExplorerServer`` sets the port it checks Host headers against."""
    app = Flask(__name__, static_folder=None)
    app.url_map.merge_slashes = False  # "//etc" is a name not served, not a redirect to follow
    app.config.update(EXPLORER_WORKSPACE=workspace, EXPLORER_NAMES=allowed_names(host, allow_hosts), EXPLORER_PORT=None,
                      MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    static_files = {name for name in os.listdir(STATIC) if os.path.isfile(os.path.join(STATIC, name))}

    @app.before_request
    def refuse_foreign_requests():
        if not _host_ok(request.headers.get("Host", ""), app.config):  # the raw header: no fallback to the bound address
            raise Forbidden("unexpected Host header: this explorer answers only to its own address")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("Origin")
            if origin is not None and not _origin_ok(origin, app.config):
                raise Forbidden("cross-origin requests are refused")
            if request.headers.get("Sec-Fetch-Site") == "cross-site":
                raise Forbidden("cross-site requests are refused")

    @app.get("/")
    def index():
        return send_file(os.path.join(STATIC, "index.html"), mimetype="text/html")

    @app.get("/static/<path:name>")
    def static_file(name):
        # Exact names only: no path arithmetic, so no encoding of ../ can leave the folder.
        if name not in static_files:
            raise NotFound("no such file")
        return send_file(os.path.join(STATIC, name))

    app.register_blueprint(api)

    @app.errorhandler(HTTPException)
    def http_error(e):
        return jsonify({"error": e.description, "status": e.code}), e.code

    @app.errorhandler(Exception)
    def unexpected_error(e):
        app.logger.exception("explorer: unexpected error")  # the traceback goes to the terminal, not the page
        return jsonify({"error": f"internal error ({type(e).__name__}); see the server's terminal", "status": 500}), 500

    @app.after_request
    def secure_headers(response):
        response.headers.update(SECURITY_HEADERS)
        return response

    return app


def _host_ok(header: str, config) -> bool:
    match = HOST_HEADER.match(header or "")
    if not match:
        return False
    name, port = match.group(1).lower(), int(match.group(2) or 80)
    return name in config["EXPLORER_NAMES"] and port == config["EXPLORER_PORT"]


def _origin_ok(origin: str, config) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme == "http" and not parts.path and _host_ok(parts.netloc, config)


def url_for_address(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    return f"http://[{shown}]:{port}/" if ":" in shown and not shown.startswith("[") else f"http://{shown}:{port}/"


def _listening_socket(host: str, port: int) -> int:
    """A bound, listening socket's descriptor, for werkzeug to serve on. Binding here (not in werkzeug) makes a
    busy port an ordinary OSError, which the command line reports in one line; werkzeug would print and exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {reason} (choose another --port)") from None
    return sock.detach()  # the caller closes the descriptor once werkzeug has its copy


class RequestHandler(WSGIRequestHandler):
    """werkzeug's handler with an idle timeout, and JSON for the errors Python's HTTP layer answers itself
    (a request line or headers too long) before the app sees the request."""

    timeout = IDLE_SECONDS

    def send_error(self, code, message=None, explain=None):
        body = json.dumps({"error": message or self.responses.get(code, ("error",))[0], "status": code}).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


class ExplorerServer:
    """A running explorer: ``start()`` binds (port 0 picks a free one) and serves in a thread; ``stop()`` ends it."""

    def __init__(self, workspace, host: str = "127.0.0.1", port: int = 0, allow_hosts=()):
        self.host = host
        self.app = create_app(workspace, host, allow_hosts)
        fd = _listening_socket(host, port)
        try:
            self._server = make_server(host, port, self.app, threaded=True, fd=fd, request_handler=RequestHandler)
        finally:
            os.close(fd)  # werkzeug serves its own duplicate of the descriptor
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._server.process_request = self._process_request
        self.port = self._server.port
        self.app.config["EXPLORER_PORT"] = self.port
        self.url = url_for_address(host, self.port)
        self._thread = None

    def _process_request(self, request, client_address):
        """One thread per connection, at most ``MAX_CONNECTIONS`` at once; one more is closed at once."""
        if not self._slots.acquire(blocking=False):
            self._server.shutdown_request(request)
            return

        def serve():
            try:
                self._server.finish_request(request, client_address)
            except Exception:  # a broken connection: the handler has already logged it
                pass
            finally:
                self._server.shutdown_request(request)
                self._slots.release()

        threading.Thread(target=serve, daemon=True).start()

    def start(self) -> "ExplorerServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="convscope-explorer", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` from another thread or Ctrl-C; the socket is closed either way."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def serve(workspace, host: str = "127.0.0.1", port: int = 8050, open_browser: bool = True, allow_hosts=()) -> None:
    """Serve until Ctrl-C: print the address, warn about a non-local host, open the browser."""
    server = ExplorerServer(workspace, host, port, allow_hosts)
    if not is_local(host):
        print(f"warning: serving on {host}, port {server.port}, to anyone who can reach it by the name(s) "
              f"{', '.join(sorted(allow_hosts))}: they see the model, its test images and run history, and can run "
              "it on their own pictures (nothing is ever written; requests from other web sites are refused)",
              file=sys.stderr)
    print(f"convscope explorer: {server.url}  (Ctrl-C to stop)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(server.url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("convscope explorer: stopped", file=sys.stderr)
