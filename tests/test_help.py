"""`vigil <command> --help`: every subcommand says what it is for, every option what it means and its
default (tests walk the real parser, so a new option without help fails here)."""
from __future__ import annotations

import argparse

import pytest

from app.cli import build_parser
from app.cli_help import HelpFormatter

PARSER = build_parser()
SUBCOMMANDS = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, (argparse._HelpAction,
                                                                                  argparse._VersionAction))]


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_opens_with_its_purpose(name):
    parser = SUBCOMMANDS[name]
    assert parser.description and len(parser.description.splitlines()) == 1, name
    assert parser.format_help().split("\n\n")[1].replace("\n", " ").startswith(parser.description[:30])


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_option_has_help_and_shows_its_default(name):
    parser = SUBCOMMANDS[name]
    formatter = parser._get_formatter()
    for action in options(parser):
        flag = action.option_strings[-1]
        if action.help == argparse.SUPPRESS:
            continue  # hidden on purpose (quantize --min-images, a test knob)
        assert action.help and action.help.strip(), f"vigil {name} {flag}: no help"
        shown = formatter._expand_help(action)
        if action.nargs == 0 or action.required:
            continue  # a flag is off unless given; a required option has no default
        assert "default" in shown, f"vigil {name} {flag}: help shows no default: {shown!r}"
        if action.default not in (None, [], argparse.SUPPRESS) and "%(default)" not in (action.help or ""):
            assert "default" in action.help or str(action.default) in shown, f"vigil {name} {flag}: {shown!r}"
    assert "(default: None)" not in parser.format_help()


def test_bench_offers_no_outputs_a_benchmark_has_no_use_for():
    flags = {s for a in options(SUBCOMMANDS["bench"]) for s in a.option_strings}
    assert not flags & {"--mqtt", "--api", "--save-video"}
    run = {s for a in options(SUBCOMMANDS["run"]) for s in a.option_strings}
    assert {"--mqtt", "--api", "--save-video"} <= run
    assert flags - {"--invokes", "--baseline"} <= run  # the rest as `vigil run` has them


def test_the_formatter_shows_a_default_the_help_does_not_name():
    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    p.add_argument("--n", type=int, default=7, help="how many")
    p.add_argument("--given", default="x", help="named (default: the x one)")
    p.add_argument("--flag", action="store_true", help="a flag")
    text = p.format_help()
    assert "how many (default: 7)" in " ".join(text.split())
    assert "(default: x)" not in text and "(default: False)" not in text
