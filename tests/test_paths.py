"""Where server-supplied names may land on the local disk (paths.LocalDestination)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferryman.errors import ProtocolError
from ferryman.paths import LocalDestination, safe_local_path


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A destination with a real sub-directory, and a directory outside it."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    (dest / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "victim.txt").write_text("keep")
    return dest, outside


def test_plain_names_land_under_the_destination(tree: tuple[Path, Path]) -> None:
    dest, _ = tree
    inside = LocalDestination(dest)
    root = dest.resolve()
    assert inside.path("a.csv") == root / "a.csv"
    assert inside.path("sub/b.csv") == root / "sub" / "b.csv"
    assert inside.path("new/deeper/c.csv") == root / "new" / "deeper" / "c.csv"  # not made yet
    assert inside.path("sub/d.csv") == safe_local_path(dest, "sub/d.csv")


@pytest.mark.parametrize(
    "relative", ["../x", "sub/../../x", "/etc/passwd", "a\\b", "C:x", "sub/\x1b[2J", "", "sub/."]
)
def test_hostile_parts_are_refused(tree: tuple[Path, Path], relative: str) -> None:
    with pytest.raises(ProtocolError, match="refusing server-supplied name"):
        LocalDestination(tree[0]).path(relative)


def test_a_directory_link_leading_outside_is_refused(tree: tuple[Path, Path]) -> None:
    dest, outside = tree
    (dest / "escape").symlink_to(outside)
    inside = LocalDestination(dest)
    for _ in range(2):  # the second time from the cache of resolved directories
        with pytest.raises(ProtocolError, match="resolves outside the destination"):
            inside.path("escape/victim.txt")
    assert inside.path("sub/ok.txt") == dest.resolve() / "sub" / "ok.txt"


def test_a_file_link_leading_outside_is_refused_one_inside_is_not(tree: tuple[Path, Path]) -> None:
    dest, outside = tree
    (dest / "sub" / "out.txt").symlink_to(outside / "victim.txt")
    (dest / "sub" / "in.txt").symlink_to(dest / "sub" / "real.txt")
    (dest / "sub" / "root").symlink_to(dest)
    inside = LocalDestination(dest)
    with pytest.raises(ProtocolError, match="resolves outside the destination"):
        inside.path("sub/out.txt")
    with pytest.raises(ProtocolError, match="resolves outside the destination"):
        inside.path("sub/root")  # the destination itself is no file to write
    assert inside.path("sub/in.txt") == dest.resolve() / "sub" / "in.txt"
    assert (outside / "victim.txt").read_text() == "keep"
