"""The dashboard's HTTP server (stdlib ``ThreadingHTTPServer``) inside ``ferryman serve``.

Pages are rendered on the server with Jinja2 (an autoescaping environment of its own, not the
job sandbox); every page has a JSON twin (``/runs`` and ``/runs.json``). Actions (run now,
enable, disable, retry) go through the :class:`~ferryman.serve.scheduler.Scheduler` and need
the token (:mod:`.auth`); the dashboard itself never writes history.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..errors import ConfigError, FerrymanError
from ..redact import mask
from ..state.browse import RunFilter
from .actions import Refused, Scheduling, act
from .auth import COOKIE, TokenGate
from .charts import bar_chart, duration_chart, human_bytes
from .data import DashboardData
from .metrics import TotalsCache, render_metrics
from .params import choice, day, loopback, number

__all__ = ["Dashboard"]

log = logging.getLogger("ferryman.serve.web")

_STATUSES = ("running", "succeeded", "failed", "interrupted")
_STATIC = {"style.css": "text/css", "app.js": "text/javascript"}
_MAX_BODY = 64 * 1024


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ferryman.web", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = human_bytes
    env.filters["mask"] = lambda v: mask(str(v)) if v is not None else ""
    env.filters["secs"] = lambda v: "" if v is None else f"{float(v):.2f} s"
    env.filters["when"] = lambda v: "" if not v else str(v)[:19].replace("T", " ")
    return env


class Dashboard:
    """The dashboard: ``start()`` serves it from a thread, ``stop()`` ends it."""

    def __init__(
        self,
        scheduler: Scheduling,
        token: str,
        host: str = "127.0.0.1",
        port: int = 8470,
        *,
        state: Path | None = None,
        protect_reads: bool = False,
    ) -> None:
        self.scheduler = scheduler
        self.data = DashboardData(scheduler, state)
        self.gate = TokenGate(token)
        self.protect_reads = protect_reads
        self.templates = _environment()
        self.totals = TotalsCache()
        dashboard = self

        class Handler(_Handler):
            owner = dashboard

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        threading.Thread(target=self._warm, name="dashboard-warm", daemon=True).start()
        host, port = self.address
        log.info("dashboard on http://%s:%d/", host, port, extra={"event": "web", "port": port})

    def _warm(self) -> None:
        """The long sums (charts' days, metrics' totals) read once at start, in the
        background: the first visitor of a long history does not wait for them."""
        try:
            self.data.warm()
            for path in self.data.state_files():
                with self.data.reading(path) as conn:
                    if conn is not None:
                        self.totals.totals(path, conn)
        except Exception as err:  # only an optimization: the pages read what they need
            log.warning("dashboard: reading the history ahead failed: %s", mask(str(err)))

    def stop(self, timeout: float = 5.0) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)

    def render(self, name: str, **context: Any) -> str:
        return self.templates.get_template(name).render(**context)


class _Handler(BaseHTTPRequestHandler):
    owner: Dashboard
    server_version = "ferryman"
    protocol_version = "HTTP/1.1"
    #: seconds a connection may stay silent (a request not sent, a kept-alive connection):
    #: a slow or stuck client does not hold a thread for ever
    timeout = 30

    # --- plumbing ---------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web: %s", mask(format % args))

    def _query(self) -> dict[str, str]:
        raw = parse_qs(urlsplit(self.path).query, keep_blank_values=False)
        return {k: v[-1] for k, v in raw.items()}

    def _cookie(self) -> str | None:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except Exception:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel else None

    def _authorized(self) -> bool:
        gate = self.owner.gate
        return gate.bearer_ok(self.headers.get("Authorization")) or gate.session_ok(self._cookie())

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:;"
            " form-action 'self'; frame-ancestors 'none'",
        )
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(data, ensure_ascii=False, default=str, indent=1).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _html(self, template: str, http_status: HTTPStatus = HTTPStatus.OK, **context: Any) -> None:
        page = self.owner.render(
            template,
            logged_in=self._authorized(),
            csrf=self.owner.gate.csrf if self._authorized() else "",
            protect_reads=self.owner.protect_reads,
            path=urlsplit(self.path).path,
            message=self._query().get("msg", ""),
            **context,
        )
        self._send(http_status, page.encode("utf-8"), "text/html; charset=utf-8")

    def _redirect(self, where: str, cookie: str | None = None) -> None:
        headers = {"Location": where}
        if cookie is not None:
            headers["Set-Cookie"] = cookie
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", headers)

    def _error(self, status: HTTPStatus, message: str, as_json: bool) -> None:
        if as_json:
            self._json({"ok": False, "error": message}, status)
        else:
            self._html("error.html", status, code=int(status), error=message)

    # --- GET ----------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def _host_ok(self) -> bool:
        """On a loopback address, only loopback names: a web page whose name was made to
        point at 127.0.0.1 (DNS rebinding) gets nothing from the dashboard."""
        bound = self.owner.address[0]
        if not loopback(bound):
            return True
        name = urlsplit("//" + self.headers.get("Host", "")).hostname or ""
        return name == "localhost" or loopback(name)

    def do_GET(self) -> None:
        route = urlsplit(self.path).path
        as_json = route.endswith(".json")
        if not self._host_ok():
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "unknown host name", True)
            return
        try:
            self._get(route.removesuffix(".json"), as_json)
        except Refused as err:
            self._error(err.status, err.message, as_json or route == "/metrics")
        except (LookupError, ValueError, ConfigError) as err:
            message = err.message if isinstance(err, FerrymanError) else str(err)
            self._error(HTTPStatus.BAD_REQUEST, mask(message), as_json)
        except Exception:
            log.exception("web: %s failed", mask(route))
            self._error(
                HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see serve's log)", as_json
            )

    def _get(self, route: str, as_json: bool) -> None:
        owner, q = self.owner, self._query()
        if route == "/health":
            self._json({"ok": True, "jobs": len(owner.scheduler.jobs())})
            return
        if route.startswith("/static/"):
            self._static(route.removeprefix("/static/"))
            return
        if route == "/login":
            self._html("login.html", failed=False)
            return
        if owner.protect_reads and not self._authorized():
            if as_json or route == "/metrics":
                raise Refused(HTTPStatus.UNAUTHORIZED, "this dashboard wants its token")
            self._redirect("/login")
            return
        if route == "/":
            self._redirect("/jobs")
            return
        if route == "/metrics":
            self._metrics()
            return
        state = int(q.get("state", "0"))
        page: tuple[str, dict[str, Any]]
        if route == "/jobs":
            page = "jobs.html", owner.data.jobs()
        elif route == "/runs":
            which = RunFilter(
                job=q.get("job") or None,
                status=choice(q.get("status"), _STATUSES),
                since=day(q.get("since")),
                until=day(q.get("until")),
            )
            data = owner.data.runs(state, which, number(q.get("before")), number(q.get("after")))
            data["jobs"] = [j["name"] for j in owner.scheduler.jobs()]
            data["statuses"] = _STATUSES
            page = "runs.html", data
        elif match := re.fullmatch(r"/runs/(\d+)", route):
            found = owner.data.run(state, int(match[1]), number(q.get("files")) or 0)
            if found is None:
                raise Refused(HTTPStatus.NOT_FOUND, f"there is no run {match[1]}")
            page = "run.html", found
        elif match := re.fullmatch(r"/runs/(\d+)/log", route):
            found = owner.data.log(state, int(match[1]), number(q.get("offset")) or 0)
            if found is None:
                raise Refused(HTTPStatus.NOT_FOUND, f"there is no run {match[1]}")
            page = "log.html", found
        elif route == "/ledger":
            page = "ledger.html", owner.data.ledger(q.get("job"), q.get("q"), q.get("after"))
        elif route == "/charts":
            days = max(1, min(number(q.get("days")) or 30, 366))
            page = "charts.html", owner.data.charts(state, days, q.get("job") or None)
        else:
            raise Refused(HTTPStatus.NOT_FOUND, f"no page {route}")
        template, data = page
        if as_json:
            self._json({"ok": True, **data})
            return
        data["state_files"] = [str(p) for p in owner.data.state_files()]
        data["query"] = q
        if template == "charts.html":
            data["svg"] = _charts_svg(data)
        self._html(template, **data)

    def _static(self, name: str) -> None:
        if name not in _STATIC:
            raise Refused(HTTPStatus.NOT_FOUND, f"no file {name}")
        body = resources.files("ferryman.web").joinpath("static", name).read_bytes()
        self._send(HTTPStatus.OK, body, f"{_STATIC[name]}; charset=utf-8")

    def _metrics(self) -> None:
        owner = self.owner
        from .metrics import Totals  # noqa: PLC0415

        totals = Totals()
        for path in owner.data.state_files():
            with owner.data.reading(path) as conn:
                if conn is not None:
                    totals = totals.add(owner.totals.totals(path, conn))
        jobs = owner.scheduler.jobs()
        serve = {
            "jobs": len(jobs),
            "enabled": {j["name"]: j["enabled"] for j in jobs},
            "running": sum(1 for j in jobs if j["running"]),
            "queued": sum(int(j["queued"]) for j in jobs),
        }
        body = render_metrics(totals, serve).encode("utf-8")
        self._send(HTTPStatus.OK, body, "text/plain; version=0.0.4; charset=utf-8")

    # --- POST -----------------------------------------------------------------------------------

    def do_POST(self) -> None:
        route = urlsplit(self.path).path
        wants_json = "application/json" in self.headers.get("Accept", "") or route.endswith(".json")
        if not self._host_ok():
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "unknown host name", True)
            return
        try:
            form = self._form()
            if route == "/login":
                self._login(form)
                return
            if route == "/logout":
                self._check_action(form)
                self._redirect("/jobs", f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict")
                return
            self._check_action(form)
            done = act(self.owner.scheduler, self.owner.data, route.removesuffix(".json"), form)
        except Refused as err:
            self._error(err.status, err.message, wants_json)
            return
        except (ConfigError, ValueError) as err:
            message = err.message if isinstance(err, FerrymanError) else str(err)
            self._error(HTTPStatus.BAD_REQUEST, mask(message), wants_json)
            return
        log.info("web: %s", done, extra={"event": "web_action"})
        if wants_json:
            self._json({"ok": True, "done": done})
        else:
            back = form.get("back") or "/jobs"
            if not back.startswith("/") or back.startswith("//"):
                back = "/jobs"
            sep = "&" if "?" in back else "?"
            self._redirect(f"{back}{sep}{urlencode({'msg': done})}")

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            data = json.loads(raw or "{}")
            if not isinstance(data, dict):
                raise ValueError("the request body must be a JSON object")
            return {k: v if isinstance(v, str | dict) else str(v) for k, v in data.items()}  # type: ignore[misc]
        return {k: v[-1] for k, v in parse_qs(raw).items()}

    def _check_action(self, form: dict[str, Any]) -> None:
        gate = self.owner.gate
        if gate.bearer_ok(self.headers.get("Authorization")):
            return
        if not gate.session_ok(self._cookie()):
            raise Refused(
                HTTPStatus.FORBIDDEN,
                "refused: actions need the dashboard's token (log in, or send "
                "Authorization: Bearer TOKEN)",
            )
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "")
        if origin and origin != "null" and urlsplit(origin).netloc != host:
            raise Refused(HTTPStatus.FORBIDDEN, "refused: the request came from another site")
        if not gate.csrf_ok(str(form.get("csrf", ""))):
            raise Refused(
                HTTPStatus.FORBIDDEN, "refused: the form's CSRF field is missing or wrong"
            )

    def _login(self, form: dict[str, Any]) -> None:
        gate = self.owner.gate
        if not gate.token_ok(str(form.get("token", ""))):
            self._html("login.html", HTTPStatus.FORBIDDEN, failed=True)
            return
        cookie = f"{COOKIE}={gate.session}; Path=/; HttpOnly; SameSite=Strict"
        self._redirect("/jobs", cookie)


def _charts_svg(data: dict[str, Any]) -> dict[str, Any]:
    days = data["per_day"]
    return {
        "bytes": Markup(  # noqa: S704 - numbers and texts escaped by charts.py
            bar_chart("bytes moved per day", [(d["day"], d["bytes"]) for d in days], "bytes")
        ),
        "files": Markup(  # noqa: S704
            bar_chart(
                "files copied per day", [(d["day"], d["files"]) for d in days], "count", "#6a1b9a"
            )
        ),
        "durations": {
            job: Markup(duration_chart(f"run durations of {job}", runs))  # noqa: S704
            for job, runs in data["durations"].items()
        },
    }
