# One image for the three services; the command picks one:
#   docker run tollgate:local serve ingest|processor|ledger
# Services read TOLLGATE_* variables (see docker-compose.yml and deploy/k8s/configmap.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package finds schemas/ next to services/ (services/core/schemas.py), so the source tree is kept
# as is and installed in place (-e): no copy of the schemas inside site-packages to drift.
COPY pyproject.toml ./
COPY services ./services
COPY schemas ./schemas
RUN pip install -e . \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/tollgate --create-home tollgate

USER 10001:10001
# ingest http, ingest metrics, processor metrics, ledger http, ledger metrics (defaults of docker-compose.yml)
EXPOSE 8080 9101 9102 8081 9103

ENTRYPOINT ["tollgate"]
CMD ["serve", "ingest"]
