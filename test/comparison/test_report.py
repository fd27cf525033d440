"""The README's Results table reproduces: `comparison.report.markdown` turns the numbers shown in
the README back into exactly the README's text, byte for byte."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest

from pixood_ros import durable
from pixood_ros.comparison.report import (
    END_MARKER,
    OVERALL_COLUMNS,
    SPLIT_COLUMNS,
    START_MARKER,
    markdown,
    write_results,
)

README = Path(__file__).resolve().parents[2] / "README.md"
HEAD = re.compile(r"Produced by `(?P<command>.+)` on (?P<created>\S+): data `(?P<data>.+)`, "
                  r"engine ONNX Runtime \((?P<provider>.+)\)\.$")  # fmt: skip
SCOPE = re.compile(r"components: (?P<scored>.+)\. Components \(SMIYC rules, (?P<track>\w+)-track")
SECTION = re.compile(r"\*\*(?P<split>\w+)\*\* \((?P<frames>\d+) frames")


def _readme_block() -> str:
    text = README.read_text()
    if START_MARKER not in text:
        pytest.skip("the README has no benchmark section")
    return text.split(START_MARKER + "\n")[1].split(END_MARKER)[0]


def _rows(lines: list[str], columns: tuple) -> dict[str, dict[str, float | None]]:
    """The table starting at lines[0] (header) as {model: {key: value}}."""
    rows = {}
    for line in lines[2:]:
        if not line.startswith("| "):
            break
        name, *cells = [cell.strip() for cell in line.strip("|").split("|")]
        values = [None if cell == "n/a" else float(cell) for cell in cells]
        rows[name] = {key: value for (key, _, _), value in zip(columns, values, strict=True)}
    return rows


def _results_from(block: str) -> dict:
    """The results dict `pixood-benchmark` had when it wrote `block`, as far as the text shows."""
    lines = block.splitlines()
    head, scope = HEAD.match(lines[0]), SCOPE.search(lines[2])
    assert head and scope, "unexpected README benchmark header"
    model = {"provider": head["provider"], "scored_pixels": scope["scored"],
             "component_track": scope["track"]}  # fmt: skip
    results: dict = {"command": head["command"], "created": head["created"], "data": head["data"],
                     "models": {"first": model}, "splits": [], "results": {}}  # fmt: skip
    for index, line in enumerate(lines):
        section = SECTION.match(line)
        if section:
            rows = _rows(lines[index + 2 :], SPLIT_COLUMNS)
            for row in rows.values():
                row["frames"] = int(section["frames"])
            results["splits"].append(section["split"])
            results["results"][section["split"]] = rows
        elif line == "**All splits**":
            results["overall"] = _rows(lines[index + 2 :], OVERALL_COLUMNS)
        elif line == "Rows:":  # the legend of --reproduce's row names
            end = lines.index("", index) if "" in lines[index:] else len(lines)
            results["legend"] = lines[index:end]
    if "```" in block:
        results["chain"] = block.split("```\n")[1].split("\n```")[0].splitlines()
    return results


def test_readme_results_table_reproduces_byte_for_byte():
    block = _readme_block()
    assert markdown(_results_from(block)) == block


def test_missing_numbers_show_as_n_a_and_digits_follow_the_column():
    rows = {"m": {"ap": 0.12345, "fps": 61.26, "auroc": None, "frames": 3}}
    results = {"command": "c", "created": "t", "data": "d", "splits": ["s"],
               "models": {"m": {"provider": "CPU", "scored_pixels": "all", "component_track": "a"}},
               "results": {"s": rows}, "overall": {"m": {"mean_fps": 7.0}}}  # fmt: skip
    line = next(x for x in markdown(results).splitlines() if x.startswith("| m | 0.123"))
    assert line == "| m | 0.123 | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 61.3 |"
    assert "| m | n/a | n/a | n/a | n/a | n/a | n/a | 7.0 |" in markdown(results)


def _small_results() -> dict:
    model = {"provider": "CPU", "scored_pixels": "all", "component_track": "anomaly"}
    return {"created": "t", "data": "d", "splits": ["s"], "models": {"m": model},
            "results": {"s": {"m": {"frames": 1, "ap": 0.5}}}, "overall": {"m": {}}}  # fmt: skip


def test_result_files_replace_symlinks_and_survive_a_full_disk(tmp_path, monkeypatch):
    """benchmark.json/.md and the README replace a symlink instead of writing through it; a full
    disk leaves every earlier file as it was (no half-written JSON, no temporary left)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out, readme = tmp_path / "out", tmp_path / "README.md"
    out.mkdir()
    for link in (out / "benchmark.json", out / "benchmark.md", readme):
        link.symlink_to(victim)
    write_results(_small_results(), out, "pixood-benchmark x", readme=readme)
    assert victim.read_text() == "keep me"
    assert not readme.is_symlink() and readme.read_text().startswith("keep me\n\n## Benchmark")
    assert json.loads((out / "benchmark.json").read_text())["command"] == "pixood-benchmark x"
    assert (out / "benchmark.md").read_text().startswith("Produced by `pixood-benchmark x`")
    readme.unlink()
    readme.write_text("# Title\n")
    before = {p.name: p.read_bytes() for p in (out / "benchmark.json", out / "benchmark.md")}

    def disk_full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(durable, "fsync_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_results(_small_results(), out, "pixood-benchmark y", readme=readme)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert readme.read_text() == "# Title\n"
