# syntax=docker/dockerfile:1
# Multi-stage: build a static binary, ship it on distroless as a non-root user. The build
# stage runs on the builder's own platform and cross-compiles for the target's, so one
# command builds both architectures without emulation:
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t xvmbot \
#     --build-arg VERSION=$(git describe --tags --always | sed 's/^v//') \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg TREE_STATE=$(test -z "$(git status --porcelain)" && echo clean || echo dirty) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Set by buildx for each platform built (linux/amd64, linux/arm64).
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=""
ARG REVISION=""
ARG TREE_STATE=""
ARG CREATED=""
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${REVISION} -X main.date=${CREATED} -X main.treeState=${TREE_STATE}" \
      -o /out/xvmbot ./cmd/xvmbot \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="xvmbot" \
      org.opencontainers.image.description="Slack ChatOps for vSphere Advanced Cross vCenter vMotion" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/xvmbot/xvmbot" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/xvmbot /usr/local/bin/xvmbot
# The embedded NATS store (nats.data_dir: /var/lib/xvmbot) must be writable by the
# non-root user; mount a volume here in production.
COPY --from=build --chown=65532:65532 /out/data /var/lib/xvmbot
WORKDIR /var/lib/xvmbot
VOLUME ["/var/lib/xvmbot"]
USER 65532:65532
# 8080: Slack's endpoints (http.listen, http mode); 9090: /metrics, /healthz, /readyz
# (http.ops_listen, whose default is loopback: set 0.0.0.0:9090 in a container).
EXPOSE 8080 9090
# No shell in the image: the binary asks its own ops listener (127.0.0.1:9090/healthz).
HEALTHCHECK --interval=30s --timeout=10s --retries=3 CMD ["/usr/local/bin/xvmbot", "health"]
ENTRYPOINT ["/usr/local/bin/xvmbot"]
CMD ["serve", "--config", "/etc/xvmbot/xvmbot.yaml"]
