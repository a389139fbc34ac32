"""No secret in logs, error bodies or the repository: services run with known tokens and passwords, are
driven through failures (wrong tokens, bad input, database and Kafka unreachable), then their logs and
every answer are searched for the secrets."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from security_support import Spawned, Targets

from services.core.events import format_time
from services.core.tokens import FileTokenStore
from services.demo.launcher import free_port

pytestmark = pytest.mark.integration


def secrets_of(targets: Targets) -> list[str]:
    """Every secret the running services know: tokens, their secret parts, database passwords."""
    found = [*targets.tokens.values(), *(t.split("_", 2)[2] for t in targets.tokens.values())]
    for url in (targets.owner_url, targets.app_url):
        password = unquote(urlsplit(url).password or "")
        assert len(password) >= 8, "the stack should run with real passwords"
        found.append(password)
    return found


def drive_failures(http: httpx.Client, targets: Targets) -> list[httpx.Response]:
    """Requests that fail in every way a caller can make them fail, plus a few that succeed."""
    finance, wrong = targets.bearer("finance"), {"Authorization": f"Bearer {targets.tokens['finance']}x"}
    ledger, ingest = targets.ledger_url, targets.ingest_url
    single = {"Content-Type": "application/cloudevents+json"}
    return [
        http.get(f"{ledger}/v1/licensees/omnisoft/ledger", headers=wrong),
        http.get(f"{ledger}/v1/licensees/omnisoft/ledger", headers=targets.bearer("ingest")),
        http.post(f"{ledger}/v1/licensees/omnisoft/adjustments", headers=targets.bearer("auditor"), json={}),
        http.post(f"{ledger}/v1/licensees/omnisoft/adjustments", headers=finance, content=b"{nope"),
        http.post(f"{ledger}/v1/licensees/omnisoft/adjustments", headers=finance,
                  json={"amount_minor": 1, "reason": "r", "reference": "INV-none"}),
        http.get(f"{ledger}/v1/licensees/omnisoft/invoices/1999-01", headers=finance),
        http.get(f"{ledger}/v1/licensees/omnisoft/ledger?from=bad", headers=finance),
        http.get(f"{ledger}/v1/licensees/omnisoft/usage-report", headers=finance),
        http.get(f"{ledger}/readyz"),
        http.post(f"{ingest}/v1/events", headers={**single, **wrong}, content=b"{}"),
        http.post(f"{ingest}/v1/events", headers={**single, **finance}, content=b"{}"),
        http.post(f"{ingest}/v1/events", headers={**single, **targets.bearer("ingest")}, content=b"{bad"),
        http.post(f"{ingest}/v1/events", headers={**single, **targets.bearer("ingest")}, content=b"{}"),
        http.get(f"{ingest}/readyz"),
        http.get(f"{ingest}/openapi.json"),
    ]


def assert_nowhere(secrets: list[str], texts: dict[str, str]) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret ({secret[:4]}...) appears in {where}"


def test_no_token_or_password_appears_in_any_answer_or_service_log(
    http: httpx.Client, targets: Targets
) -> None:
    answers = drive_failures(http, targets)
    assert {a.status_code for a in answers} >= {400, 401, 403, 404}
    texts = {f"{a.request.method} {a.request.url.path} -> {a.status_code}": f"{a.headers}\n{a.text}"
             for a in answers}  # fmt: skip
    texts.update({str(path): path.read_text(errors="replace") for path in targets.logs})
    assert_nowhere(secrets_of(targets), texts)


def test_a_ledger_whose_database_is_down_leaks_neither_its_password_nor_tokens(
    http: httpx.Client, targets: Targets, spawn_service: Callable[..., Spawned], tmp_path: Path
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    dead = f"postgresql://tollgate_app:{password}@127.0.0.1:{free_port()}/tollgate"
    tokens_file = tmp_path / "tokens.json"
    token = FileTokenStore(tokens_file).create("leak-finance", "finance")
    ledger = spawn_service("ledger", {
        "TOLLGATE_APP_DATABASE_URL": dead, "TOLLGATE_DATABASE_URL": "",
        "TOLLGATE_TOKENS_FILE": str(tokens_file), "TOLLGATE_KAFKA_BOOTSTRAP": targets.kafka_bootstrap,
        "TOLLGATE_LEDGER_TOPIC": f"security.nothing.{uuid.uuid4().hex[:8]}",
    })  # fmt: skip
    base = f"{ledger.url}/v1/licensees/omnisoft"
    bearer = {"Authorization": f"Bearer {token}"}
    adjustment = {"amount_minor": 1, "reason": "r", "reference": "1"}
    requests = [
        ("GET", f"{base}/ledger", bearer, None),
        ("POST", f"{base}/invoices/2026-10", bearer, None),
        ("POST", f"{base}/adjustments", bearer, adjustment),
        ("GET", f"{base}/ledger", {"Authorization": f"Bearer {token}0"}, None),
        ("GET", f"{ledger.url}/readyz", {}, None),
    ]
    # Each database call waits for the pool's own timeout (30 s) before its 503: send them together.
    with httpx.Client(timeout=90.0) as slow, ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda r: slow.request(r[0], r[1], headers=r[2], json=r[3]), requests))
    assert [a.status_code for a in answers] == [503, 503, 503, 401, 503]
    texts = {f"answer {i}": f"{a.headers}\n{a.text}" for i, a in enumerate(answers)}
    texts["ledger log"] = ledger.log_path.read_text(errors="replace")
    assert "127.0.0.1" in texts["ledger log"] or "connection" in texts["ledger log"].lower()
    assert_nowhere([password, token, token.split("_", 2)[2]], texts)


def test_an_ingest_that_cannot_authenticate_to_kafka_leaks_no_sasl_password(
    http: httpx.Client, targets: Targets, spawn_service: Callable[..., Spawned], tmp_path: Path
) -> None:
    password = f"sasl-{uuid.uuid4().hex}"
    tokens_file = tmp_path / "tokens.json"
    token = FileTokenStore(tokens_file).create("leak-gw", "ingest")
    ingest = spawn_service("ingest", {
        "TOLLGATE_KAFKA_BOOTSTRAP": targets.kafka_bootstrap,  # a PLAINTEXT listener: SASL cannot succeed
        "TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "TOLLGATE_KAFKA_SASL_MECHANISM": "PLAIN",
        "TOLLGATE_KAFKA_SASL_USERNAME": "metering", "TOLLGATE_KAFKA_SASL_PASSWORD": password,
        "TOLLGATE_TOKENS_FILE": str(tokens_file), "TOLLGATE_INGEST_PRODUCE_TIMEOUT_SECONDS": "2",
    })  # fmt: skip
    event = {"specversion": "1.0", "id": "leak-1", "source": "gw", "type": "io.tollgate.api.call.v1",
             "time": format_time(datetime.now(UTC) - timedelta(hours=1)),  # within ingest's age bound
             "data": {"licensee_id": "omnisoft", "app_id": "a", "endpoint": "/x", "method": "GET",
                      "status": 200, "records": 1, "bytes": 1,
                      "requester": {"org_id": "o", "org_type": "commercial"}}}  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/cloudevents+json"}
    answers = [http.post(f"{ingest.url}/v1/events", json=event, headers=headers) for _ in range(2)]
    answers.append(http.get(f"{ingest.url}/readyz"))
    assert [a.status_code for a in answers] == [503, 503, 503]
    texts = {f"answer {i}": f"{a.headers}\n{a.text}" for i, a in enumerate(answers)}
    texts["ingest log"] = ingest.log_path.read_text(errors="replace")
    assert_nowhere([password, token, token.split("_", 2)[2]], texts)


# Credentials that look real; the documented placeholders are allowed.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "tollgate token": re.compile(r"\btg_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\b"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:([^\s@'\"/]+)@"),
}
PLACEHOLDERS = re.compile(r"^(<[^>]+>|REPLACE_ME|\{+[^}]*\}+|\$\{[^}]+\}|\$[A-Z_]+|changeme|change-me|"
                          r"s3cret-[a-z]+|0wner-[a-z]+|example|password|secret|postgres|pw|x+|\*+)$",
                          re.IGNORECASE)  # fmt: skip


def tracked_files(root: Path) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)  # noqa: S607
    return [root / name for name in listed.stdout.decode().split("\0") if name]


def test_no_tracked_file_holds_a_secret(repo_root: Path) -> None:
    found = []
    for path in tracked_files(repo_root):
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        for label, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                if label == "password in a URL" and PLACEHOLDERS.match(match.group(1)):
                    continue
                found.append(f"{path.relative_to(repo_root)}: {label}: {match.group(0)[:60]}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("text", "label"), [
    # Assembled at run time, so this file itself holds no secret-shaped text for the repo scan.
    ("-----BEGIN " + "PRIVATE KEY-----", "private key"),
    ("tg_0123456789ab_" + "A" * 43, "tollgate token"),
    ("postgresql://app:" + "hunter2-real@db/x", "password in a URL"),
])  # fmt: skip
def test_the_scanner_would_catch_a_planted_secret(text: str, label: str) -> None:
    match = SECRET_PATTERNS[label].search(text)
    assert match is not None
    assert label != "password in a URL" or not PLACEHOLDERS.match(match.group(1))
