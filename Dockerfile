# scimform in a container: build with Rust and a C compiler (SQLite and the TLS library are
# compiled in), run as a non-root user with no shell in the way. The state lives in PostgreSQL
# (SCIMFORM_STATE=postgres://…) or on a mounted volume (--state /var/lib/scimform/state.db).
#
#   docker build -t scimform:0.1.0 .
#   docker run --rm -e SCIM_TOKEN -v "$PWD/identity:/etc/scimform:ro" scimform:0.1.0 \
#       plan -f /etc/scimform/scimform.yaml --no-state
FROM rust:1.89-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/scimform

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/scimform /usr/local/bin/scimform
# A numeric user: no account to create, never root.
USER 65532:65532
WORKDIR /var/lib/scimform
ENTRYPOINT ["/usr/local/bin/scimform"]
CMD ["--help"]
