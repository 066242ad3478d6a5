# Every binary of the platform in one image: `crm` (all-in-one + CLI, used by the migration
# Job) and one binary per service (the Deployments pick theirs with `command:`).
#   docker build -t crm:dev .
FROM rust:1.89-bookworm AS build
# pg_query (PostgreSQL's parser, for the migration runner) runs bindgen, which needs libclang.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY pkg pkg
COPY services services
COPY db db
COPY src src
RUN cargo build --release --locked --bins \
    && mkdir /out \
    && find target/release -maxdepth 1 -type f -perm -u+x -exec cp {} /out/ \;

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 crm && useradd --uid 10001 --gid crm --no-create-home --shell /usr/sbin/nologin crm
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
ENV BIND_ADDR=0.0.0.0 LOG_FORMAT=json
EXPOSE 8000 8080 8081 8082 8083 8084
ENTRYPOINT []
CMD ["/usr/local/bin/crm", "serve"]
