"""Every option and positional of every `vlm-rl` subcommand is documented, and `vlm-rl --version` works."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib import metadata

import pytest

from vlm_rl.cli import build_parser, main


def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    """(command path, action) for every action of `parser` and of its subcommands, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"subcommand '{path} {name}' has no help"
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, action


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    return [
        f"{path} {'/'.join(action.option_strings) or action.dest}"
        for path, action in walk(parser, "vlm-rl")
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]


def test_walk_reaches_nested_subcommands():
    paths = {path for path, _ in walk(build_parser(), "vlm-rl")}
    assert {"vlm-rl make-data", "vlm-rl data invert-qa", "vlm-rl data show", "vlm-rl synth-server"} <= paths


def test_every_argument_has_help():
    assert undocumented(build_parser()) == []


def test_an_argument_without_help_is_reported():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["plot"].add_argument("--bare")
    assert undocumented(parser) == ["vlm-rl plot --bare"]


def test_help_strings_format():
    parser = build_parser()
    for _, action in walk(parser, "vlm-rl"):
        if action.help and action.help != argparse.SUPPRESS:
            parser._get_formatter()._expand_help(action)  # a stray % in a help string raises here


def test_version_prints_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"vlm-rl {metadata.version('vlm-rl')}\n"
