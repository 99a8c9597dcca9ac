"""Fuzz the JSON API from its own OpenAPI document (schemathesis), in-process on SQLite.

Every operation the document describes gets generated requests, valid and invalid, sent with an
admin token to an app holding a few demo campaigns (one edited, one in the trash) and a playbook.
Path ids are drawn both from ids that exist and from anything the schema allows, so the found and
the not-found branches both run. Each response must not be a 5xx and must match the document: a
documented status code, its content type, its headers and its body schema.

Bounded and repeatable: a fixed seed, derandomized Hypothesis, no example database and a small
``max_examples``. Schemathesis's coverage phase (every boundary and type-violation case the schema
implies) runs for every operation except the three with large request bodies, where it alone
would generate about 1,900 requests; those three get the examples and fuzzing phases only.
No operation is left out, the multipart import included (generated files: read, or 422).
The module takes about 30 s; raise MAX_EXAMPLES or change SEED locally to search further.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from kb import create_app, demo
from kb.api import openapi
from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.campaigns.serialize import campaign_to_input
from kb.insights import playbooks
from kb.insights.schemas import validate_playbook
from kb.searching import indexer
from tests import conftest
from tests.conftest import make_app
from tests.signed_in import ensure_account

MAX_EXAMPLES = 40
SEED = 20240601
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Path parameters naming something stored: also drawn from what the fixture stores.
ID_PARAMETERS = ("campaign_id", "playbook_id", "version")
KNOWN_IDS = (1, 2, 3, 4, 5, 6)  # campaigns 1-6 on a fresh database, playbook 1, versions 1-2
# Large bodies: the coverage phase would send ~460 (create), ~480 (replace), ~970 (import) cases.
LARGE_BODIES = ["createCampaign", "updateCampaign", "importCampaigns"]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Flask]:
    """An app on a copy of the migrated SQLite file with a handful of demo campaigns."""
    tmp_path = tmp_path_factory.mktemp("fuzz")
    (tmp_path / "data").mkdir()
    shutil.copy(sqlite_template, tmp_path / "data" / "kb.sqlite3")
    # Hypothesis seeds the global `random` alike for every example, and whoosh names its segment
    # files with it: the same names again collide on disk. Give whoosh a generator of its own.
    patch = pytest.MonkeyPatch()
    patch.setattr("whoosh.util.random", random.Random())  # noqa: S311  # file names, not secrets
    app = make_app(tmp_path, None)
    conftest._made_apps.remove(app)  # lives for the module, not the first test: released below
    with app.app_context():
        indexer.warm_up()  # as a gunicorn worker does at boot: /readyz answers 200, not 503
        ids = [
            services.create_campaign(validate_campaign(record)).id
            for record in demo.demo_records()[: len(KNOWN_IDS)]
        ]
        assert ids == list(KNOWN_IDS)
        first = campaign_to_input(services.get_campaign(ids[0]))
        # A second version to list, diff and restore; something in the trash; a playbook.
        services.update_campaign(ids[0], validate_campaign({**first, "title": "复盘修订版"}))
        services.trash_campaign(ids[-1])
        playbooks.create_playbook(
            validate_playbook(
                {"title": "老客召回先分层", "theme": "audience", "supporting_ids": ids[:2]}
            )
        )
    ensure_account(app, "admin")
    yield app
    conftest.release(app)
    patch.undo()


def _known_ids(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Draw each id as generated or as one that exists."""
    if not path_parameters:
        return st.just(path_parameters)
    known = st.sampled_from(KNOWN_IDS)
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.just(value), known) if name in ID_PARAMETERS else st.just(value)
            for name, value in path_parameters.items()
        }
    )


def _served_document() -> dict[str, Any]:
    """Return the document an app serves at /api/v1/openapi.json (a copy: the built one is
    cached and schemathesis may change what it is given). Built at collection: no database."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"TESTING": True, "DATA_DIR": data_dir, "AUTO_MIGRATE": False})
        try:
            document: dict[str, Any] = json.loads(json.dumps(openapi.build_document(app)))
        finally:
            conftest.release(app)
    return document


def _load_schema(phases: list[str]) -> OpenApiSchema:
    # Each schema gets its own config.
    document = _served_document()
    loaded = schemathesis.openapi.from_dict(document, config=SchemathesisConfig(seed=SEED))
    loaded.config.phases.update(phases=phases)
    loaded.config.generation.update(
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        # The test sends an admin token; generated bearer values would only ever get 401s
        # (tests/test_api.py checks the 401s and 403s the document declares).
        with_security_parameters=False,
    )
    loaded.hook("flatmap_path_parameters")(_known_ids)
    return loaded


small_bodies = _load_schema(["examples", "coverage", "fuzzing"]).exclude(operation_id=LARGE_BODIES)
large_bodies = _load_schema(["examples", "fuzzing"]).include(operation_id=LARGE_BODIES)
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _call(case: schemathesis.Case[Any], app: Flask) -> None:
    token = ensure_account(app, "admin").token
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@small_bodies.parametrize()
@FUZZ_SETTINGS
def test_api_matches_its_openapi_document(case: schemathesis.Case[Any], fuzz_app: Flask) -> None:
    _call(case, fuzz_app)


@large_bodies.parametrize()
@FUZZ_SETTINGS
def test_large_body_operations_match_the_document(
    case: schemathesis.Case[Any], fuzz_app: Flask
) -> None:
    _call(case, fuzz_app)
