"""The docs' config tables agree with the config declarations (gen/config.py ``param``).

Every table between ``<!-- config-table: ClassName -->`` and ``<!-- /config-table -->`` in README.md or docs/*.md
has the header ``| field | type | default | allowed | meaning |`` and one row per dataclass field, in declaration
order, with the annotation as its type, the declared default, and as ``allowed`` the declared range or choices
(plus the class's ``FIELD_RULES`` text), backticks aside. Every config kind has exactly one table.
"""

import dataclasses
import re
from pathlib import Path

import pytest

from gen.config import CONFIG_KINDS, config_class

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["field", "type", "default", "allowed", "meaning"]
TABLE = re.compile(r"<!-- config-table: (\w+) -->\n(.*?)<!-- /config-table -->", re.S)


def tables() -> list[tuple[str, str, list[list[str]]]]:
    """``(where, class name, rows)`` of every config table; a row is its cells, backticks removed."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in TABLE.finditer(path.read_text()):
            lines = [line.strip() for line in match.group(2).strip().splitlines()]
            rows = [[cell.strip().replace("`", "").replace("\\|", "|")
                     for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
            found.append((path.relative_to(ROOT).as_posix(), match.group(1), rows))
    return found


TABLES = tables()
CLASSES = {name: config_class(kind) for kind, (_, name) in CONFIG_KINDS.items()}


def type_text(annotation) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def default_text(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_every_config_class_has_one_table():
    named = [name for _, name, _ in TABLES]
    assert sorted(named) == sorted(CLASSES), f"config tables found for {named}, config classes are {sorted(CLASSES)}"


@pytest.mark.parametrize("where, name, rows", TABLES, ids=[f"{where}:{name}" for where, name, _ in TABLES])
def test_table_matches_declarations(where, name, rows):
    cls = CLASSES[name]
    assert rows[0] == HEADER, f"{where}: {name} table header is {rows[0]}"
    assert set(rows[1]) <= {"---", ":---", "---:", ":---:"}, f"{where}: {name} table has no separator row"
    body = rows[2:]
    assert all(len(row) == len(HEADER) for row in body), f"{where}: {name} table has a row without 5 cells"
    documented = [row[0] for row in body]
    duplicates = sorted({field for field in documented if documented.count(field) > 1})
    assert not duplicates, f"{where}: {name} documents {duplicates} more than once"
    fields = dataclasses.fields(cls)
    assert documented == [field.name for field in fields], f"{where}: {name} rows are not its fields in order"
    for (field_name, type_cell, default_cell, allowed_cell, meaning), field in zip(body, fields):
        where_field = f"{where}: {name}.{field_name}"
        assert type_cell == type_text(field.type), f"{where_field} type"
        assert default_cell == default_text(field.default), f"{where_field} default"
        assert allowed_cell == cls.allowed_text(field_name), f"{where_field} allowed"
        assert meaning, f"{where_field} has no meaning"


def test_the_checker_catches_a_wrong_row():
    """The comparison above fails for a table that differs from the declarations in any column."""
    where, name, rows = next(table for table in TABLES if table[1] == "SystolicConfig")
    keep = next(i for i, row in enumerate(rows) if row[0] == "keep")
    for column, wrong in ((1, "bool"), (2, "3"), (3, "1 … 16")):
        bad = [list(row) for row in rows]
        bad[keep][column] = wrong
        with pytest.raises(AssertionError):
            test_table_matches_declarations(where, name, bad)
    with pytest.raises(AssertionError):   # two rows swapped
        test_table_matches_declarations(where, name, rows[:2] + [rows[3], rows[2]] + rows[4:])
