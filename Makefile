# vkey: a software FIDO2 security key for Linux.
# `make run` builds and starts a virtual key; `make test` runs everything CI runs.

GO          ?= go
BIN         ?= bin/vkey
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# An execution count, not a duration: a -fuzztime duration can end in
# "context deadline exceeded" with no failing input (golang/go#75804, fixed
# in Go 1.27). 25000 runs take about 5 s per target on a CI machine.
FUZZTIME    ?= 25000x
RUNFLAGS    ?=
# Where make test collects the per-client summary (internal/clientsummary).
SUMMARYDIR  ?= $(CURDIR)/build/clients
# Exported to every test process when set (make test sets it): go test
# alone writes no summary.
ifdef VKEY_CLIENT_SUMMARY
export VKEY_CLIENT_SUMMARY
endif
# make install: where Debian puts each part (PREFIX=/usr for a package).
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man/man1
SYSTEMDUSERDIR ?= $(PREFIX)/lib/systemd/user
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# udev reads /usr/lib/udev/rules.d (packages) and /etc/udev/rules.d (local
# admin), never /usr/local.
ifeq ($(PREFIX),/usr)
UDEVRULESDIR ?= /usr/lib/udev/rules.d
else
UDEVRULESDIR ?= /etc/udev/rules.d
endif
DEBVERSION  ?= $(shell git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//;s/-/+/g' || true)

.PHONY: all build run deps test unit race libfido2 fuzz vmtest bench lint man install deb packagetest clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vkey

## run: build and start a virtual key in the foreground (Ctrl-C stops it).
run: build
	./$(BIN) run $(RUNFLAGS)

## deps: install the packages the tests need (apt-get, when root is available; npm for testdata/node;
## python-fido2 2.x from Debian sid into .cache/pyfido2).
deps:
	@bash .ci/deps
	@bash .ci/deps-node
	@bash .ci/deps-pyfido2

## test: everything CI runs, then the client summary: one line per
## independent client a test proved against vkey (PASS, FAIL or SKIP with
## why), collected in $(SUMMARYDIR) through VKEY_CLIENT_SUMMARY
## (internal/clientsummary). Printed even when a step failed.
TESTSTEPS   ?= deps lint unit race libfido2 packagetest fuzz vmtest
test:
	@rm -rf $(SUMMARYDIR) && mkdir -p $(SUMMARYDIR)
	@status=0; for step in $(TESTSTEPS); do \
	  $(MAKE) --no-print-directory $$step VKEY_CLIENT_SUMMARY=$(SUMMARYDIR) || { status=$$?; echo "vkey: make $$step failed"; break; }; \
	done; bash .ci/summary $(SUMMARYDIR); exit $$status

unit:
	$(GO) test -count=1 -timeout 15m ./...

## race: the packages that run goroutines of their own, under the race
## detector (the client summary counts their tests once, from make unit).
race:
	VKEY_CLIENT_SUMMARY= $(GO) test -race -count=1 -timeout 10m ./hid ./ctap2/... ./keystore ./internal/control ./presence ./internal/procout .

## libfido2: go-libfido2 (cgo, libfido2-dev) drives a running vkey as an independent client.
libfido2:
	@if [ -f /usr/include/fido.h ] && command -v gcc >/dev/null 2>&1; then \
	  CGO_ENABLED=1 $(GO) vet -tags libfido2 ./internal/libfido2test && \
	  CGO_ENABLED=1 $(GO) test -count=1 -timeout 5m -tags libfido2 ./internal/libfido2test; \
	else echo "vkey: skipping the go-libfido2 tests: they need gcc and libfido2-dev (make deps installs them)"; \
	  bash .ci/summary --write SKIP "go-libfido2, pty" "gcc or libfido2-dev is missing (make deps installs them)"; fi

fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) bash .ci/fuzz

## vmtest: the kernel path and the browsers in qemu guests, one package at a
## time (-p 1): one qemu at a time.
vmtest: build
	VKEY_VM=1 $(GO) test -p 1 -count=1 -timeout 30m -run '^TestVM' ./cmd/vkey ./internal/vmtest ./internal/browsertest

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

## install: the binary, udev rules, systemd user unit, man pages and shell
## completions, under DESTDIR and PREFIX (default /usr/local).
install:
	CGO_ENABLED=0 $(GO) build -trimpath -o build/install/vkey ./cmd/vkey
	rm -rf build/install/man && build/install/vkey man --dir build/install/man >/dev/null
	install -Dm0755 build/install/vkey $(DESTDIR)$(BINDIR)/vkey
	install -d $(DESTDIR)$(MANDIR)
	for f in build/install/man/*.1; do gzip -9n -c $$f > $(DESTDIR)$(MANDIR)/$$(basename $$f).gz; done
	build/install/vkey udev-rules > build/install/70-vkey.rules
	install -Dm0644 build/install/70-vkey.rules $(DESTDIR)$(UDEVRULESDIR)/70-vkey.rules
	build/install/vkey systemd-unit --bin $(BINDIR)/vkey > build/install/vkey.service
	install -Dm0644 build/install/vkey.service $(DESTDIR)$(SYSTEMDUSERDIR)/vkey.service
	build/install/vkey completion bash > build/install/vkey.bash
	build/install/vkey completion zsh > build/install/_vkey
	build/install/vkey completion fish > build/install/vkey.fish
	install -Dm0644 build/install/vkey.bash $(DESTDIR)$(BASHCOMPDIR)/vkey
	install -Dm0644 build/install/_vkey $(DESTDIR)$(ZSHCOMPDIR)/_vkey
	install -Dm0644 build/install/vkey.fish $(DESTDIR)$(FISHCOMPDIR)/vkey.fish

## deb: a Debian package built with dpkg-deb, in build/.
deb:
	@DEBVERSION="$(DEBVERSION)" GO="$(GO)" bash .ci/deb

## packagetest: make deb, install it into a scratch root with dpkg, run its vkey doctor.
packagetest:
	@GO="$(GO)" bash .ci/packagetest

clean:
	rm -rf bin build
