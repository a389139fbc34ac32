"""The local stack: Kafka (KRaft), PostgreSQL, Prometheus and Alertmanager as processes on free ports."""

from services.stack.config import StackConfig
from services.stack.errors import PartFailed, StackError
from services.stack.local import LocalStack
from services.stack.state import StackInfo

__all__ = ["LocalStack", "PartFailed", "StackConfig", "StackError", "StackInfo"]
