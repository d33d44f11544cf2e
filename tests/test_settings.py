"""squall/settings.py: every SQUALL_* variable is declared there, documented by generation,
parsed by one parser per type, and read nowhere else."""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import fields
from pathlib import Path
from types import ModuleType

import pytest

import squall.settings
from squall.exceptions import BadInput, SettingError
from squall.settings import COUNT, DECLARED, SERVER, SERVER_SETTINGS, Setting, Settings, field_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "squall"

ENVIRONMENT_USERS = {
    "squall/runtime/bootstrap.py": "an instance replaces its environment with the one its spec carries",
    "squall/runtime/launcher.py": "a zygote gets PATH and LANG of the node's environment",
    "squall/runtime/build.py": "the build process, and pip after it, get PATH, LANG, the proxies and PIP_* "
                               "of the node's environment (build_environment)",
    "squall/provenance.py": "git runs with the caller's environment (its HOME and config), in the C locale",
}
"""The modules that may touch os.environ, and why: each passes an environment to a child
process (or takes the one its parent gave it). None reads a setting there."""
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
SETTING_NAME = re.compile(r"SQUALL_[A-Z0-9_]+")


def load_generator() -> ModuleType:
    """scripts/gen_settings_docs.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_settings_docs", ROOT / "scripts" / "gen_settings_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the reference ---------------------------------------------------------------------------
def test_the_committed_settings_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert committed == load_generator().render(), \
        "docs/settings.md is out of date: run python scripts/gen_settings_docs.py"


def test_every_setting_has_a_one_line_doc_and_a_name_of_its_own() -> None:
    declared = [value for value in vars(squall.settings).values() if isinstance(value, Setting)]
    assert len(declared) == len(DECLARED), "two declarations share a variable name"
    for setting in DECLARED.values():
        assert SETTING_NAME.fullmatch(setting.name), setting.name
        assert setting.doc.strip() and "\n" not in setting.doc and setting.doc.endswith("."), setting.name
        assert setting.topic and setting.readers, setting.name
        if setting.default is None or setting.default == ():
            assert setting.unset or SERVER not in setting.readers, f"{setting.name}: say what unset means"


def test_every_setting_the_docs_name_is_declared() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {(page.name, name) for page in pages for name in SETTING_NAME.findall(page.read_text())}
    assert sorted((page, name) for page, name in named if name.rstrip("_") not in DECLARED) == []


def test_the_server_settings_are_the_fields_of_settings_with_the_declared_defaults() -> None:
    assert [f.name for f in fields(Settings)] == [field_name(s) for s in DECLARED.values() if SERVER in s.readers]
    defaults = Settings()
    for name, setting in SERVER_SETTINGS.items():
        assert getattr(defaults, name) == setting.default, name
    assert Settings.from_environ({}) == defaults


def test_defaults_stay_what_they_were() -> None:
    settings = Settings.from_environ({})
    assert (settings.region, settings.code_grace_seconds, settings.credential_refresh_seconds) \
        == ("us-east-1", 600.0, 4 * 3600.0)
    assert (settings.max_instances, settings.uid_range, settings.zygote_preload) == (512, (100000, 165535), ())
    assert (settings.max_header_bytes, settings.max_headers, settings.header_timeout, settings.body_idle_timeout,
            settings.max_connections, settings.max_connections_per_client, settings.max_connections_loopback,
            settings.route_body_budget_mb) == (65536, 100, 10.0, 30.0, 10000, 256, None, 256)
    assert (settings.retry_base_seconds, settings.event_poll_seconds, settings.queue_poll_seconds,
            settings.store_poll_seconds) == (1.0, None, None, None)
    assert (settings.log_retention_days, settings.log_max_mb, settings.log_sweep_seconds) == (30, 1024, 60)
    assert (settings.bundle_max_unpacked_mb, settings.bundle_max_files, settings.build_timeout_seconds,
            settings.build_memory_mb, settings.build_disk_mb, settings.build_uid) == (1024, 50000, 600, 2048, 1024,
                                                                                       65533)
    assert (settings.token, settings.secret_key, settings.node_id) == (None, None, None)


# -- reading ----------------------------------------------------------------------------------
def test_values_are_parsed_by_their_type_and_blank_is_unset() -> None:
    settings = Settings.from_environ({
        "SQUALL_MAX_INSTANCES": " 10 ", "SQUALL_HEADER_TIMEOUT": "2.5", "SQUALL_CODE_GRACE_SECONDS": "0",
        "SQUALL_UID_RANGE": "300000-300009", "SQUALL_ZYGOTE_PRELOAD": " json, email.utils ,",
        "SQUALL_LOG_MAX_MB": "0.5", "SQUALL_NODE_ID": "  first ", "SQUALL_REGION": "", "SQUALL_TOKEN": "t0ken",
    })
    assert (settings.max_instances, settings.header_timeout, settings.code_grace_seconds) == (10, 2.5, 0.0)
    assert (settings.uid_range, settings.zygote_preload) == ((300000, 300009), ("json", "email.utils"))
    assert (settings.log_max_mb, settings.node_id, settings.region) == (0.5, "first", "us-east-1")
    assert "t0ken" not in repr(settings)


def test_a_value_written_for_a_child_reads_back_the_same() -> None:
    for setting in DECLARED.values():
        if setting.default is not None:
            assert setting.kind.parse(setting.text(setting.default)) == setting.default, setting.name
    zygote = DECLARED["SQUALL_ZYGOTE_PRELOAD"]
    assert zygote.read({zygote.name: zygote.text(("json", "boto3"))}) == ("json", "boto3")


BAD_VALUES = [
    ("SQUALL_MAX_INSTANCES", "0"), ("SQUALL_MAX_INSTANCES", "-3"), ("SQUALL_MAX_INSTANCES", "lots"),
    ("SQUALL_MAX_INSTANCES", "1.5"), ("SQUALL_MAX_HEADER_BYTES", "64k"), ("SQUALL_ROUTE_BODY_BUDGET_MB", "0.5"),
    ("SQUALL_HEADER_TIMEOUT", "0"), ("SQUALL_HEADER_TIMEOUT", "inf"), ("SQUALL_HEADER_TIMEOUT", "nan"),
    ("SQUALL_CODE_GRACE_SECONDS", "soon"), ("SQUALL_CODE_GRACE_SECONDS", "-1"), ("SQUALL_EVENT_POLL_SECONDS", "-5"),
    ("SQUALL_LOG_RETENTION_DAYS", "0"), ("SQUALL_LOG_MAX_MB", "lots"), ("SQUALL_UID_RANGE", "abc"),
    ("SQUALL_UID_RANGE", "5-3"), ("SQUALL_UID_RANGE", "0-10"), ("SQUALL_UID_RANGE", "100000"),
    ("SQUALL_UID_RANGE", "1-4294967295"), ("SQUALL_BUILD_UID", "0"), ("SQUALL_BUILD_UID", "4294967295"),
    ("SQUALL_ZYGOTE_PRELOAD", "json,boto 3"), ("SQUALL_ZYGOTE_PRELOAD", "a..b"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_bad_server_value_stops_the_start_naming_the_variable_and_the_value(name: str, value: str) -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_environ({name: value})
    assert caught.value.name == name and isinstance(caught.value, BadInput) and caught.value.exit_code == 2
    assert f"{name}={value!r} is not " in str(caught.value)
    assert f"unset it for the default ({DECLARED[name].shown_default})" in str(caught.value)


@pytest.mark.parametrize(("name", "value"), [("SQUALL_URL", "localhost:8080"), ("SQUALL_PORT", "70000"),
                                             ("SQUALL_ALLOW_DIRTY", "maybe"), ("SQUALL_API_URL", "node")])
def test_a_bad_value_read_elsewhere_names_the_variable_and_the_value(name: str, value: str) -> None:
    with pytest.raises(SettingError, match=re.escape(f"{name}={value!r} is not ")):
        DECLARED[name].read({name: value})


def test_a_secret_s_bad_value_is_not_shown() -> None:
    secret: Setting[int] = Setting("SQUALL_EXAMPLE", COUNT, 1, "An example.", "Examples", secret=True)
    with pytest.raises(SettingError) as caught:
        secret.read({"SQUALL_EXAMPLE": "hunter2"})
    assert "SQUALL_EXAMPLE" in str(caught.value) and "hunter2" not in str(caught.value)


def test_the_build_uid_must_lie_outside_the_functions_uids() -> None:
    with pytest.raises(SettingError, match="SQUALL_BUILD_UID 100005 is inside SQUALL_UID_RANGE 100000-165535"):
        Settings.from_environ({"SQUALL_BUILD_UID": "100005"})
    assert Settings.from_environ({"SQUALL_BUILD_UID": "100005", "SQUALL_UID_RANGE": "200000-200999"}).build_uid \
        == 100005


# -- nobody else reads the environment --------------------------------------------------------
def environment_reads(path: Path) -> list[str]:
    """`line: what` for each use of os.environ (getenv, ...) and each SQUALL_* name written out in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in ENVIRONMENT_NAMES)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SETTING_NAME.fullmatch(node.value):
            found.append(f"{node.lineno}: {node.value!r}")
    return found


def package_modules() -> dict[str, Path]:
    return {path.relative_to(ROOT).as_posix(): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_but_settings_reads_a_setting_or_the_environment() -> None:
    """A SQUALL_* variable is read through its declaration (`Settings`, `Setting.read`) and
    named by it (`SETTING.name`); os.environ is touched only where ENVIRONMENT_USERS says why."""
    offending: dict[str, list[str]] = {}
    for name, path in package_modules().items():
        if name == "squall/settings.py":
            continue
        reads = environment_reads(path)
        if name in ENVIRONMENT_USERS:
            reads = [read for read in reads if not read.split(": ", 1)[1].startswith(("os.", "from os"))]
        if reads:
            offending[name] = reads
    assert offending == {}, "read these through squall/settings.py (or add a reason to ENVIRONMENT_USERS)"


def test_every_module_allowed_the_environment_still_uses_it() -> None:
    modules = package_modules()
    stale = [name for name in ENVIRONMENT_USERS if name not in modules or not environment_reads(modules[name])]
    assert stale == [], "remove these from ENVIRONMENT_USERS"


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('import os\nfrom os import getenv\nX = os.environ.get("SQUALL_X")\n'
                      'Y = "see SQUALL_Y"\nZ = os.getenv("HOME")\n')
    assert sorted(environment_reads(sample)) == ["2: from os import getenv", "3: 'SQUALL_X'", "3: os.environ",
                                                 "5: os.getenv"]
