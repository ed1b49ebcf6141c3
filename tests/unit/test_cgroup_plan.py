"""CgroupManager.plan(): the directories create() will make are known (and written into the
state) before any mkdir; create() corrects the record when another process made one first.
Plain directories stand in for a v1 hierarchy here: plan and mkdir only walk paths."""

from __future__ import annotations

from pathlib import Path

from ociruntime.cgroups.manager import CgroupManager


def test_plan_records_missing_directories_outermost_first(tmp_path: Path) -> None:
    leaf = tmp_path / "a" / "b" / "c"
    (tmp_path / "a").mkdir()
    manager = CgroupManager({"cpu": str(leaf)})
    manager.plan()
    assert manager.created == [str(tmp_path / "a" / "b"), str(leaf)]
    assert not leaf.exists()
    assert manager.create() is False
    assert leaf.is_dir()
    manager.destroy()
    assert not (tmp_path / "a" / "b").exists() and (tmp_path / "a").is_dir()


def test_create_drops_a_planned_directory_another_process_made(tmp_path: Path) -> None:
    leaf = tmp_path / "a" / "b"
    manager = CgroupManager({"cpu": str(leaf)})
    manager.plan()
    (tmp_path / "a").mkdir()  # made by someone else between plan and create
    assert manager.create() is True
    assert manager.created == [str(leaf)]
    manager.destroy()
    assert (tmp_path / "a").is_dir()


def test_shared_parent_stays_recorded_though_it_exists(tmp_path: Path) -> None:
    (tmp_path / "pyrunc").mkdir()
    leaf = tmp_path / "pyrunc" / "c1"
    manager = CgroupManager({"cpu": str(leaf)}, shared_parent=True)
    manager.plan()
    assert manager.created == [str(tmp_path / "pyrunc"), str(leaf)]
    assert manager.create() is False
    manager.destroy()
    assert not (tmp_path / "pyrunc").exists()
