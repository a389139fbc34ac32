"""The ledger's domain stays pure: no database driver, Kafka client, HTTP framework or `os` in its imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import services.ledger.domain

DOMAIN = Path(services.ledger.domain.__file__).resolve().parent
FORBIDDEN = frozenset(
    {"psycopg", "psycopg_pool", "kafka", "aiokafka", "confluent_kafka", "fastapi", "starlette", "httpx", "os"}
)
# What a domain module may import from the project: the domain itself, the ledger's exceptions and core.
PROJECT_ALLOWED = ("services.ledger.domain", "services.ledger.errors", "services.core")
MODULES = sorted(DOMAIN.rglob("*.py"))


def imported(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports (line, dotted name), wherever the import statement is, inner ones too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve it against the module's package
                package = ("services", "ledger", "domain", *path.parent.relative_to(DOMAIN).parts)
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found += [(node.lineno, module)]
            if node.module is None or node.level:
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def test_the_domain_has_modules() -> None:
    names = {path.stem for path in MODULES}
    assert {"pricing", "invoice_math", "reports", "exposure", "chain"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(DOMAIN)))
def test_no_driver_client_framework_or_os(path: Path) -> None:
    bad = [(line, name) for line, name in imported(path) if name.split(".")[0] in FORBIDDEN]
    assert not bad, f"{path.name} imports {bad}; move that code to services/ledger/adapters"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(DOMAIN)))
def test_no_adapter_or_wiring_imports(path: Path) -> None:
    project = [(line, name) for line, name in imported(path) if name.split(".")[0] == "services"]
    bad = [(line, name) for line, name in project if not name.startswith(PROJECT_ALLOWED)]
    assert not bad, f"{path.name} imports {bad}; the domain may use only itself, ledger errors and core"


def test_the_check_sees_what_it_must(tmp_path: Path) -> None:
    sample = DOMAIN / "pricing.py"
    names = {name for _, name in imported(sample)}
    assert "services.ledger.errors" in names  # a plain from-import is seen
    probe = tmp_path / "probe.py"
    probe.write_text("import os.path\ndef f():\n    from psycopg import sql\n    import aiokafka as k\n")
    assert {name.split(".")[0] for _, name in imported(probe)} == {"os", "psycopg", "aiokafka"}
