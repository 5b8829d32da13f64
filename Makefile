# ext3replay — see README.md. `make demo` and `make test` are the two set-up commands.
GO      ?= go
BIN     := bin/ext3replay
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
DEMO_IMG ?= fixtures/real/basic-ext3-4k/image.raw.zst
DEMO_LOG ?= fixtures/real/basic-ext3-4k/io.log.zst

.PHONY: all build demo test test-live docs-update lint fuzz bench fixtures accuracy clean deps

all: build

# Static (no cgo: nothing here needs it, net's resolver has its Go fallback): the dynamic loader
# cost 6.7 ms of every run's start, 33.5 -> 26.8 ms for --version (medians of 150 alternating runs).
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ext3replay

# Runs the main job on a committed real fixture.
demo: build
	$(BIN) analyze $(DEMO_IMG) $(DEMO_LOG)

# Installs what is missing (apt packages, Go modules, staticcheck); see scripts/deps.sh.
deps:
	./scripts/deps.sh

# Lint, unit and integration tests (the docs' ```console blocks are executed by
# cmd/ext3replay's TestDocsConsoleBlocks: see docs-update), then one live QEMU capture; about a
# minute on 2 cores once the packages are installed.
test: deps
	$(MAKE) --no-print-directory lint
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory test-live

# Rewrites the output shown in the docs' console blocks from what the commands print now.
docs-update:
	$(GO) test -count=1 -run 'TestDocs(ExampleVariant|ConsoleBlocks)' ./cmd/ext3replay -update

# One real capture end to end: QEMU guest -> ext3replay record -> analyze (about 10 s warm).
test-live:
	./fixtures/capture/live-smoke.sh

lint:
	@test -z "$$(gofmt -l cmd pkg internal fixtures 2>/dev/null)" || { gofmt -l cmd pkg internal fixtures; echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; \
	 elif [ -x "$$($(GO) env GOPATH)/bin/staticcheck" ]; then "$$($(GO) env GOPATH)/bin/staticcheck" ./...; \
	 else echo 'staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@v0.8.2'; fi

# Fuzz each decoder for FUZZTIME (default 20s each).
FUZZTIME ?= 20s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Benchmarks with reference measurements in the same run (see docs/performance.md).
bench: build
	./scripts/bench.sh

# Recaptures the real fixture corpus in QEMU (minutes; needs the apt packages of .ci/run).
fixtures: build
	./fixtures/capture/capture-all.sh

# Scores analyze against the ground truth of every fixture; writes docs/accuracy.md.
accuracy: build
	./scripts/accuracy.sh

clean:
	rm -rf bin
