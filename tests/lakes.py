"""The two warehouse backends for the tests: a DuckDB file, or a DuckLake on the session's
PostgreSQL (tests/postgres.py) with its files in a temporary directory.

A test that must hold on both takes the `backend` fixture (directly, or through a fixture
that does) and is marked `@both_backends`; unmarked, `backend` is "file". Lakes are cheap:
one is created and migrated once per session (`lake_template`), and each test gets a copy
of its catalog database (`new_lake`: PostgreSQL's CREATE DATABASE … TEMPLATE, ~0.1 s).
The copies share the template's data path, which is how a lake's catalog works (it keeps
the path), and harmless: every data file has a name of its own.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tasks import settings
from tests.postgres import LocalPostgres
from warehouse.backend.connect import connect
from warehouse.backend.lake import Lake, forget_instances, open_lake
from warehouse.schema.migrate import migrate

BACKENDS = ("file", "lake")
both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
_TEMPLATE = "lake_template"
_numbers = itertools.count(1)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """"file" or "lake": the parameter of @both_backends, else "file"."""
    return getattr(request, "param", "file")


@pytest.fixture(scope="session")
def lake_template(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A catalog database holding an empty, migrated lake (views and seeds too)."""
    dsn = postgres.create_database(_TEMPLATE)
    data = tmp_path_factory.mktemp("lake-data")
    lake = Lake(dsn, f"{data}/")
    con = open_lake(lake, read_only=False)
    try:
        migrate(con)
    finally:
        con.close()
        forget_instances(lake)  # nobody may be in a template database
    return _TEMPLATE


@pytest.fixture(scope="session")
def new_lake(postgres: LocalPostgres, lake_template: str) -> Callable[[], str]:
    """A factory of new lakes, each a copy of the template: returns the warehouse setting
    naming it (ducklake:postgres:<dsn>)."""

    def make() -> str:
        name = f"lake_{next(_numbers)}"
        postgres.psql(f'drop database if exists "{name}" with (force)')
        postgres.psql(f'create database "{name}" template "{lake_template}"')
        return settings.LAKE_PREFIX + postgres.dsn(name)

    return make


@pytest.fixture
def warehouse_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where a test's warehouse is: a new DuckDB file in tmp_path, or a new lake."""
    if backend == "lake":
        return request.getfixturevalue("new_lake")()
    return str(tmp_path / "data" / "warehouse.duckdb")


@pytest.fixture(scope="session")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated warehouse file, copied by each test (migrating takes ~0.4 s)."""
    path = tmp_path_factory.mktemp("template") / "warehouse.duckdb"
    connect(path).close()
    return path


@pytest.fixture
def migrated_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | Path:
    """A migrated warehouse for one test: a copy of migrated_file, or a new lake under @both_backends."""
    if backend == "lake":
        return request.getfixturevalue("new_lake")()
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(request.getfixturevalue("migrated_file"), path)
    return path
