# neurospec in a container: `docker build -t neurospec .`, then
#   docker run --rm -v "$PWD":/study -w /study neurospec run study.toml
# Stage 1 builds the release binary with the locked dependency versions; stage 2 is a slim
# Debian with only that binary (and the shipped studies and schema, for reference).
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY studies studies
COPY schemas schemas
RUN cargo build --release --locked && strip target/release/neurospec

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /src/target/release/neurospec /usr/local/bin/neurospec
COPY --from=builder /src/studies /opt/neurospec/studies
COPY --from=builder /src/schemas /opt/neurospec/schemas
# Files a study writes belong to the user running the container (`docker run --user`).
WORKDIR /study
ENTRYPOINT ["neurospec"]
CMD ["--help"]
