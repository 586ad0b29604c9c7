"""Strict readers for environment variables: a bad value is a reported problem, never a default."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Problem:
    """One invalid setting: the variable's name and what is wrong with it."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class ConfigError(Exception):
    """Raised when the environment holds one or more invalid settings."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class EnvReader:
    """Reads typed values from an environment mapping and collects every problem it meets.

    Each reader returns the default when the variable is unset or empty, and when the value
    is invalid (so that parsing can go on and report all problems at once); the caller must
    refuse to run while ``problems`` is non-empty.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []
        self.names: set[str] = set()  # every variable looked at, for the settings reference

    def fail(self, name: str, message: str) -> None:
        self.problems.append(Problem(name, message))

    def raw(self, name: str) -> str | None:
        """The stripped value, or None when unset or blank."""
        self.names.add(name)
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def string(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None else value

    def secret(self, name: str, default: str = "") -> str:
        """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (not both)."""
        direct = self.raw(name)
        file_name = self.raw(f"{name}_FILE")
        if direct is not None and file_name is not None:
            self.fail(name, f"set either {name} or {name}_FILE, not both.")
            return default
        if file_name is None:
            return default if direct is None else direct
        try:
            content = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.fail(f"{name}_FILE", f"cannot read the file: {exc.strerror or exc}.")
            return default
        return content or default

    def is_set(self, name: str) -> bool:
        return self.raw(name) is not None or self.raw(f"{name}_FILE") is not None

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        self.fail(name, f"expected a boolean (true/false, yes/no, on/off, 1/0), got {value!r}.")
        return default

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            self.fail(name, f"expected an integer, got {value!r}.")
            return default
        if minimum is not None and number < minimum:
            if minimum == 1:
                self.fail(name, f"must be a positive integer, got {number}.")
            else:
                self.fail(name, f"must be at least {minimum}, got {number}.")
            return default
        if maximum is not None and number > maximum:
            self.fail(name, f"must be at most {maximum}, got {number}.")
            return default
        return number

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.fail(name, f"expected a number, got {value!r}.")
            return default
        if not math.isfinite(number):
            self.fail(name, f"expected a finite number, got {value!r}.")
            return default
        if minimum is not None and number < minimum:
            self.fail(name, f"must be at least {minimum:g}, got {number:g}.")
            return default
        return number

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in allowed:
            return value.lower()
        self.fail(name, f"must be one of {', '.join(allowed)}; got {value!r}.")
        return default

    def items(self, name: str, default: Iterable[str] = ()) -> tuple[str, ...]:
        """A comma- or newline-separated list, trimmed, blanks dropped, duplicates removed."""
        value = self.raw(name)
        if value is None:
            return tuple(default)
        seen: dict[str, None] = {}
        for part in value.replace("\n", ",").split(","):
            item = part.strip()
            if item:
                seen.setdefault(item, None)
        return tuple(seen)

    def mapping(self, name: str) -> dict[str, str]:
        """``key=value`` pairs separated by commas or newlines."""
        result: dict[str, str] = {}
        for entry in self.items(name):
            key, sep, val = entry.partition("=")
            if not sep or not key.strip() or not val.strip():
                self.fail(name, f"invalid entry {entry!r}; use key=value pairs.")
                continue
            result[key.strip()] = val.strip()
        return result

    def token_map(self, name: str) -> dict[str, str]:
        """Bearer tokens as ``label=token`` pairs or a JSON object (``NAME_FILE`` supported).

        Returns label -> token. Problems (bad syntax, empty labels or tokens, a label given
        twice) are reported; the offending entries are left out.
        """
        text = self.secret(name)
        if not text:
            return {}
        pairs = self._json_pairs(name, text) if text.startswith("{") else self._pairs(name, text)
        result: dict[str, str] = {}
        for label, token in pairs:
            if not label:
                self.fail(name, "has an entry with an empty label.")
            elif not token:
                self.fail(name, f"label {label!r} has an empty token value.")
            elif label in result:
                self.fail(name, f"label {label!r} is given more than once.")
            else:
                result[label] = token
        return result

    def _json_pairs(self, name: str, text: str) -> list[tuple[str, str]]:
        try:
            data = json.loads(text)
        except ValueError:
            self.fail(name, "is not valid JSON (values starting with '{' are read as JSON).")
            return []
        if not isinstance(data, dict):
            self.fail(name, "must be a JSON object when JSON syntax is used.")
            return []
        return [(str(k).strip(), str(v).strip()) for k, v in data.items()]

    def _pairs(self, name: str, text: str) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for entry in text.replace("\n", ",").split(","):
            if not entry.strip():
                continue
            label, sep, token = entry.partition("=")
            if not sep:
                # Never echo the entry: it may be a bare token.
                self.fail(name, "has an entry without '='; use label=token pairs.")
                continue
            pairs.append((label.strip(), token.strip()))
        return pairs
