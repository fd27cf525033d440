"""pixood-bag-eval as a careless or hostile user meets it: Ctrl-C and SIGTERM mid-run, a full
disk, a read-only output folder, killed runs' temporary files, swapped or foreign arguments,
invalid ROS names and symbolic links among the outputs. Each ends in one line and the exit code
the README promises, with a partial report and a readable output bag where one can be kept."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest
from rosbags.rosbag2 import Writer
from test_bag_eval import COMMON, bag_from, load_report, make_frames, read_all, run

from pixood_ros import image_conversion
from pixood_ros.bag import live, report
from pixood_ros.bag.live_player import Tally
from pixood_ros.bag.output_bag import OUTPUT_NAMES, OutputBag
from pixood_ros.bag.output_codec import stored_form
from pixood_ros.bag.ros_names import name_problem

FRAMES = 5


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from model_fixtures import make_handmade_model

    return make_handmade_model(tmp_path_factory.mktemp("model") / "handmade.onnx")


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return bag_from(make_frames(FRAMES), tmp_path_factory.mktemp("bag") / "bag")


def temporaries(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.startswith(".pixood_")]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def fail_on_call(monkeypatch, owner, name: str, call: int, action) -> None:
    """Make the `call`-th call of owner.name do `action()` (a signal, an exception) first."""
    original = getattr(owner, name)
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            action()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


def raise_(exc: BaseException):
    def action():
        raise exc

    return action


def send(signum: int):
    return lambda: os.kill(os.getpid(), signum)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_keeps_a_partial_report_and_a_readable_bag(
    tmp_path, capsys, monkeypatch, model, bag, signum, code
):
    previous = signal.getsignal(signal.SIGTERM)
    fail_on_call(monkeypatch, image_conversion, "message_to_rgb", 3, send(signum))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == code
    line = one_line(err)
    assert "partial report written" in line and "after 3 frames" in line
    rep = load_report(out)
    assert rep["partial"] is True and rep["frames"]["evaluated"] == 2
    assert rep["metrics"]["pixel"]["frames"] == 2 and rep["metrics"]["components"]["siou"] >= 0
    assert "PARTIAL" in (out / "report.md").read_text()
    _, messages = read_all(out / "output_bag")
    topics = [stored_form(name, raw=False)[0] for name in OUTPUT_NAMES]
    assert all(len(messages[f"/pixood_node/{topic}"]) == 2 for topic in topics)
    assert temporaries(out) == []
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored after the command


def test_signal_inside_a_frame_write_waits_for_the_frame(tmp_path, capsys, monkeypatch, model, bag):
    # 2nd frame, 3rd of its six messages: the bag must still hold whole frames only. The
    # writing runs in a worker thread while the main thread reads ahead, and the frames read
    # before the signal are finished, so the bag holds 2 or more whole frames, as many as the
    # report evaluated.
    fail_on_call(monkeypatch, Writer, "write", 9, send(signal.SIGTERM))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 143 and "terminated (SIGTERM)" in one_line(err)
    types, messages = read_all(out / "output_bag")
    counts = {len(messages[topic]) for topic in types}
    evaluated = load_report(out)["frames"]["evaluated"]
    assert counts == {evaluated} and evaluated >= 2


def test_signal_after_the_last_frame_waits_for_the_report(
    tmp_path, capsys, monkeypatch, model, bag
):
    fail_on_call(monkeypatch, report, "write_plots", 1, send(signal.SIGTERM))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 143 and "terminated (SIGTERM)" in one_line(err)
    rep = load_report(out)
    assert rep["partial"] is False and rep["frames"]["evaluated"] == FRAMES
    assert temporaries(out) == []


def test_full_disk_in_the_loop_and_at_close(tmp_path, capsys, monkeypatch, model, bag):
    full = OSError(errno.ENOSPC, "No space left on device")
    fail_on_call(monkeypatch, OutputBag, "write", 3, raise_(full))
    fail_on_call(monkeypatch, Writer, "close", 1, raise_(full))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 1
    line = one_line(err)
    assert "partial report written" in line and "No space left on device" in line
    assert "stopped at frame 3" in line  # the first error, not the one from closing
    rep = load_report(out)
    assert rep["partial"] is True and rep["frames"]["evaluated"] == 2
    assert "could not be finished" in rep["outputs"]["output_bag_error"]
    assert not (out / "output_bag").exists()  # unreadable without its index: removed
    assert temporaries(out) == []


def test_full_disk_when_closing_the_bag_only(tmp_path, capsys, monkeypatch, model, bag):
    fail_on_call(monkeypatch, Writer, "close", 1, raise_(OSError(errno.ENOSPC, "No space")))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 1 and "output bag could not be finished" in one_line(err)
    rep = load_report(out)
    assert rep["partial"] is True and rep["frames"]["evaluated"] == FRAMES


def test_full_disk_when_writing_the_report(tmp_path, capsys, monkeypatch, model, bag):
    fail_on_call(monkeypatch, report, "write_json", 1, raise_(OSError(errno.ENOSPC, "No space")))
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 1 and "No space" in one_line(err)
    assert temporaries(out) == []


def test_output_folder_that_cannot_be_created(tmp_path, capsys, monkeypatch, model, bag):
    fail_on_call(
        monkeypatch, Path, "mkdir", 1, raise_(OSError(errno.EROFS, "Read-only file system"))
    )
    rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out", *COMMON)
    assert rc == 2 and "cannot create output folder" in one_line(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path, capsys, model, bag):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    rc, _, err = run(capsys, model, bag, "-o", locked / "out", *COMMON)
    assert rc == 2 and "cannot create output folder" in one_line(err)
    rc, _, err = run(capsys, model, bag, "-o", locked, *COMMON)
    assert rc == 2 and "is not writable" in one_line(err)


def test_stale_score_files_are_removed_but_not_a_running_ones(tmp_path, capsys, model, bag):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".pixood_scores_x"
    stale.mkdir()
    (stale / "scores.bin").write_bytes(b"\0" * 100)
    (out / ".pixood_tmp_1_report.json").write_text("{")
    running = out / f".pixood_scores_{os.getppid()}_abc"  # a live process: another run
    running.mkdir()
    assert run(capsys, model, bag, "-o", out, *COMMON)[0] == 0
    assert temporaries(out) == [running.name]


BAD_NAMES = ["../../evil", "a//b", "/a/", "/1abc", "", "a b", "~/x"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_ros_namespaces_are_refused(tmp_path, capsys, model, bag, name):
    for option in ("--output-ns", "--node-ns"):
        rc, _, err = run(capsys, model, bag, "-o", tmp_path / "out", option, name, *COMMON)
        assert rc == 2 and "is not a valid ROS 2 namespace" in one_line(err)
    assert not (tmp_path / "out").exists()


def test_valid_ros_names():
    for name in ["/", "/pixood_node", "robot_1/pixood", "/a/b_c/D9"]:
        assert name_problem(name, namespace=True) is None
    assert name_problem("/", namespace=False) is not None


def test_user_mistakes_are_one_line_exit_2(tmp_path, capsys, model, bag):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    fake_mcap = tmp_path / "fake.mcap"
    fake_mcap.write_bytes(b"not mcap at all")
    out = tmp_path / "out"
    cases = [
        ([bag, model], "MODEL and BAG are swapped"),
        ([bag, bag], f"MODEL {bag} is a rosbag2 bag, not an ONNX model"),
        ([model, model], f"BAG {model} is an ONNX model, not a rosbag2 bag"),
        ([model, junk], f"{junk} is not a rosbag2 bag"),
        ([model, fake_mcap], f"{fake_mcap} is not a rosbag2 bag"),
        ([tmp_path, bag], f"MODEL {tmp_path} is a directory, expected an ONNX file"),
        ([model, bag, "--stamp-tolerance", "nan"], "must be a finite number"),
        ([model, bag, "--stamp-tolerance", "inf"], "must be a finite number"),
        ([model, bag, "--stamp-tolerance", "-1"], "must be >= 0"),
        ([model, bag, "--live", "--rate", "nan"], "--rate: must be a finite number"),
        ([model, bag, "--live", "--timeout", "0"], "--timeout: must be > 0"),
    ]
    for args, expected in cases:
        rc, _, err = run(capsys, *args, "-o", out, *COMMON)
        assert rc == 2 and expected in one_line(err), (args, err)
    assert not out.exists()


def test_outputs_are_never_followed_through_symlinks(tmp_path, capsys, model, bag):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "output_bag").symlink_to(elsewhere, target_is_directory=True)
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON, "--overwrite")
    assert rc == 2 and "output_bag is a symbolic link; not replacing it" in one_line(err)
    (out / "output_bag").unlink()
    target = tmp_path / "target.json"
    (out / "report.json").symlink_to(target)  # dangling
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON)
    assert rc == 2 and "already exists" in one_line(err)
    rc, _, err = run(capsys, model, bag, "-o", out, *COMMON, "--overwrite")
    assert rc == 2 and "symbolic link" in one_line(err)
    (out / "report.json").unlink()
    (out / "report.md").symlink_to(tmp_path / "target.md")  # not a guarded name: replaced
    assert run(capsys, model, bag, "-o", out, *COMMON)[0] == 0
    assert not target.exists() and not (tmp_path / "target.md").exists()
    assert not (out / "report.md").is_symlink() and "complete" in (out / "report.md").read_text()
    assert os.listdir(elsewhere) == []


class FakePlayer:
    """A node that answers nothing; Ctrl-C arrives while the 3rd frame is published."""

    def __init__(self, *args) -> None:
        self.tally = Tally()
        self.published = 0

    @staticmethod
    def check_available() -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def wait_for_node(self, timeout) -> None:
        pass

    def expected_outputs(self) -> set[str]:
        return {"anomaly_score"}

    def probe(self, *args) -> None:
        pass

    def publish(self, stamp_ns, raw) -> None:
        self.published += 1
        if self.published == 3:
            raise KeyboardInterrupt

    def wait_for_outputs(self, *args) -> None:
        pass


def test_live_replay_interrupted_keeps_a_partial_report(tmp_path, capsys, monkeypatch, model, bag):
    monkeypatch.setattr(live, "Player", FakePlayer)
    out = tmp_path / "out"
    rc, _, err = run(capsys, model, bag, "-o", out, "--live", "--rate", "1000", *COMMON)
    assert rc == 130 and "interrupted (Ctrl-C) after 2 frames" in one_line(err)
    rep = load_report(out)
    assert rep["partial"] is True and rep["frames"]["published"] == 2
    assert temporaries(out) == []
