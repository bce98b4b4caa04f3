"""An embedded FTP / FTPS server (pyftpdlib) for ``ferryman demo`` and for the tests.

One :class:`EmbeddedServer` serves one directory on a loopback port from a daemon thread, in
one of three modes: plain FTP, explicit FTPS (``AUTH TLS``, ftpes://) or implicit FTPS (TLS
from the first byte, ftps://). Without a certificate it makes a throw-away CA and server
certificate (:func:`ferryman.certs.make_test_pki`) and exposes them as :attr:`pki`, so clients
can verify the server properly instead of switching verification off.

pyftpdlib is configured through class attributes; every server therefore gets its own handler
subclass, its own IO loop and its own pyOpenSSL context, so several servers can run at once.
Its log lines go to the ``ferryman.embedded`` logger (session chatter at DEBUG); nothing is
printed and the logging configuration of the process is left alone.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from OpenSSL import SSL

from .certs import PkiFiles, make_test_pki

with warnings.catch_warnings():
    # pyftpdlib still imports asynchat/asyncore, deprecated (and warned about) on 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

__all__ = ["EmbeddedServer", "TLSChoice"]

TLSChoice = Literal["none", "explicit", "implicit"]

_log = logging.getLogger("ferryman.embedded")
# pyftpdlib configures logging to stderr itself on its first loop unless the "pyftpdlib"
# logger (or the root logger) has a handler; a NullHandler marks it as configured.
_pyftpdlib_log = logging.getLogger("pyftpdlib")
if not _pyftpdlib_log.handlers:
    _pyftpdlib_log.addHandler(logging.NullHandler())

_SCHEMES: dict[str, str] = {"none": "ftp", "explicit": "ftpes", "implicit": "ftps"}
_TLS_VERSIONS: dict[str, int] = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
_LEVELS = {"debug": logging.DEBUG, "info": logging.DEBUG, "warning": logging.WARNING}
_POLL_SECONDS = 0.05
_JOIN_SECONDS = 5.0


class _SessionLog:
    """Route pyftpdlib's per-session log lines to ``ferryman.embedded``."""

    log_prefix: str

    def log(self, msg: str, logfun: Callable[..., object] | None = None) -> None:
        level = _LEVELS.get(getattr(logfun, "__name__", "info"), logging.ERROR)
        _log.log(level, "%s %s", self.log_prefix % self.__dict__, msg)

    def logline(self, msg: str, logfun: Callable[..., object] | None = None) -> None:
        if _log.isEnabledFor(logging.DEBUG):  # the dialogue; PASS arrives masked
            _log.debug("%s %s", self.log_prefix % self.__dict__, msg)

    def logerror(self, msg: str) -> None:
        _log.error("%s %s", self.log_prefix % self.__dict__, msg)

    def log_exception(self, instance: object) -> None:
        _log.exception("unhandled exception in %r", instance)


class _QueuedFileGuard:
    """pyftpdlib keeps a RETR's open file queued until the data connection arrives, and a
    later transfer command replaces the queue without closing that file (a client that gave up
    on the data connection, e.g. after a pipelined ``EPSV`` + ``RETR``, issue 19): the file
    then stays open until the garbage collector finds it. Close it when it is replaced.

    A client killed mid-session can leave such a file behind on another path too (seen as a
    ResourceWarning once in a while in ``test_jobs_crash``; the path is not pinned down): every
    file a transfer was given is also closed when the session closes."""

    _out_dtp_queue: Any
    data_channel: Any
    _served: list[Any] | None = None

    def push_dtp_data(
        self, data: Any, isproducer: bool = False, file: Any = None, cmd: str | None = None
    ) -> None:
        queued = self._out_dtp_queue
        if self.data_channel is None and queued is not None and queued[2] not in (None, file):
            queued[2].close()
        if file is not None:
            served = self._served = [f for f in self._served or () if not f.closed]
            served.append(file)
        super().push_dtp_data(data, isproducer, file, cmd)  # type: ignore[misc]

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            for file in self._served or ():
                if not file.closed:
                    file.close()
            self._served = None


class _PlainHandler(_SessionLog, _QueuedFileGuard, FTPHandler):  # type: ignore[misc]
    """Plain FTP."""


class _ExplicitHandler(_SessionLog, _QueuedFileGuard, TLS_FTPHandler):  # type: ignore[misc]
    """Explicit FTPS: plain greeting, then ``AUTH TLS`` (RFC 4217)."""


class _ImplicitHandler(_ExplicitHandler):
    """Implicit FTPS: the TLS handshake comes first, even the 220 greeting is encrypted.

    pyftpdlib's TLS handler secures the control connection in ``ftp_AUTH`` by calling
    ``secure_connection()`` (wrap the socket in an accept-state ``SSL.Connection``; the IO loop
    then drives the handshake) and reports completion through ``handle_ssl_established()``.
    Here the server's first action on a new connection -- the greeting, or the 421 refusal when
    over the connection limits -- is held back until that handshake has completed. As the
    control socket is then an ``SSL.Connection``, ``PBSZ``/``PROT P`` work as after ``AUTH``
    and data connections are secured with the same context.
    """

    _after_handshake: Callable[[], None] | None = None

    def _secure_then(self, action: Callable[[], None]) -> None:
        self._after_handshake = action
        self.secure_connection(self.ssl_context)

    def handle(self) -> None:
        self._secure_then(super().handle)

    def handle_max_cons(self) -> None:
        self._secure_then(super().handle_max_cons)

    def handle_max_cons_per_ip(self) -> None:
        self._secure_then(super().handle_max_cons_per_ip)

    def handle_ssl_established(self) -> None:
        action, self._after_handshake = self._after_handshake, None
        if action is not None:
            action()


_HANDLERS: dict[str, type[Any]] = {
    "none": _PlainHandler,
    "explicit": _ExplicitHandler,
    "implicit": _ImplicitHandler,
}


class EmbeddedServer:
    """An FTP/FTPS server for one directory, running in a daemon thread.

    ``user`` gets full access (``elradfmwMT``) to ``root``; with ``anonymous=True`` the
    anonymous user may also log in, read-only. Without ``password`` a random one is made
    (see :attr:`password`). With ``require_tls`` (the default) explicit mode refuses USER/PASS
    before ``AUTH TLS`` and both TLS modes refuse data connections before ``PROT P``.
    ``client_ca`` makes the server demand a client certificate signed by that CA. A failed
    login is answered (530) after ``auth_failed_delay`` seconds (pyftpdlib's default is 3).
    ``max_connections`` counts open sockets as pyftpdlib does (the listener and every control
    and data connection); ``max_connections_per_ip`` counts control connections (0: no limit).

    Use as a context manager, or call :meth:`start` and :meth:`stop` (once each). A generated
    PKI lives in a temporary directory that :meth:`stop` removes.
    """

    def __init__(
        self,
        root: Path,
        *,
        tls: TLSChoice = "explicit",
        user: str = "demo",
        password: str | None = None,
        anonymous: bool = False,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        tls_max_version: Literal["1.2", "1.3"] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        banner: str | None = None,
        require_tls: bool = True,
        client_ca: Path | None = None,
        max_connections: int = 64,
        max_connections_per_ip: int = 0,
        idle_timeout: float = 300.0,
        auth_failed_delay: float = 0.2,
    ) -> None:
        if tls not in _HANDLERS:
            raise ValueError(f"tls must be one of {', '.join(_HANDLERS)}, not {tls!r}")
        if tls_max_version is not None and tls_max_version not in _TLS_VERSIONS:
            raise ValueError(f"tls_max_version must be '1.2' or '1.3', not {tls_max_version!r}")
        if keyfile is not None and certfile is None:
            raise ValueError("keyfile given without certfile")
        self.root = Path(root)
        self.tls: TLSChoice = tls
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.anonymous = anonymous
        self.banner = banner or "ferryman embedded FTP server ready."
        self.require_tls = require_tls
        self.pki: PkiFiles | None = None
        self._host = host
        self._port = port
        self._certfile = certfile
        self._keyfile = keyfile
        self._tls_max_version = tls_max_version
        self._client_ca = client_ca
        self._max_connections = max_connections
        self._max_connections_per_ip = max_connections_per_ip
        self._idle_timeout = idle_timeout
        self._auth_failed_delay = auth_failed_delay
        self._tmpdir: Path | None = None
        self._server: Any = None
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- life cycle

    def start(self) -> Self:
        """Bind the listening socket and serve from a daemon thread; returns ``self``."""
        if self._thread is not None or self._stopping.is_set():
            raise RuntimeError("an EmbeddedServer can be started only once")
        self.root.mkdir(parents=True, exist_ok=True)
        ioloop = IOLoop.factory()
        try:
            handler = self._make_handler()
            server = FTPServer((self._host, self._port), handler, ioloop=ioloop)
        except BaseException:
            ioloop.close()
            self._remove_tmpdir()
            raise
        server.max_cons = self._max_connections
        server.max_cons_per_ip = self._max_connections_per_ip
        self._server = server
        ip, port = server.address
        self._address = (str(ip), int(port))
        self._thread = threading.Thread(
            target=self._serve, name=f"ferryman-ftpd-{self.port}", daemon=True
        )
        self._thread.start()
        _log.debug("serving %s from %s", self.url(), self.root)
        return self

    def stop(self, timeout: float = _JOIN_SECONDS) -> None:
        """Close every socket (listener, sessions, data connections) and join the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join(timeout)
            if thread.is_alive():
                _log.warning("the embedded FTP server thread did not stop in %.1f s", timeout)
        self._remove_tmpdir()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        server = self._server
        ioloop = server.ioloop
        try:
            # Not serve_forever(): it logs a "starting" line each time it is called.
            while not self._stopping.is_set() and ioloop.socket_map:
                ioloop.loop(_POLL_SECONDS, blocking=False)
        except Exception:
            _log.exception("the embedded FTP server failed")
        finally:
            server.close_all()  # closes every channel of the loop, then the poller

    # --- addresses

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(ip, port)`` (known from :meth:`start` on)."""
        if self._address is None:
            raise RuntimeError("the server has not been started")
        return self._address

    @property
    def host(self) -> str:
        """The host name or address the server was asked to listen on."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return self.address[1]

    @property
    def scheme(self) -> str:
        """``ftp``, ``ftpes`` (explicit TLS) or ``ftps`` (implicit TLS)."""
        return _SCHEMES[self.tls]

    def url(self, scheme_user: bool = True) -> str:
        """``ftpes://demo@127.0.0.1:PORT/`` -- with the user unless told not to; never the
        password."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        who = f"{self.user}@" if scheme_user else ""
        return f"{self.scheme}://{who}{host}:{self.port}/"

    def __repr__(self) -> str:
        state = f"{self.url()}" if self._thread is not None else "stopped"
        return f"<EmbeddedServer {state} root={str(self.root)!r}>"

    # --- configuration

    def _make_handler(self) -> type[Any]:
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.root), perm="elradfmwMT")
        if self.anonymous:
            authorizer.add_anonymous(str(self.root), perm="elr")
        attrs: dict[str, object] = {
            "authorizer": authorizer,
            "banner": self.banner,
            "timeout": self._idle_timeout,
            "auth_failed_timeout": self._auth_failed_delay,
        }
        if self.tls != "none":
            attrs["ssl_context"] = self._ssl_context()
            attrs["tls_control_required"] = self.require_tls
            attrs["tls_data_required"] = self.require_tls
        base = _HANDLERS[self.tls]
        return type(f"{base.__name__}_{id(self):x}", (base,), attrs)

    def _ssl_context(self) -> SSL.Context:
        certfile, keyfile = self._certfile, self._keyfile
        if certfile is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="ferryman-pki-"))
            self.pki = make_test_pki(self._tmpdir)
            certfile, keyfile = self.pki.server_cert, self.pki.server_key
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_max_proto_version(_TLS_VERSIONS[self._tls_max_version or "1.3"])
        ctx.set_options(SSL.OP_NO_COMPRESSION)
        ctx.use_certificate_chain_file(str(certfile))
        ctx.use_privatekey_file(str(keyfile or certfile))
        ctx.check_privatekey()
        # Control and data connections share this context and so its session cache: a client
        # may resume the control connection's session on its data connections.
        ctx.set_session_id(b"ferryman-embedded")
        if self._client_ca is not None:
            ctx.load_verify_locations(str(self._client_ca))
            ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT)
        return ctx

    def _remove_tmpdir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
