"""Every subcommand parses ``--help``; the same target flags on every command
that runs a backend; bad input stops before anything runs, with exit code 2
and the valid values."""

from __future__ import annotations

import argparse

import pytest

from leaklab.cli import COMMANDS, build_parser, main

TARGET_FLAGS = {"--target", "--app-dir", "--target-file", "--faults", "--option", "--watch", "--step-timeout", "--runs-dir"}
#: Options each subcommand has besides the target flags (its --help lists them).
OWN_FLAGS = {
    "serve": {"--faults", "--option", "--port", "--verbose"},
    "run": {"--scenario", "--cycles", "--settle", "--timeline", "--tracemalloc", "--no-collect", "--json"},
    "why": {"--scenario", "--cycles", "--json"},
    "checklist": {"--items", "--jobs", "--hunt", "--scenario", "--json"},
    "hunt": {"--budget", "--cycles", "--sequences", "--scenario", "--json"},
    "compare": {"--against", "--items", "--scenario", "--hunt", "--cycles", "--jobs", "--timeline", "--json"},
    "record": {"--output", "--force", "--browser", "--headless", "--script", "--wait-threshold", "--json"},
    "report": {"--cycles", "--out", "--jobs", "--against", "--notebooks"},
    "notebooks": {"--force"},
}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _flags(parser: argparse.ArgumentParser, command: str) -> set[str]:
    return {s for a in _subparsers(parser)[command]._actions for s in a.option_strings}


def test_every_command_module_is_a_subcommand():
    assert list(_subparsers(build_parser())) == [c.__name__.rpartition(".")[2] for c in COMMANDS] == list(OWN_FLAGS)


@pytest.mark.parametrize("command", ["", *OWN_FLAGS])
def test_every_subcommand_parses_help_and_lists_its_options(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: leaklab {command}".rstrip())
    expected = OWN_FLAGS.get(command, set()) | (TARGET_FLAGS if command not in ("", "serve", "notebooks") else set())
    missing = {flag for flag in expected if flag not in out}
    assert not missing, out
    if not command:
        assert all(name in out for name in OWN_FLAGS)


@pytest.mark.parametrize("command", ["run", "why", "checklist", "hunt", "compare", "record", "report"])
def test_every_backend_command_takes_the_same_target_flags(command):
    assert TARGET_FLAGS <= _flags(build_parser(), command)


@pytest.mark.parametrize("args, message", [
    (["--target", "nope"], "unknown target 'nope'; valid: reference"),
    (["--scenario", "nope"], "unknown scenario 'nope'; valid: open-close, chat"),
    (["--faults", "C99"], "unknown fault 'C99'; valid: C1"),
    (["--target", "tests.no_such_module:app"], "cannot import module 'tests.no_such_module'"),
])
def test_cli_bad_input_lists_valid_values(args, message, capsys):
    # GIVEN `leaklab run` with one bad value (in this process: the exit code
    # of the console script is main()'s, see test_serve.py for a process's)
    # WHEN it starts THEN it stops before running, with exit code 2 and the valid values
    try:
        code = main(["run", "--cycles", "1", *args])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err


@pytest.mark.parametrize("args, message", [
    (["run", "--cycles", "0"], "--cycles must be at least 1"),
    (["why", "--cycles", "0"], "--cycles must be at least 1"),
    (["checklist", "--items", "C10"], "unknown checklist item 'C10'; valid: C1"),
    (["checklist", "--jobs", "0"], "--jobs must be at least 1"),
    (["hunt", "--budget", "0"], "--budget must be a positive number of seconds"),
    (["hunt", "--sequences", "nope"], "unknown scenario 'nope'"),
    (["run", "--step-timeout", "0"], "--step-timeout must be a positive number of seconds"),
    (["compare", "--against", "HEAD", "--jobs", "0"], "--jobs must be at least 1"),
    (["serve", "--faults", "C10"], "unknown fault 'C10'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("leaklab: error: ") and message in err and err.count("\n") == 1, err


def test_report_cli_validates_before_running(capsys):
    assert main(["report", "--cycles", "0"]) == 2
    assert "--cycles must be at least 1" in capsys.readouterr().err
    assert main(["report", "--target", "nonsense"]) == 2
    assert "unknown target 'nonsense'" in capsys.readouterr().err


def test_the_reference_has_nothing_to_compare_against_from_the_command_line(capsys):
    assert main(["compare", "--against", "HEAD"]) == 2
    assert "compares your code with another version" in capsys.readouterr().err
    assert main(["report", "--against", "HEAD", "--out", "unused"]) == 2
    assert "compares your code with another version" in capsys.readouterr().err
