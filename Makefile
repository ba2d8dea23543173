# chat-server: a wire-compatible Rust replacement for the original C++ chat server.
#
#   make              build the release binaries
#   make run          start the server on port 12345 with the six built-in users
#                     (ARGS="--port 23456 --users contrib/users.txt" passes flags)
#   make client NAME=似末 [PASSWORD=123456] [ADDR=127.0.0.1:12345]
#                     the companion terminal client (ADDR: the server's HOST:PORT),
#                     under rlwrap (line editing, history) when it is installed
#   make test         every test: unit tests and the TCP tests in tests/; the last line
#                     is the total, `make test: N passed, N failed, N skipped` (the
#                     log: TEST_LOG)
#   make exercises    check that each exercise of docs/TOUR.md fails as it says (its
#                     patch in docs/exercises/ applied to a copy of the tree; slow)
#   make lint         rustfmt and clippy, warnings as errors
#   make doc          the API documentation, warnings as errors
#   make mutants      mutation testing (cargo-mutants) of the modules that parse, bound
#                     and store, against their unit tests, and of the receipts extension
#                     with its TCP tests too (slow: see docs/TESTING.md)
#   make bench        the load benchmarks (see BENCHMARKS.md; ORIGINAL=path compares
#                     with your build of the original C++ server)
#   make install      install both binaries under PREFIX (default /usr/local; DESTDIR
#                     is honoured), with the example users file, the systemd unit
#                     (whose ExecStart names PREFIX/bin/chat-server), the Wireshark
#                     dissector, and the READMEs with the documents they link to
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
# Everything `make test` printed, kept for reading after its closing line.
TEST_LOG := target/make-test.log
DOCDIR = $(DESTDIR)$(PREFIX)/share/doc/chat-server
# What the READMEs link to, installed beside them at the same relative paths, so that
# the installed README's links lead somewhere.
LINKED_DOCS = BENCHMARKS.md docs/PROTOCOL.md docs/PROTOCOL.zh-CN.md docs/TOUR.md \
	docs/TOUR.zh-CN.md docs/TESTING.md examples/minimal.rs
# The systemd unit in contrib/ runs the server from the default PREFIX; `make install`
# writes its own PREFIX there instead (without DESTDIR, which is only where files are
# staged), so that the unit it installs runs the server it installs.
UNIT_DEFAULT_EXEC := ExecStart=/usr/local/bin/chat-server
UNIT_EXEC = ExecStart=$(PREFIX)/bin/chat-server

# Each client holds one descriptor: raise the soft limit to the hard one where the shell
# allows, so that thousands of clients fit (see "Holding 10,000 clients" in README.md).
RAISE_FD_LIMIT = hard=$$(ulimit -Hn); [ "$$hard" = unlimited ] && hard=1048576; \
	ulimit -n "$$hard" 2>/dev/null || true

.PHONY: all build run client test exercises lint doc bench mutants install clean

all: build

build:
	$(CARGO) build --release --bins

run: build
	@$(RAISE_FD_LIMIT); exec $(RELEASE)/chat-server $(ARGS)

# The client under rlwrap when it is installed (Debian: apt-get install rlwrap): line
# editing (Left, Right, Home, End), history (Up, Down, Ctrl-R; kept in
# ~/.chat-client_history) and the line being typed redrawn whole below each message
# that arrives. Without it the client still works: the terminal's own line editing
# (Backspace only), and a message arriving mid-line hides what was typed (Ctrl-R shows
# it again; it is sent as typed).
CLIENT_COMMAND = $(RELEASE)/chat-client --addr "$(ADDR)" "$(NAME)" $(if $(PASSWORD),"$(PASSWORD)")
client: build
	@if [ -z "$(NAME)" ]; then echo "usage: make client NAME=似末 [PASSWORD=123456]"; exit 2; fi
	@if command -v rlwrap >/dev/null 2>&1; then exec rlwrap $(CLIENT_COMMAND); fi; \
	echo "(rlwrap is not installed: no line editing or history; apt-get install rlwrap)" >&2; \
	exec $(CLIENT_COMMAND)

# cargo's own last lines are the count of the last target it ran (the example's
# `0 passed`): the closing line sums every `test result:` line instead, in the plain form
# CI reads; --no-fail-fast runs every target even after one fails, so that it is the
# total. The exit status stays cargo's, not tee's (pipefail needs bash).
TEST_COMMAND = $(CARGO) test --release --all-targets --no-fail-fast
test: SHELL := /bin/bash
test:
	@mkdir -p $(dir $(TEST_LOG))
	@echo "$(TEST_COMMAND) 2>&1 | tee $(TEST_LOG)"
	@set -o pipefail; $(TEST_COMMAND) 2>&1 | tee $(TEST_LOG); \
	status=$$?; \
	awk '/^test result:/ { for (i = 1; i < NF; i++) { \
		if ($$(i + 1) ~ /^passed;?$$/) passed += $$i; \
		if ($$(i + 1) ~ /^failed;?$$/) failed += $$i; \
		if ($$(i + 1) ~ /^ignored;?$$/) ignored += $$i } } \
	END { printf "make test: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' $(TEST_LOG); \
	exit $$status

exercises:
	./docs/exercises/check.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

bench: build
	@$(RAISE_FD_LIMIT); ./bench/run.sh

# The modules whose every line a unit test should notice breaking (docs/TESTING.md).
MUTATED = src/frame_reader.rs src/protocol.rs src/users.rs src/slots.rs \
	src/login_throttle.rs src/log_limit.rs src/mailbox.rs src/mailbox_format.rs \
	src/message_id.rs src/descriptors.rs
# The receipts extension and the routing it plugs into are proven over TCP as much as by
# unit tests: their mutants run tests/receipts.rs, tests/store_first.rs and
# tests/bench.rs too (results in mutants-receipts/mutants.out/).
MUTATED_WITH_TCP_TESTS = src/receipts.rs src/routing.rs
# Either list can be narrowed or emptied on the command line: make mutants
# MUTATED=src/users.rs MUTATED_WITH_TCP_TESTS= ; MUTANTS_ARGS adds cargo-mutants flags.

mutants:
	@command -v cargo-mutants >/dev/null || \
		{ echo "make mutants needs cargo-mutants: cargo install cargo-mutants"; exit 2; }
	@# Both runs, whatever the first found; the status says whether either missed one.
	status=0; \
	$(if $(strip $(MUTATED)),$(CARGO) mutants $(foreach file,$(MUTATED),--file $(file)) \
		--timeout 60 $(MUTANTS_ARGS) -- --lib || status=$$?;) \
	$(if $(strip $(MUTATED_WITH_TCP_TESTS)),$(CARGO) mutants \
		$(foreach file,$(MUTATED_WITH_TCP_TESTS),--file $(file)) --timeout 120 \
		--output mutants-receipts $(MUTANTS_ARGS) -- --lib --test receipts --test store_first \
		--test bench \
		|| status=$$?;) \
	exit $$status

install: build
	install -Dm755 $(RELEASE)/chat-server $(DESTDIR)$(PREFIX)/bin/chat-server
	install -Dm755 $(RELEASE)/chat-client $(DESTDIR)$(PREFIX)/bin/chat-client
	install -Dm644 contrib/users.txt $(DOCDIR)/users.example.txt
	sed 's|^$(UNIT_DEFAULT_EXEC) |$(UNIT_EXEC) |' contrib/chat-server.service \
		>$(DOCDIR)/chat-server.service
	@grep -qF '$(UNIT_EXEC) ' $(DOCDIR)/chat-server.service || \
		{ echo "make install: contrib/chat-server.service has no line $(UNIT_DEFAULT_EXEC) ... to point at $(PREFIX)"; exit 1; }
	chmod 644 $(DOCDIR)/chat-server.service
	install -Dm644 contrib/chatroom.lua $(DOCDIR)/chatroom.lua
	install -Dm644 README.md $(DOCDIR)/README.md
	install -Dm644 README.zh-CN.md $(DOCDIR)/README.zh-CN.md
	for doc in $(LINKED_DOCS); do install -Dm644 "$$doc" "$(DOCDIR)/$$doc" || exit 1; done

# Build output only: `data/` (the default --data-dir) holds queued messages, which a
# build target has no business deleting.
clean:
	$(CARGO) clean
