"""Helpers shared by the command modules: the repository, config and ledger of the current directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from agentflow.config import Config
    from agentflow.configfile import ConfigView
    from agentflow.git import Repo
    from agentflow.ledger import Ledger


def repo() -> Repo:
    from agentflow.git import Repo

    return Repo.find(Path.cwd())


def config(root: Path) -> Config:
    from agentflow.config import load_config

    return load_config(root)


def config_view(root: Path) -> ConfigView | Config:
    """The config for a command that only reads it (no pydantic when it is plainly valid)."""
    from agentflow.configfile import load_config_view

    return load_config_view(root)


def ledger(root: Path) -> Ledger:
    from agentflow.ledger import Ledger

    return Ledger.open(root)


def require_writable_ledger(root: Path) -> None:
    """Exit 2 now when the repository's ledger exists and cannot be written: before a command changes
    anything (a merge, plan files), not after, when the event recording it fails. No ledger: nothing
    is made (the command makes it when it records)."""
    from agentflow.ledger import Ledger, ledger_path

    if ledger_path(root).exists():
        with Ledger.open(root) as opened:
            opened.require_writable()


def out(text: str = "") -> None:
    from agentflow.text import terminal_text  # model and change text: shown, never interpreted

    typer.echo(terminal_text(text))


def err(text: str) -> None:
    from agentflow.text import terminal_text

    typer.echo(terminal_text(text), err=True)


def exit_with(code: int) -> None:
    if code:
        raise typer.Exit(code)


def write_output(text: str, output: Path | None) -> None:
    """Print ``text`` or write it to ``output`` (creating parent folders)."""
    from agentflow.fastcli import write_output as write  # one implementation, typer-free

    write(text, output)
