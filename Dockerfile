# syntax=docker/dockerfile:1
#
# One Dockerfile for all five services; the SERVICE build argument picks the binary:
#
#   docker build --build-arg SERVICE=rating-service -t rating-service .
#
# docker-compose.yml builds it five times. Every stage before `pick` is identical for all five,
# so BuildKit builds the workspace once and the five images differ only in their last layer.

ARG RUST_VERSION=1.95

# cargo-chef splits "build the dependencies" (slow, changes rarely) from "build our code".
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# The same package selection in both steps, so dependencies resolve to the same features and
# the cooked layer is reused as it is (a whole-workspace cook would build some with others).
ARG PACKAGES="-p user-service -p product-service -p metadata-service -p rating-service -p movie-service"
COPY --from=planner /src/recipe.json recipe.json
# The dependency layer: cached until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json $PACKAGES
COPY . .
RUN cargo build --release --locked $PACKAGES

FROM builder AS pick
ARG SERVICE
RUN test -n "$SERVICE" || { echo "set --build-arg SERVICE=<service name>" >&2; exit 1; } \
 && cp "target/release/$SERVICE" /service

# Distroless: glibc, CA certificates and a non-root user (65532), no shell, no package manager.
# The binary's own `healthcheck` subcommand replaces curl for health checks.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=pick /service /usr/local/bin/service
USER nonroot:nonroot
# Exec form: the service is PID 1 and receives docker's SIGTERM itself (it handles it: deregister,
# drain, stop). It listens on 0.0.0.0 and advertises the container's own address to Consul.
ENTRYPOINT ["/usr/local/bin/service"]
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/service", "healthcheck"]
