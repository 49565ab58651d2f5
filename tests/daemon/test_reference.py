"""One source for every list: the default config file, the docs' tables of keys and commands
and the CLI's help are made from the models, and a committed copy that drifts fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from personalizer.commands.payloads import COMMAND_NAMES, PAYLOADS
from personalizer.commands.reference import PAGE_COMMANDS, commands_help
from personalizer.config.models import SECTIONS
from personalizer.reference import expected
from personalizer.web.app import WEB_COMMANDS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(expected(REPO)), ids=lambda p: p.name)
def test_the_generated_files_match_the_models(path: Path) -> None:
    assert path.read_text() == expected(REPO)[path], (
        f"{path.relative_to(REPO)} differs from what the models say: run `make reference`"
    )


def test_every_key_and_command_is_described() -> None:
    for name, model in SECTIONS.items():
        for key, info in model.model_fields.items():
            assert info.description, f"[{name}] {key} has no description"
    for name, model in PAYLOADS.items():
        assert model.__doc__ and model.payload and model.answer and model.short, name


def test_the_lists_of_commands_come_from_the_payload_models() -> None:
    document = tomllib.loads((REPO / "config/personalizer.toml").read_text())
    assert document["mqtt"]["commands"] is True
    shipped = (REPO / "config/personalizer.toml").read_text()
    assert ", ".join(COMMAND_NAMES) in " ".join(shipped.replace("#", "").split())
    assert WEB_COMMANDS == PAGE_COMMANDS and set(PAGE_COMMANDS) < set(COMMAND_NAMES)
    help_text = commands_help()
    assert all(f"  {name} " in help_text for name in COMMAND_NAMES)
