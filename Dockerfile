# fakewatch image for the watcher, CPU workers, migrations and one-shot scans.
#   docker build -t fakewatch .
# The GPU worker builds the same project on TensorFlow's GPU image:
#   docker build --build-arg BASE=tensorflow/tensorflow:2.21.0-gpu --build-arg TF_EXTRA=gpu -t fakewatch-gpu .
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG TF_EXTRA=cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    FAKEWATCH_HOME=/data

RUN useradd --create-home --uid 1000 fakewatch && mkdir -p /data /watch && chown fakewatch /data /watch
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fakewatch ./fakewatch
# the TensorFlow flavour is the extra named by the build argument (the GPU base image already has it)
RUN pip install ".[${TF_EXTRA},monitor]"

USER fakewatch
VOLUME ["/data"]
ENTRYPOINT ["fakewatch"]
CMD ["--help"]
