# chat-server: a wire-compatible Rust replacement for the original C++ chat server.
#
#   make              build the release binaries
#   make run          start the server on port 12345 with the six built-in users
#                     (ARGS="--port 0 --users users.txt" passes flags)
#   make client NAME=似末 [PASSWORD=123456] [ADDR=127.0.0.1:12345]
#                     the companion terminal client
#   make test         every test: unit tests and the TCP tests in tests/
#   make lint         rustfmt and clippy, warnings as errors
#   make bench        the load benchmarks (see BENCHMARKS.md)
#   make clean        remove build output

CARGO ?= cargo
ARGS ?=
NAME ?=
PASSWORD ?=
ADDR ?= 127.0.0.1:12345
RELEASE := target/release

# Each client holds one descriptor: raise the soft limit to the hard one where the shell
# allows, so that thousands of clients fit (see "Holding 10,000 clients" in README.md).
RAISE_FD_LIMIT = hard=$$(ulimit -Hn); [ "$$hard" = unlimited ] && hard=1048576; \
	ulimit -n "$$hard" 2>/dev/null || true

.PHONY: all build run client test lint bench clean

all: build

build:
	$(CARGO) build --release --bins

run: build
	@$(RAISE_FD_LIMIT); exec $(RELEASE)/chat-server $(ARGS)

client: build
	@if [ -z "$(NAME)" ]; then echo "usage: make client NAME=似末 [PASSWORD=123456]"; exit 2; fi
	@exec $(RELEASE)/chat-client --addr "$(ADDR)" "$(NAME)" $(if $(PASSWORD),"$(PASSWORD)")

test:
	$(CARGO) test --release --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: build
	@$(RAISE_FD_LIMIT); ./bench/run.sh

clean:
	$(CARGO) clean
	rm -rf data
