# chat-server: a wire-compatible Rust replacement for the original C++ chat server.
#
#   make              build the release binaries
#   make run          start the server on port 12345 with the six built-in users
#                     (ARGS="--port 23456 --users contrib/users.txt" passes flags)
#   make client NAME=似末 [PASSWORD=123456] [ADDR=127.0.0.1:12345]
#                     the companion terminal client (ADDR: the server's HOST:PORT)
#   make test         every test: unit tests and the TCP tests in tests/
#   make lint         rustfmt and clippy, warnings as errors
#   make doc          the API documentation, warnings as errors
#   make bench        the load benchmarks (see BENCHMARKS.md; ORIGINAL=path compares
#                     with your build of the original C++ server)
#   make install      install both binaries under PREFIX (default /usr/local; DESTDIR
#                     is honoured), with the example users file, the systemd unit and
#                     the Wireshark dissector
#   make clean        remove build output (never the data directory: it holds users'
#                     messages)

CARGO ?= cargo
ARGS ?=
NAME ?=
PASSWORD ?=
ADDR ?= 127.0.0.1:12345
PREFIX ?= /usr/local
DESTDIR ?=
RELEASE := target/release
DOCDIR = $(DESTDIR)$(PREFIX)/share/doc/chat-server

# Each client holds one descriptor: raise the soft limit to the hard one where the shell
# allows, so that thousands of clients fit (see "Holding 10,000 clients" in README.md).
RAISE_FD_LIMIT = hard=$$(ulimit -Hn); [ "$$hard" = unlimited ] && hard=1048576; \
	ulimit -n "$$hard" 2>/dev/null || true

.PHONY: all build run client test lint doc bench install clean

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

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

bench: build
	@$(RAISE_FD_LIMIT); ./bench/run.sh

install: build
	install -Dm755 $(RELEASE)/chat-server $(DESTDIR)$(PREFIX)/bin/chat-server
	install -Dm755 $(RELEASE)/chat-client $(DESTDIR)$(PREFIX)/bin/chat-client
	install -Dm644 contrib/users.txt $(DOCDIR)/users.example.txt
	install -Dm644 contrib/chat-server.service $(DOCDIR)/chat-server.service
	install -Dm644 contrib/chatroom.lua $(DOCDIR)/chatroom.lua
	install -Dm644 README.md $(DOCDIR)/README.md

# Build output only: `data/` (the default --data-dir) holds queued messages, which a
# build target has no business deleting.
clean:
	$(CARGO) clean
