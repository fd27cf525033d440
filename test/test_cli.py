"""The command-line contract every command shares: one line on stderr, exit 2 for mistakes,
1 for failures, 130 for Ctrl-C; `--help` exits 0."""

from __future__ import annotations

import argparse
import errno

import pytest

from pixood_ros import cli


def _parser() -> cli.OneLineParser:
    parser = cli.OneLineParser(prog="pixood-x", parents=[cli.progress_parent()])
    parser.add_argument("--n", type=cli.positive_int, default=1)
    parser.add_argument("--t", type=cli.unit_interval, default=0.5)
    return parser


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--n", "0"], "must be >= 1"),
        (["--n", "x"], "not a whole number"),
        (["--t", "nan"], "finite"),
        (["--t", "1.5"], "[0, 1]"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(capsys, argv, needle):
    assert cli.run_parsed("pixood-x", _parser(), argv, lambda args: 0) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("pixood-x: error: ") and err.count("\n") == 1 and needle in err


def test_help_exits_0_and_the_body_sees_typed_options(capsys):
    assert cli.run_parsed("pixood-x", _parser(), ["--help"], lambda args: 1) == 0
    seen = {}
    assert cli.run_parsed("pixood-x", _parser(), ["--n", "3"], lambda a: seen.update(vars(a))) == 0
    assert seen == {"n": 3, "t": 0.5, "no_progress": False}


@pytest.mark.parametrize(
    "error, code, needle",
    [
        (cli.UserError("bad input\nsecond line"), cli.EXIT_USAGE, "bad input"),
        (OSError(errno.ENOSPC, "No space left on device"), cli.EXIT_FAILED, "No space left"),
        (KeyboardInterrupt(), cli.EXIT_INTERRUPTED, "interrupted"),
    ],
)
def test_errors_of_the_body_become_one_line(capsys, error, code, needle):
    def body():
        raise error

    assert cli.run_command("pixood-x", body) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_one_line_takes_the_message_of_a_worker_traceback():
    exc = RuntimeError(
        "Caught DatasetError in DataLoader worker process 0.\n"
        "Original Traceback (most recent call last):\n  File ...\n"
        "pixood_training.data.datasets.DatasetError: label file a.png has values [40]"
    )
    assert cli.one_line(exc) == "label file a.png has values [40]"
    assert cli.one_line(ValueError("")) == "ValueError"


def test_options_from_takes_the_fields_of_the_dataclass():
    import dataclasses

    @dataclasses.dataclass
    class Options:
        n: int
        t: float = 0.0

    args = argparse.Namespace(n=2, t=0.3, unrelated=True)
    assert cli.options_from(Options, args, t=0.9) == Options(n=2, t=0.9)
