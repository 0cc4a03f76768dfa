"""Configuration as data: sources files and the project files that name paths."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tasks.crawl.runlock import RunLockedError, run_lock
from tasks.sources import SourceConfigError, expand_env, load_sources, parse_source

ROOT = Path(__file__).resolve().parents[1]


def test_both_sources_files_are_valid_and_list_the_five_regions():
    for name in ("sources.yaml", "sources.real.yaml"):
        sources = load_sources(ROOT / name)
        assert {s.region for s in sources} == {"天台县", "仙居县", "冷水滩区", "嵊州市", "慈溪市"}
        assert all(s.allowed_hosts and s.article_url_pattern for s in sources)


def test_environment_references_expand_with_defaults_and_fail_loudly_when_unset():
    assert expand_env("${A:-http://x}/col", {}) == "http://x/col"
    assert expand_env("${A:-http://x}/col", {"A": "http://y"}) == "http://y/col"
    with pytest.raises(SourceConfigError, match="B is not set"):
        expand_env("${B}", {})


@pytest.mark.parametrize("entry, message", [
    ({"region": "县", "listing_urls": ["http://h/"]}, "'name' is required"),
    ({"name": "a", "region": "县", "listing_urls": ["/relative"]}, "not an absolute"),
    ({"name": "a", "region": "县", "listing_urls": ["http://h/"], "article_url_pattern": "("}, "invalid regex"),
    ({"name": "a", "region": "县", "listing_urls": ["http://h/"], "rate": 1}, "unknown keys"),
    ({"name": "a", "region": "县", "listing_urls": ["http://h/"], "rate_limit_per_second": -1}, ">= 0"),
])  # fmt: skip
def test_malformed_source_entries_are_refused_with_the_key_named(entry, message):
    with pytest.raises(SourceConfigError, match=message):
        parse_source(entry)


def test_allowed_hosts_default_to_the_listing_hosts_never_to_anything():
    source = parse_source({"name": "a", "region": "县", "listing_urls": ["http://www.example.gov.cn/col/1.html"]})
    assert source.allowed_hosts == ("www.example.gov.cn",)


def test_prefect_yaml_entrypoints_exist_and_schedule_is_0200_shanghai():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in config["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        assert (ROOT / path).exists() and f"def {name}(" in (ROOT / path).read_text(encoding="utf-8")
    nightly = next(d for d in config["deployments"] if d["name"] == "nightly")
    assert nightly["schedules"][0]["cron"] == "0 2 * * *" and nightly["schedules"][0]["timezone"] == "Asia/Shanghai"
    assert nightly["concurrency_limit"]["limit"] == 1


DOCS = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("*.md")) + sorted(
    p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/**/*.md") if not p.relative_to(ROOT).parts[0].startswith((".", "build")))


@pytest.mark.parametrize("doc", DOCS)
def test_docs_name_only_make_targets_and_files_that_exist(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in set(re.findall(r"`make ([a-z-]+)", text)):
        assert re.search(rf"^{target}:", makefile, re.M), f"{doc} names make {target}, the Makefile has no such target"
    pattern = r"`((?:flows|tasks|warehouse|config|tests|sample_site|evaluation|scripts|bench|analysis)/[\w./-]+)`"
    for path in set(re.findall(pattern, text)):
        assert (ROOT / path.split(":")[0]).exists(), f"{doc} names {path}, which does not exist"


def test_a_second_holder_of_the_run_lock_waits_then_names_the_first(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from tasks.crawl.runlock import run_lock\n"
        "with run_lock(%r):\n    print('held', flush=True); time.sleep(30)\n") % (str(ROOT), str(warehouse))],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"pid {holder.pid} .*waited 1s"):
            with run_lock(warehouse, timeout=1):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(warehouse, timeout=1):  # the OS released the dead holder's lock
        pass


def test_every_key_the_sources_files_use_is_documented_in_the_header():
    header = (ROOT / "sources.yaml").read_text(encoding="utf-8").split("sources:")[0]
    documented = set(re.findall(r"^#   ([a-z_]+)", header, re.M)) | set(re.findall(r"^#   [a-z_]+, ([a-z_]+)", header, re.M))
    for name in ("sources.yaml", "sources.real.yaml"):
        for entry in yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))["sources"]:
            assert set(entry) <= documented, (name, set(entry) - documented)
