# The livemig operator image: `livemig operator run` as the entry point.
#
#   docker build -t livemig:0.1.0 .
#
# Multi-stage: the wheel is built in the first stage; the final stage installs it (and its dependencies, from PyPI)
# into a virtual environment and carries no compiler, no build tool and no source tree. It runs as a non-root user
# with a read-only root filesystem (the chart mounts nothing writable: the operator writes no files).
# Not built in this project's CI (no Docker engine there); tests/integration/test_image.py checks what can be checked
# without Docker: the wheel builds and `livemig operator run --help` works from it in a fresh virtual environment.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip install --no-cache-dir --upgrade pip build \
 && python -m build --wheel --outdir /dist .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/livemig/bin:$PATH
COPY --from=build /dist/*.whl /tmp/
RUN python -m venv /opt/livemig \
 && /opt/livemig/bin/pip install --no-cache-dir /tmp/*.whl \
 && rm -f /tmp/*.whl \
 && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin livemig
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["livemig", "operator", "run"]
CMD ["--log-format", "json"]
