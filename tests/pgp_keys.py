"""OpenPGP keys for the tests, made by the real ``gpg`` once per session; no key servers.

Three parties, each with a key ring (a GNUPGHOME) of its own:

- ``ours``: ferryman's side (the job's ``gnupg_home``): our secret key, protected by
  :data:`PASSPHRASE`, and the public keys of the partner and the stranger;
- ``partner``: the partner's own gpg: its secret key (no passphrase) and our public key;
- ``stranger``: somebody else: its secret key and our public key;
- ``unknown``: somebody whose public key our key ring lacks (it has ours).

Each key is ed25519 (signing) with a cv25519 subkey (encryption): quick to make. The agents
cache no passphrase (``max-cache-ttl 0``), so a wrong one is always noticed. At the end of
the session each home's agent -- started by these tests -- is stopped with ``gpgconf``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PASSPHRASE", "Party", "PgpKeys", "gpg", "pgp_keys"]

PASSPHRASE = "test-only pgp passphrase"  # TEST-ONLY


def gpg(home: Path, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
    """Run the real gpg on ``home`` (the partner's side of the interoperability tests)."""
    done = subprocess.run(
        ["gpg", "--batch", "--no-tty", "--homedir", str(home), "--trust-model", "always", *args],
        input=input,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"gpg {args} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


@dataclass(frozen=True)
class Party:
    name: str
    home: Path
    fingerprint: str
    email: str


@dataclass(frozen=True)
class PgpKeys:
    ours: Party
    partner: Party
    stranger: Party
    unknown: Party


def _home(base: Path, name: str) -> Path:
    home = base / name
    home.mkdir(mode=0o700)
    (home / "gpg-agent.conf").write_text("default-cache-ttl 0\nmax-cache-ttl 0\n")
    return home


def _make(base: Path, name: str, passphrase: str) -> Party:
    home = _home(base, name)
    email = f"{name}@example.org"
    pinentry = ["--pinentry-mode", "loopback", "--passphrase", passphrase]
    gpg(home, *pinentry, "--quick-gen-key", f"{name.title()} <{email}>", "ed25519", "sign", "never")
    listing = gpg(home, "--with-colons", "--list-keys", email).decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:3] == "fpr")
    gpg(home, *pinentry, "--quick-add-key", fingerprint, "cv25519", "encr", "never")
    return Party(name, home, fingerprint, email)


def _share(one: Party, other: Party) -> None:
    """``other`` gets ``one``'s public key."""
    gpg(other.home, "--import", input=gpg(one.home, "--export", one.fingerprint))


@pytest.fixture(scope="session")
def pgp_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgpKeys]:
    if shutil.which("gpg") is None and not os.environ.get("FERRYMAN_ALLOW_SKIP"):
        raise RuntimeError("gpg is missing: run scripts/install-test-servers.sh")
    if shutil.which("gpg") is None:
        pytest.skip("gpg is missing (FERRYMAN_ALLOW_SKIP)")
    base = tmp_path_factory.mktemp("gpg")
    ours = _make(base, "ours", PASSPHRASE)
    partner = _make(base, "partner", "")
    stranger = _make(base, "stranger", "")
    unknown = _make(base, "unknown", "")
    for one, other in ((partner, ours), (stranger, ours), (ours, partner), (ours, stranger)):
        _share(one, other)
    _share(ours, unknown)
    _share(stranger, partner)  # the partner can encrypt to somebody else than us
    try:
        yield PgpKeys(ours, partner, stranger, unknown)
    finally:
        for party in (ours, partner, stranger, unknown):
            subprocess.run(
                ["gpgconf", "--homedir", str(party.home), "--kill", "gpg-agent"],
                capture_output=True,
                timeout=30,
                check=False,
            )
