"""How `vigil … --help` reads: each subcommand opens with its purpose, each option shows its default."""
from __future__ import annotations

import argparse


class HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option whose help does not already say its default; nothing for a flag
    (off unless given) or an option without a value of its own (None: the help says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text or not action.option_strings or action.nargs == 0
                or default is None or default is argparse.SUPPRESS or default == []):
            return text
        return f"{text} (default: %(default)s)"


def finish(parser: argparse.ArgumentParser, subparsers: argparse._SubParsersAction) -> None:
    """Every subcommand: this formatter, and its one-line purpose (the help in `vigil --help`) on top."""
    parser.formatter_class = HelpFormatter
    purposes = {a.dest: a.help for a in subparsers._choices_actions}
    for name, command in subparsers.choices.items():
        command.formatter_class = HelpFormatter
        if not command.description:
            command.description = purposes.get(name)
