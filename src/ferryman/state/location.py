"""Where the state file lives, and creating it (and its directories) private to the user.

The state file holds run history (variables, paths, host names) and the only-new ledger: it is
nobody else's business, so directories ferryman creates for it are ``0700`` and the file itself
``0600`` whatever the umask. Directories that already exist are left as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

__all__ = ["ENV_VAR", "ensure_private_dir", "ensure_private_file", "state_path"]

#: Environment variable naming the state file when the job does not configure one.
ENV_VAR = "FERRYMAN_STATE"

_DIR_MODE = 0o700
_FILE_MODE = 0o600


def state_path(job_file: Path | None, configured: Path | None) -> Path:
    """The state file of a job.

    In order: ``configured`` (the job's ``state:``; a relative path is relative to the job
    file's directory, like every local path in a job), else ``$FERRYMAN_STATE`` (relative to
    the working directory), else ``$XDG_DATA_HOME/ferryman/state.db`` (XDG: an unset, empty or
    relative ``XDG_DATA_HOME`` means ``~/.local/share``). ``~`` is expanded everywhere. Nothing
    is created here; :class:`~ferryman.state.StateStore` does that when it opens the file.
    """
    if configured is not None:
        path = Path(configured).expanduser()
        if not path.is_absolute():
            base = job_file.parent if job_file is not None else Path.cwd()
            path = base / path
        return _absolute(path)
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return _absolute(Path(from_env).expanduser())
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    data_home = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local/share"
    return _absolute(data_home / "ferryman" / "state.db")


def _absolute(path: Path) -> Path:
    return path if path.is_absolute() else Path.cwd() / path


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode ``0700`` (not masked by umask).

    Raises :class:`ConfigError` naming the directory when it cannot be created.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, _DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by another process: fine, leave its mode alone
        except OSError as err:
            raise ConfigError(
                f"cannot create the state directory {path}: {err.strerror or err}",
                hint="create it yourself, fix its parent's permissions, or configure another "
                f"state file (the job's `state:` or ${ENV_VAR})",
            ) from None
        os.chmod(path, _DIR_MODE)
    if not directory.is_dir():
        raise ConfigError(
            f"the state directory {directory} exists but is not a directory",
            hint=f"move it away or configure another state file (the job's `state:` or ${ENV_VAR})",
        )


def ensure_private_file(path: Path) -> None:
    """Create ``path`` empty with mode ``0600`` unless it exists (an existing file is kept)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:
        if path.is_dir():
            raise ConfigError(
                f"the state file {path} is a directory",
                hint=f"configure a file name (the job's `state:` or ${ENV_VAR}), e.g. .../state.db",
            ) from None
        return
    except OSError as err:
        raise ConfigError(
            f"cannot create the state file {path}: {err.strerror or err}",
            hint="check the directory's permissions and free space, or configure another "
            f"state file (the job's `state:` or ${ENV_VAR})",
        ) from None
    try:
        os.fchmod(fd, _FILE_MODE)
    finally:
        os.close(fd)
