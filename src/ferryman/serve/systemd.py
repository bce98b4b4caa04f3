"""systemd: the unit ``ferryman serve --print-systemd-unit`` prints, and readiness messages.

The unit is ``Type=notify``: serve tells systemd it is ready once its jobs are loaded, when it
reloads and when it stops (``sd_notify``: a datagram to ``$NOTIFY_SOCKET``, stdlib only;
without the variable -- outside systemd, in a container -- nothing is sent).
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from pathlib import Path

__all__ = ["sd_notify", "systemd_unit"]


def sd_notify(message: str) -> bool:
    """Send ``message`` (``READY=1``, ``RELOADING=1``, ``STOPPING=1``) to systemd, if it
    listens; True when sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError:
        return False
    return True


def _ferryman() -> str:
    """The ferryman executable beside this Python, else ``python -m ferryman``."""
    script = Path(sys.executable).parent / "ferryman"
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m ferryman"


def systemd_unit(arguments: list[str], user: str | None, grace: float) -> str:
    """A unit file running ``ferryman serve ARGUMENTS`` (paths made absolute)."""
    command = " ".join([_ferryman(), "serve", *(shlex.quote(a) for a in arguments)])
    who = f"User={user}\n" if user else "# User=ferryman   (run it as a user of its own)\n"
    return f"""\
# ferryman serve: jobs on schedules and arriving files (docs/serve.md)
# Install: save as /etc/systemd/system/ferryman.service, then
#   systemctl daemon-reload && systemctl enable --now ferryman
# Reload job files: systemctl reload ferryman (SIGHUP); logs: journalctl -u ferryman
[Unit]
Description=ferryman serve (scheduled file transfers)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
{who}ExecStart={command} --log-format json
ExecReload=/bin/kill -HUP $MAINPID
# SIGTERM: no new runs; running steps get {grace:g} s to finish, then are interrupted
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={int(grace) + 30}
Restart=on-failure
RestartSec=10
# passwords: an EnvironmentFile readable by root only (password_env: in the jobs)
# EnvironmentFile=/etc/ferryman/secrets.env
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""
