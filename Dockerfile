# The orgaccess operator image, for builders with Docker or BuildKit:
#   docker build -t registry.example.com/platform/orgaccess:0.1.0 .
# Without a Docker daemon, scripts/release.sh builds the same image (same
# entrypoint, user, labels and files) with crane; tests/release.rs checks that
# image's config against this file.
#
# The binary links glibc, hence the distroless `cc` base (glibc, libgcc, CA
# certificates, /etc/passwd with `nonroot`, no shell). The pod runs it as
# 65532:65532 with a read-only root filesystem; it writes nothing to disk.

ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin orgaccess \
 && install -D -m 0755 target/release/orgaccess /out/orgaccess

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="orgaccess" \
      org.opencontainers.image.description="Kubernetes operator for an organization's member access: CRDs, admission webhook, controller, decision service" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/orgaccess /usr/local/bin/orgaccess
COPY LICENSE /usr/share/doc/orgaccess/LICENSE
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/orgaccess"]
