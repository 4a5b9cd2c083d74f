"""One strict config base and one loader of YAML files and `section.key=value` overrides.

Every config of the project derives from `StrictConfig`: an unknown or misspelt key is an error,
never silently ignored, so a YAML file or a `--set model.layer=4` fails loudly instead of running
the default. `load_sections` is the one reader of such files and overrides, used by every command
and by bundle loading.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from shopformer.errors import ConfigError

__all__ = ["FrozenConfig", "StrictConfig", "describe_errors", "load_sections", "parse_yaml", "read_yaml_file", "validated"]

Config = TypeVar("Config", bound=BaseModel)


def describe_errors(exc: ValidationError) -> str:
    """Every problem pydantic found, as `place: message; ...` (the place is the key path)."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


class _Checked(BaseModel):
    #: How messages name this config ("invalid prepare config: ...").
    config_name: ClassVar[str] = "mapping"

    @classmethod
    def from_dict(cls, values: Any, where: str | None = None) -> Self:
        """A config from plain values; every bad key or value is reported in one `ConfigError`."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}invalid {cls.config_name} config: {describe_errors(exc)}") from None


class StrictConfig(_Checked):
    """A config whose unknown keys are errors and whose assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FrozenConfig(_Checked):
    """A strict config that cannot change once built (data mappings, preparation settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_yaml(text: str | None, where: str) -> Any:
    """The YAML value of `text`; `None` text means the file `where` does not exist."""
    if text is None:
        raise ConfigError(f"{where}: no such file")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None


def read_yaml_file(path: str | Path) -> Any:
    """The YAML value of the file at `path`, with a `ConfigError` naming the file when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    return parse_yaml(text, str(path))


def load_sections(
    sections: Iterable[str], path: str | Path | None = None, overrides: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """`{section: {key: value}}` from a YAML file of those sections, with `section.key=value` on top.

    Override values are read as YAML (`3` is a number, `[a, b]` a list). A section the caller does not
    know, in the file or an override, is an error.
    """
    loaded: dict[str, dict[str, Any]] = {name: {} for name in sections}
    if path is not None:
        document = read_yaml_file(path) or {}
        shape_ok = isinstance(document, dict) and not set(document) - set(loaded)
        if not shape_ok or not all(isinstance(v, dict | None) for v in document.values()):
            names = " and ".join(f"`{name}:`" for name in loaded)
            raise ConfigError(f"{path}: expected a mapping with only {names} sections of key: value pairs")
        for name, values in document.items():
            loaded[name].update(values or {})
    for key, value in (overrides or {}).items():
        section, _, field = key.partition(".")
        if section not in loaded or not field:
            starts = " or ".join(f"`{name}.`" for name in loaded)
            raise ConfigError(f"--set {key}=...: the key must start with {starts}")
        loaded[section][field] = parse_yaml(value, f"--set {key}")
    return loaded


def validated(config_class: type[Config], value: Any, name: str) -> Config:
    """`value` (None, an instance or a dict of fields) as a `config_class`; bad keys are a `ConfigError`."""
    if value is None:
        return config_class()
    if isinstance(value, config_class):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a {config_class.__name__} or a dict, got {type(value).__name__}")
    try:
        return config_class(**value)
    except ValidationError as exc:
        raise ConfigError(f"invalid {name} config: {describe_errors(exc)}") from None
