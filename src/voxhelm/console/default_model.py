"""The model the console's new jobs start with: the operator's choice on the Models page,
kept in ``$VOXHELM_VAR_DIR/console-default-model`` so that it outlives a restart, else
``auto``. The submission form reads it, the Models page writes it."""

from __future__ import annotations

from voxhelm.config import Config
from voxhelm.stt.registry import accepted_models, validate_model

DEFAULT_FILE = "console-default-model"


def default_model(config: Config) -> str:
    """The model the console's form starts with: the operator's choice, else ``auto``."""
    try:
        chosen = (config.paths.var_dir / DEFAULT_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return "auto"
    return chosen if chosen in accepted_models(config.stt) else "auto"


def choose_default_model(name: str, config: Config) -> None:
    """Make ``name`` the default of new console jobs; raises InvalidInput when a request
    could not use it."""
    validate_model(name, config.stt)
    target = config.paths.var_dir / DEFAULT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(name, encoding="utf-8")
