# Multi-stage build of every dmic binary into one small image; docker-compose
# runs each service from it with a different command.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.work ./
COPY proto/ proto/
COPY services/ services/
RUN cd services && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ \
      ./ingest/cmd/ingest ./validate/cmd/validate ./deidentify/cmd/deidentify ./assign/cmd/assign ./reconcile/cmd/reconcile ./load/cmd/load ./cmd/generate ./cmd/dmicctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY reference/sample/ /reference/
USER nonroot
ENTRYPOINT []
