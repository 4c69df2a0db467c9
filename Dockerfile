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
COPY --from=build /out/friendflow /usr/local/bin/friendflow
COPY examples/rules /etc/friendflow/rules
# Queue data (embedded JetStream) lives here; mount a volume over it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/friendflow
WORKDIR /var/lib/friendflow
USER nonroot:nonroot
EXPOSE 8080 9090
ENV FRIENDFLOW_RULES=/etc/friendflow/rules \
    FRIENDFLOW_DATA=/var/lib/friendflow \
    FRIENDFLOW_ADMIN_LISTEN=0.0.0.0:9090
ENTRYPOINT ["friendflow"]
CMD ["serve"]
