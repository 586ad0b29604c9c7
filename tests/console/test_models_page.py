"""The console's Models page in process: who may see it, removal, the default for new jobs."""

from __future__ import annotations

from typing import Any

from django.test import Client

from voxhelm.config import Config
from voxhelm.console.default_model import DEFAULT_FILE
from voxhelm.console.forms import SubmitForm


def test_it_lists_the_installed_models_for_operators_only(
    operator_client: Client, client: Any
) -> None:
    page = operator_client.get("/models").content.decode()
    assert '<th scope="row">tiny.en</th>' in page
    assert '<th scope="row">en_US-joe-medium</th>' in page
    assert "bundled" in page
    assert 'aria-label="Remove tiny.en"' not in page  # bundled: no remove button
    assert Client().get("/models").status_code == 302


def test_a_bundled_model_cannot_be_removed(operator_client: Client) -> None:
    response = operator_client.post("/models/remove", {"name": "tiny.en"}, follow=True)
    assert "tiny.en is bundled and cannot be removed." in response.content.decode()


def test_an_unknown_name_is_not_pulled(operator_client: Client) -> None:
    response = operator_client.post("/models/pull", {"name": "not a model"}, follow=True)
    assert "Unknown model &#x27;not a model&#x27;" in response.content.decode()
    assert "pull-not a model" not in response.content.decode()


def test_the_default_for_new_jobs_is_kept_and_preselected(
    operator_client: Client, console_config: Config
) -> None:
    assert SubmitForm(console_config).initial["model"] == "auto"
    response = operator_client.post("/models/default", {"model": "tiny.en"}, follow=True)
    assert "New jobs from the console now use tiny.en." in response.content.decode()
    assert (console_config.paths.var_dir / DEFAULT_FILE).read_text() == "tiny.en"
    assert SubmitForm(console_config).initial["model"] == "tiny.en"
    assert '<option value="tiny.en" selected>' in operator_client.get("/").content.decode()

    refused = operator_client.post("/models/default", {"model": "small"}, follow=True)
    assert "is not installed on this server" in refused.content.decode()
    assert (console_config.paths.var_dir / DEFAULT_FILE).read_text() == "tiny.en"
