# dmic — the two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
# A service keeps its main in its own folder (services/<service>/cmd/<service>);
# the other commands sit in services/cmd/ (docs/architecture.md, The tree).
SERVICES := ingest validate deidentify assign reconcile load
COMMANDS := broker generate dmicctl dmic devrun bench
MAINS    := $(foreach s,$(SERVICES),./$(s)/cmd/$(s)) $(addprefix ./cmd/,$(COMMANDS))
# CLICKHOUSE_ADDR is not given a default here: unset, `make run` starts its own
# ClickHouse on 9000 + -port-base and the tests start private ones; set, it names
# a running server, whose users' password files DMIC_CLICKHOUSE_SECRETS must hold
# (docs/security.md, ClickHouse).

.PHONY: all build run test test-short bench bench-micro proto lint breaking docs vet fmt clean ensure-clickhouse
BUF := $(GO) run github.com/bufbuild/buf/cmd/buf@v1.50.0

all: build

# Stamp the git revision into the binaries (shown by `dmicctl status`); the
# default -buildvcs=auto leaves it out in this workspace layout.
BUILDVCS := $(if $(wildcard .git),-buildvcs=true,)

build:
	@mkdir -p $(BIN)
	cd services && $(GO) build $(BUILDVCS) -o $(BIN)/ $(MAINS)

## run: the whole pipeline on the embedded broker and a local ClickHouse, with sample data flowing.
## RUN_ARGS passes devrun flags, e.g. a second stack beside the first:
##   make run RUN_ARGS="-port-base 1000 -clickhouse-database dmic2 -var var2 -records 0"
RUN_ARGS ?=
run: build ensure-clickhouse
	$(BIN)/devrun -bin $(BIN) -var $(CURDIR)/var -reference-dir $(CURDIR)/reference/sample $(RUN_ARGS)

## ensure-clickhouse: install clickhouse-server on Debian if it is missing (needs root).
ensure-clickhouse:
	@bash deploy/dev/ensure-clickhouse.sh

## test: every test, against the embedded broker over TCP and a real ClickHouse.
test: build vet
	cd services && $(GO) test -count=1 -timeout 20m ./...
	cd proto && $(GO) test ./...

test-short:
	cd services && $(GO) test -short -count=1 ./...

## bench: the end-to-end benchmark on a fresh private stack (BENCH_RECORDS, default 1,000,000);
## writes bench/results/latest.json and a table (docs/performance.md).
bench: build ensure-clickhouse
	$(BIN)/bench -bin $(BIN) -reference-dir $(CURDIR)/reference/sample -out $(CURDIR)/bench/results

## bench-micro: Go micro-benchmarks of each stage's per-record work.
bench-micro:
	cd services && $(GO) test -run '^$$' -bench . -benchmem ./internal/record ./validate/spec ./deidentify/didi ./assign/cam ./tools/synth ./internal/chstore

## docs: regenerate docs/specifications.md from the specification files (a test checks it is current).
docs:
	cd services && $(GO) run ./cmd/specdoc > ../docs/specifications.md

vet:
	cd services && $(GO) vet ./...
	cd proto && $(GO) vet ./...

fmt:
	gofmt -l -w services

## proto: regenerate the committed Go code from proto/ (needs protoc, protoc-gen-go, protoc-gen-go-grpc).
proto:
	cd proto && protoc -I . --go_out=. --go_opt=module=github.com/dmic-nhs/dmic/proto \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/dmic-nhs/dmic/proto dmic/v1/*.proto dmic/validation/v1/*.proto dmic/deid/v1/*.proto dmic/access/v1/*.proto dmic/assignment/v1/*.proto

## lint: buf lint of the API (buf from the Go module proxy).
lint:
	cd proto && $(BUF) lint

## breaking: buf breaking of the API against main (BREAKING_AGAINST to change).
BREAKING_AGAINST ?= ../.git\#branch=main,subdir=proto
breaking:
	cd proto && $(BUF) breaking --against '$(BREAKING_AGAINST)'

clean:
	rm -rf $(BIN) var
