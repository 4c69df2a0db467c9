# syntax=docker/dockerfile:1
# Multi-stage: build a static binary, ship it alone on distroless (no shell,
# no package manager, non-root). No Docker engine runs where this project is
# developed, so this file is reviewed but not built here: see docs/operations.md.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/friendflow ./cmd/friendflow \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
# Build arguments end at their stage: declared again for the labels.
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=
# https://github.com/opencontainers/image-spec/blob/main/annotations.md
LABEL org.opencontainers.image.title="friendflow" \
      org.opencontainers.image.description="Automates what happens when people become friends in Tencent Cloud IM: callbacks matched against YAML rules, actions run through a durable queue" \
      org.opencontainers.image.source="https://github.com/friendflow/friendflow" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/friendflow /usr/local/bin/friendflow
# No rules in the image (TestImageShipsNoRules): a forgotten mount must fail the start ("mount a
# directory of rule files"), not serve example rules to real users. Mount
# them at /etc/friendflow/rules (a ConfigMap in Kubernetes).
# Queue data (embedded JetStream) lives here; mount a volume over it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/friendflow
WORKDIR /var/lib/friendflow
# Numeric, the distroless nonroot user: Kubernetes can verify runAsNonRoot
# only for a numeric USER (the manifests set runAsUser: 65532 as well).
USER 65532:65532
EXPOSE 8080 9090
# The admin API listens on every interface so the kubelet and Prometheus
# reach /healthz, /readyz and /metrics; serve then refuses to start without
# FRIENDFLOW_ADMIN_TOKEN_FILE (or an explicit FRIENDFLOW_ADMIN_INSECURE=true).
ENV FRIENDFLOW_RULES=/etc/friendflow/rules \
    FRIENDFLOW_DATA=/var/lib/friendflow \
    FRIENDFLOW_ADMIN_LISTEN=0.0.0.0:9090
ENTRYPOINT ["friendflow"]
CMD ["serve"]
