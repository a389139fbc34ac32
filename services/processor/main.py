"""`tollgate serve processor`: one processor worker with its metrics endpoint; stops on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping

from services.processor.agreements_view import AgreementsView
from services.processor.app import bootstrap, connection
from services.processor.gc_freeze import freeze_start_up_objects
from services.processor.health import Health, serve
from services.processor.metrics import ProcessorMetrics
from services.processor.readiness import used_by, wait_for_leaders
from services.processor.restart import restart
from services.processor.settings import ProcessorSettings
from services.processor.violations import ViolationsView

log = logging.getLogger(__name__)


def group_less_consumer(settings: ProcessorSettings) -> Callable[[], object]:
    """A factory of kafka-python consumers without a group (the views read whole topics)."""

    def consumer() -> object:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **settings.kafka_security.kafka_python(),
        )

    return consumer


def view_consumer(settings: ProcessorSettings) -> Callable[[], object]:
    """A factory of confluent-kafka consumers for the views (agreements, alerts): assigned partitions
    only, so their group id names them and is never joined; read_committed; no offsets committed."""
    def consumer() -> object:
        from confluent_kafka import Consumer  # type: ignore[import-untyped]

        return Consumer({
            **connection(settings).as_librdkafka_dict(),
            "group.id": f"{settings.app_id}-view-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
        })  # fmt: skip

    return consumer


def run(environ: Mapping[str, str]) -> None:
    """Run a worker until it is told to stop (quix turns SIGTERM into a graceful stop with a commit);
    after a failure, start afresh in the same process (restart.py)."""
    settings = ProcessorSettings.from_env(environ)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = ProcessorMetrics(settings.metrics_max_licensees)
    health = Health()
    serve(settings.metrics_port, metrics.registry, health, before_scrape=metrics.prepare)
    log.info(
        "processor %s: /metrics, /healthz, /readyz on 127.0.0.1:%d, kafka %s",
        settings.app_id,
        settings.metrics_port,
        settings.kafka_bootstrap,
    )
    consumers = group_less_consumer(settings)
    views = view_consumer(settings)
    agreements = AgreementsView(views, settings.agreements_topic)
    violations = ViolationsView(views, settings.alerts_topic, metrics)
    s = settings
    names = (s.input_topic, s.alerts_topic, s.billable_topic, s.dlq_topic, s.agreements_topic)
    wanted = used_by(s.app_id, names)
    worker = bootstrap(
        settings, metrics, agreements, health=health, violations=violations,
        topics_ready=lambda: wait_for_leaders(consumers, wanted, s.agreements_timeout_seconds),
    )  # fmt: skip
    log.info("froze %d start-up objects out of full collections", freeze_start_up_objects())
    started = time.monotonic()
    try:
        worker.run()
    except Exception as exc:  # transient or not, the worker comes back; its open transaction aborts
        restart(environ, started, exc)
