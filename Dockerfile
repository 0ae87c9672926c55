# syntax=docker/dockerfile:1
#
# The `autoenc` command line (train, score, stream, ...) in a small runtime image.
#
#   docker build -t autoenc .
#   docker run --rm autoenc --help
#
# The build compiles librdkafka from source (rdkafka-sys: OpenSSL and zlib from the system, perl for its
# configure step) and links the system OpenBLAS (ndarray-linalg's `openblas-system`).

############################
# Builder
############################
FROM rust:1.95-bookworm AS builder

RUN apt-get update \
    && apt-get install -y --no-install-recommends libopenblas-dev libssl-dev zlib1g-dev perl pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# The whole workspace manifest must resolve: the root package declares [[bench]] and [[test]] targets whose
# files must exist, and the members udfs/datafusion, udfs/sql-shell and udfs/polars declare their own
# bins, tests and benches. Only the `autoenc` binary is compiled here (the cluster's binaries below).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
COPY examples ./examples
COPY udfs ./udfs

# Cache mounts keep the registry and the target directory between builds; the binary is copied out of
# the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release -p autoenc --bin autoenc \
    && install -D -m 0755 target/release/autoenc /out/autoenc

############################
# The Ballista cluster's image (`docker build --target cluster`): `autoenc-ballista` (scheduler and
# executor roles) and the `autoenc-sql` shell, built in a stage of their own so that the default image
# above does not compile Ballista. Defined before `runtime` so that a plain `docker build .` still ends
# at the `autoenc` image.
############################
FROM builder AS cluster-builder

RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release -p autoenc-ballista --bin autoenc-ballista -p autoenc-sql --bin autoenc-sql \
    && install -D -m 0755 target/release/autoenc-ballista /out/autoenc-ballista \
    && install -D -m 0755 target/release/autoenc-sql /out/autoenc-sql

FROM debian:bookworm-slim AS cluster

RUN apt-get update \
    && apt-get install -y --no-install-recommends libopenblas0 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# The same user and directories as the `autoenc` image, so the two share the `models` volume.
RUN groupadd --system --gid 10001 autoenc \
    && useradd --system --uid 10001 --gid autoenc --home-dir /home/autoenc --create-home --shell /usr/sbin/nologin autoenc \
    && mkdir -p /models /data \
    && chown autoenc:autoenc /models /data

COPY --from=cluster-builder /out/autoenc-ballista /out/autoenc-sql /usr/local/bin/

USER autoenc:autoenc
WORKDIR /home/autoenc

# Scheduler gRPC + REST API; executor Arrow Flight, gRPC and health probes.
EXPOSE 50050 50051 50052 50053

ENTRYPOINT ["autoenc-ballista"]
CMD ["--help"]

############################
# Runtime
############################
FROM debian:bookworm-slim AS runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends libopenblas0 libssl3 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root user. /models and /data exist (owned by it) so that named volumes mounted there start
# out writable by the user (Docker copies the image directory's ownership into a new named volume).
RUN groupadd --system --gid 10001 autoenc \
    && useradd --system --uid 10001 --gid autoenc --home-dir /home/autoenc --create-home --shell /usr/sbin/nologin autoenc \
    && mkdir -p /models /data /config \
    && chown autoenc:autoenc /models /data

COPY --from=builder /out/autoenc /usr/local/bin/autoenc

USER autoenc:autoenc
WORKDIR /home/autoenc

# `autoenc stream` serves Prometheus /metrics and /health here when metrics_addr = "0.0.0.0:9464".
EXPOSE 9464

ENTRYPOINT ["autoenc"]
CMD ["--help"]
