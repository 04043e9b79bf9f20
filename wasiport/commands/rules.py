"""`wasiport rules` (being written)."""
from __future__ import annotations

import argparse

from wasiport.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rules", help="(in progress)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UserError("`wasiport rules` is not implemented yet")
