"""The one TOML reader: every syntax error says `path:line:col: invalid TOML: reason`."""
from __future__ import annotations

from pathlib import Path

import pytest

from wasiport.errors import UserError
from wasiport.tomlread import parse_toml, read_toml


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ('name = "x"\nversion = 1.0.0\n', ":2:14:", "Expected newline or end of document"),
        ('[package]\nname = "x"\nfeatures = [\n', ":4:1:", "at the end of the file"),
        ("[a]\n[a]\n", ":2:3:", "Cannot declare"),
    ],
)
def test_a_syntax_error_names_file_line_and_column(tmp_path: Path, text: str, where: str, reason: str) -> None:
    path = tmp_path / "Cargo.toml"
    path.write_text(text)
    with pytest.raises(UserError) as raised:
        read_toml(path)
    message = str(raised.value)
    assert message.startswith(f"{path}{where} invalid TOML: "), message
    assert reason in message


def test_text_read_elsewhere_is_named_by_the_caller() -> None:
    with pytest.raises(UserError, match=r"^crates/x/Cargo.toml:1:5: invalid TOML: "):
        parse_toml("a = ", path_for_errors="crates/x/Cargo.toml")
    assert parse_toml('a = "b"\n', path_for_errors="unused") == {"a": "b"}


def test_a_missing_or_undecodable_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_toml(tmp_path / "absent.toml")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(UserError, match=r"latin1.toml: not UTF-8 text \(invalid continuation byte at byte 11\)"):
        read_toml(latin1)
