"""Shared fixtures: the sample site on loopback, a sources file pointing at it, Prefect.

No test reaches beyond 127.0.0.1. Flow tests share one temporary Prefect server for the
session (Prefect's test harness); subprocess runs are pointed at it through
PREFECT_API_URL so they do not each start their own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sample_site import SampleSiteServer, build_sample_corpus
from tasks.settings import PROJECT_ROOT
from tests.postgres import LocalPostgres, PostgresUnavailable
from tests.lakes import (backend, lake_template, migrated_file, migrated_target, new_lake,  # noqa: F401  (fixtures)
                         warehouse_target)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def sample_site() -> Iterator[SampleSiteServer]:
    """The bundled sample site, served on an ephemeral loopback port for the session."""
    with SampleSiteServer(build_sample_corpus()) as server:
        yield server


@pytest.fixture
def sample_sources(sample_site: SampleSiteServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sources.yaml of the project, resolved against the running sample site."""
    monkeypatch.setenv("SAMPLE_SITE_URL", sample_site.base_url.rstrip("/"))
    target = tmp_path / "sources.yaml"
    shutil.copyfile(PROJECT_ROOT / "sources.yaml", target)
    return target


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One temporary Prefect server for every flow test; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url  # for subprocesses started by tests
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "warehouse.duckdb"


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A private PostgreSQL for the session (tests/postgres.py); tests take a database each
    with `postgres.create_database(name)`. Where the server is not installed the test skips
    with the reason, unless GOVETL_TEST_POSTGRES=required (make test sets it): then it fails.
    Its directory is not under pytest's temporary root: as root, the server runs as the
    `postgres` user, who cannot enter pytest's private (0700) directories."""
    root = Path(tempfile.mkdtemp(prefix="govetl-test-postgres-"))
    try:
        server = LocalPostgres(root)
    except PostgresUnavailable as exc:
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("GOVETL_TEST_POSTGRES") == "required":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        with server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
