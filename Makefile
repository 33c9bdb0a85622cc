# vkey: a software FIDO2 security key for Linux.
# `make run` builds and starts a virtual key; `make test` runs everything CI runs.

GO          ?= go
BIN         ?= bin/vkey
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 5s
RUNFLAGS    ?=

.PHONY: all build run deps test unit race libfido2 fuzz vmtest bench lint man clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vkey

## run: build and start a virtual key in the foreground (Ctrl-C stops it).
run: build
	./$(BIN) run $(RUNFLAGS)

## deps: install the packages the tests need (apt-get, when root is available).
deps:
	@bash .ci/deps

## test: everything CI runs.
test: deps lint unit race libfido2 fuzz vmtest

unit:
	$(GO) test -count=1 -timeout 15m ./...

## race: the packages that run goroutines of their own, under the race detector.
race:
	$(GO) test -race -count=1 -timeout 10m ./hid ./ctap2/... ./keystore ./internal/control ./internal/presence ./internal/procout

## libfido2: go-libfido2 (cgo, libfido2-dev) drives a running vkey as an independent client.
libfido2:
	@if [ -f /usr/include/fido.h ] && command -v gcc >/dev/null 2>&1; then \
	  CGO_ENABLED=1 $(GO) vet -tags libfido2 ./internal/libfido2test && \
	  CGO_ENABLED=1 $(GO) test -count=1 -timeout 5m -tags libfido2 ./internal/libfido2test; \
	else echo "vkey: skipping the go-libfido2 tests: they need gcc and libfido2-dev (make deps installs them)"; fi

fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) bash .ci/fuzz

vmtest: build
	VKEY_VM=1 $(GO) test -count=1 -timeout 10m -run '^TestVM' ./cmd/vkey ./internal/vmtest

## bench: the speed goals, as Go benchmarks.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || GOFLAGS= $(GO) install $(STATICCHECK)
	$(GOBIN)/staticcheck ./...

man: build
	./$(BIN) man --dir docs/man

clean:
	rm -rf bin build
