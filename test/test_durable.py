"""Result files are complete or absent, and never written through a symlink."""

from __future__ import annotations

import json
import os

import pytest

from pixood_ros import durable


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    durable.write_json(target, {"ap": 0.5})
    assert json.loads(target.read_text()) == {"ap": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(ValueError):
        durable.write_json(target, {"ap": float("nan")})  # not JSON
    with pytest.raises(RuntimeError), durable.replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "report.json"
    os.symlink(victim, link)
    dangling = tmp_path / "report.md"
    os.symlink(tmp_path / "nowhere" / "x", dangling)
    durable.write_text(link, "new")
    durable.write_text(dangling, "new")
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"
    assert not dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path):
    (tmp_path / f"{durable.TEMP_PREFIX}123_report.json").write_text("half")
    (tmp_path / "mine.txt").write_text("x")
    removed = durable.remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [f"{durable.TEMP_PREFIX}123_report.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
