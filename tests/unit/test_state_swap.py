"""state.json is replaced by exchanging files (renameat2), not by renaming over the old one."""

from __future__ import annotations

import os

from ociruntime.state import swap_in


def test_swap_in_replaces_an_existing_file_and_removes_the_temp(tmp_path):
    path, tmp = tmp_path / "state.json", tmp_path / ".state.json.tmp"
    path.write_text("old")
    inode_before = path.stat().st_ino
    tmp.write_text("new")
    new_inode = tmp.stat().st_ino
    swap_in(str(tmp), str(path))
    assert path.read_text() == "new"
    assert not tmp.exists()
    assert path.stat().st_ino == new_inode != inode_before


def test_swap_in_without_an_existing_file_renames(tmp_path):
    path, tmp = tmp_path / "state.json", tmp_path / ".state.json.tmp"
    tmp.write_text("first")
    swap_in(str(tmp), str(path))
    assert path.read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
