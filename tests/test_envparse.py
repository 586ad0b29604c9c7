"""Strict environment readers: bad values are problems that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxhelm.envparse import EnvReader


def read(**env: str) -> EnvReader:
    return EnvReader(env)


@pytest.mark.parametrize("value", ["1", "true", "YES", "On"])
def test_it_reads_true_words(value: str) -> None:
    env = read(FLAG=value)
    assert env.boolean("FLAG", False) is True
    assert env.problems == []


@pytest.mark.parametrize("value", ["0", "false", "No", "OFF"])
def test_it_reads_false_words(value: str) -> None:
    env = read(FLAG=value)
    assert env.boolean("FLAG", True) is False
    assert env.problems == []


def test_it_rejects_a_bad_boolean_instead_of_defaulting() -> None:
    env = read(FLAG="maybe")
    env.boolean("FLAG", False)
    assert [p.name for p in env.problems] == ["FLAG"]
    assert "maybe" in env.problems[0].message


def test_it_treats_blank_values_as_unset() -> None:
    env = read(FLAG="  ", NUM="")
    assert env.boolean("FLAG", True) is True
    assert env.integer("NUM", 7) == 7
    assert env.problems == []


@pytest.mark.parametrize(("value", "message"), [("abc", "integer"), ("1.5", "integer")])
def test_it_rejects_non_integers(value: str, message: str) -> None:
    env = read(NUM=value)
    env.integer("NUM", 1)
    assert env.problems[0].name == "NUM"
    assert message in env.problems[0].message


@pytest.mark.parametrize("value", ["0", "-1"])
def test_it_rejects_non_positive_integers(value: str) -> None:
    env = read(NUM=value)
    env.integer("NUM", 5, minimum=1)
    assert "positive integer" in env.problems[0].message


def test_it_enforces_integer_bounds() -> None:
    env = read(LOW="1", HIGH="70000")
    env.integer("LOW", 5, minimum=2)
    env.integer("HIGH", 5, maximum=65535)
    assert [p.name for p in env.problems] == ["LOW", "HIGH"]


@pytest.mark.parametrize("value", ["x", "nan", "inf"])
def test_it_rejects_bad_numbers(value: str) -> None:
    env = read(NUM=value)
    assert env.number("NUM", 1.0) == 1.0
    assert env.problems[0].name == "NUM"


def test_it_reads_numbers_with_a_minimum() -> None:
    env = read(OK="2.5", LOW="-1")
    assert env.number("OK", 1.0, minimum=0) == 2.5
    env.number("LOW", 1.0, minimum=0)
    assert [p.name for p in env.problems] == ["LOW"]


def test_it_reads_choices_case_insensitively() -> None:
    env = read(MODE="Remote_Pull")
    assert env.choice("MODE", "django_tasks", ("django_tasks", "remote_pull")) == "remote_pull"


def test_it_rejects_unknown_choices() -> None:
    env = read(MODE="remote-pull")
    env.choice("MODE", "django_tasks", ("django_tasks", "remote_pull"))
    assert "remote-pull" in env.problems[0].message


def test_it_splits_lists_on_commas_and_newlines() -> None:
    env = read(HOSTS="a.example, b.example\nc.example,,a.example")
    assert env.items("HOSTS") == ("a.example", "b.example", "c.example")


def test_it_reads_maps() -> None:
    env = read(MAP="de=thorsten, en = joe")
    assert env.mapping("MAP") == {"de": "thorsten", "en": "joe"}


def test_it_rejects_map_entries_without_equals() -> None:
    env = read(MAP="de=thorsten,broken")
    assert env.mapping("MAP") == {"de": "thorsten"}
    assert "broken" in env.problems[0].message


def test_it_reads_a_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    env = read(KEY_FILE=str(secret))
    assert env.secret("KEY") == "s3cr3t"
    assert env.is_set("KEY")


def test_it_refuses_both_a_secret_and_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("a")
    env = read(KEY="b", KEY_FILE=str(secret))
    env.secret("KEY")
    assert "not both" in env.problems[0].message


def test_it_reports_an_unreadable_secret_file(tmp_path: Path) -> None:
    env = read(KEY_FILE=str(tmp_path / "missing"))
    assert env.secret("KEY") == ""
    assert env.problems[0].name == "KEY_FILE"


def test_it_parses_label_token_pairs() -> None:
    env = read(TOKENS="archive=abc, podcast = def\nhome=ghi")
    assert env.token_map("TOKENS") == {"archive": "abc", "podcast": "def", "home": "ghi"}
    assert env.problems == []


def test_it_parses_json_token_maps_and_trims_them() -> None:
    env = read(TOKENS='{" archive ": " abc ", "n": 5}')
    assert env.token_map("TOKENS") == {"archive": "abc", "n": "5"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("atlas= ", "empty token"),
        ("=abc", "empty label"),
        ("justatoken", "without '='"),
        ("a=1,a=2", "more than once"),
        ('{"a": " "}', "empty token"),
        ('{" ": "x"}', "empty label"),
        ("[1, 2]", "without '='"),
        ('{"a": ', "not valid JSON"),
        ('{"a"}', "not valid JSON"),
    ],
)
def test_it_rejects_bad_token_maps(value: str, message: str) -> None:
    env = read(TOKENS=value)
    env.token_map("TOKENS")
    assert env.problems, value
    assert message in env.problems[0].message


def test_it_never_echoes_a_bare_token_in_problems() -> None:
    env = read(TOKENS="supersecretvalue")
    env.token_map("TOKENS")
    assert "supersecretvalue" not in str(env.problems)


def test_it_records_every_name_it_reads() -> None:
    env = read()
    env.string("A")
    env.secret("B")
    assert {"A", "B", "B_FILE"} <= env.names
