#!/usr/bin/env bash
# make bench: the standard load set against chat-server and, given a build of the
# original C++ server, against it too, in the same run on the same machine. Prints one
# table; BENCHMARKS.md records a run.
#
#   RUNS=3 make bench    repeat each measurement and report the median (default 1);
#                        k1-w1 runs three times as often (see runs_of)
#   QUICK=1 make bench   fewer messages, for a smoke test
#   ORIGINAL=/path/to/original-server make bench
#                        compare with the original: a build of the article's server
#                        with the load-test users added, which takes its port from
#                        $PORT (BENCHMARKS.md says how to build one)
#   SKIP_ATTACKS=1       leave out the attack benchmarks (bench/attacks.py)
#   ROWS="k16-w64 conns" only these rows of the table (relay names, queue, conns);
#                        receipts brings k16-w64 with it. The attacks go by SKIP_ATTACKS
#   BIN=dir              the chat-server and chat-bench to measure (default
#                        target/release): a build of another commit, to compare
#
# The relay row `receipts` is k16-w64 with receipts on for every client (chat-bench
# relay --receipts: receivers acknowledge as chat-client does, after a burst at most every
# 100 ms and at once at 128 unacknowledged; senders wait for the last RECEIVED); against chat-server only, it takes turns with k16-w64 run by run (as the
# two servers do), and its ratio is to k16-w64 of the same run.
set -uo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-1}
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

# Enough users for 256 pairs and for 10,000 idle clients: u00000 .. u19999.
for i in $(seq 0 19999); do printf 'u%05d:123456\n' "$i"; done > "$WORK/users.txt"

if [ "${QUICK:-0}" = 1 ]; then M1=2000; M16=5000; M256=200; N=1000; QUEUED=200; else M1=20000; M16=50000; M256=2000; N=10000; QUEUED=2000; fi
# name pairs window messages-per-pair
RELAYS="k1-w1 1 1 $M1
k1-w64 1 64 $M16
k1-w0 1 0 $M16
k16-w1 16 1 $((M1 / 8))
k16-w64 16 64 $M16
receipts 16 64 $M16
k16-w0 16 0 $M16
k256-w1 256 1 $((M256 / 40))
k256-w64 256 64 $M256
k256-w0 256 0 $M256"

# wanted ROW: true if ROW is to be measured (every row when ROWS is not set). A name
# that is no row is an error, not a run that quietly measures nothing.
ROWS=${ROWS:-}
known_rows="$(cut -d' ' -f1 <<< "$RELAYS" | tr '\n' ' ')queue conns"
for row in $ROWS; do
  [[ " $known_rows " == *" $row "* ]] || {
    echo "make bench: ROWS: no row $row (the rows: $known_rows)" >&2; exit 2; }
done
[[ " $ROWS " == *" receipts "* ]] && ROWS="$ROWS k16-w64" # its ratio needs the plain row
wanted() { [ -z "$ROWS" ] || [[ " $ROWS " == *" $1 "* ]]; }

ORIGINAL=${ORIGINAL:-}
if [ -n "$ORIGINAL" ]; then
  if [ ! -f "$ORIGINAL" ]; then
    echo "make bench: ORIGINAL=$ORIGINAL: no such file" >&2; exit 2
  elif [ ! -x "$ORIGINAL" ]; then
    echo "make bench: ORIGINAL=$ORIGINAL: not executable (chmod +x it?)" >&2; exit 2
  fi
else
  echo "note: measuring chat-server alone, no ratios. To compare with the original C++" \
    "server, build it with the load-test users (see BENCHMARKS.md) and run" \
    "ORIGINAL=/path/to/it make bench"
fi

PID=""
PORT=""
# start_server rust|original: a fresh server on a free port (the original must be
# restarted between runs: every client that disconnects leaves it a spinning thread).
start_server() {
  if [ "$1" = rust ]; then
    # An empty store each time: a run that failed (a receipts run whose receivers were
    # closed as slow, say) leaves messages stored, which the next run's users would get.
    rm -rf "$WORK/data"
    # Emptied here, not only by the server's redirection, which happens in the child
    # after this shell has gone on: the loop below could read the last server's port.
    : > "$WORK/server.log"
    RUST_LOG=warn,chatroom::server=info "$BIN/chat-server" --bind 127.0.0.1 --port 0 --users "$WORK/users.txt" \
      --data-dir "$WORK/data" 2> "$WORK/server.log" &
    PID=$!
    for _ in $(seq 100); do
      PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/server.log")
      [ -n "$PORT" ] && break; sleep 0.05
    done
  else
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    PORT=$PORT "$ORIGINAL" > /dev/null 2>&1 &
    PID=$!
    sleep 0.3
  fi
}
stop_server() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }

# field NAME LINE: the value of NAME=... in a RESULT line
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$2"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }

# The servers under test: chat-server, and the original when it could be built.
KINDS=rust
[ -n "$ORIGINAL" ] && [ "${SKIP_ORIGINAL:-0}" != 1 ] && KINDS="rust original"

# relay KIND NAME PAIRS WINDOW MESSAGES: one run; appends to KIND.NAME.FIELD files.
# The row `receipts` runs with --receipts.
relay() {
  local kind=$1 name=$2 line extra=()
  [ "$name" = receipts ] && extra=(--receipts)
  start_server "$kind"
  line=$(timeout 120 "$BIN/chat-bench" relay --addr "127.0.0.1:$PORT" --pairs "$3" \
    --window "$4" --messages "$5" --pid "$PID" "${extra[@]}" 2>> "$WORK/bench.err" | grep '^RESULT')
  stop_server
  echo "$kind $name: ${line:-no result (timed out or failed)}" >&2
  [ -n "$line" ] || tail -n 3 "$WORK/bench.err" | sed 's/^/    /' >&2
  if [ "$(field errors "$line")" = 0 ]; then
    for f in msgs_per_sec p50_us p99_us p999_us server_cpu_us_per_msg; do field $f "$line" >> "$WORK/$kind.$name.$f"; done
  else
    echo FAIL >> "$WORK/$kind.$name.fail"
  fi
}

# conns KIND: one run of the 10,000 idle clients
conns() {
  local kind=$1 line
  start_server "$kind"
  line=$(timeout 600 "$BIN/chat-bench" conns --addr "127.0.0.1:$PORT" --clients "$N" \
    --concurrency 64 --pid "$PID" 2>> "$WORK/bench.err" | grep '^RESULT')
  stop_server
  echo "$kind conns: ${line:-no result}" >&2
  for f in logged_in login_seconds rss_mib threads idle_cpu_pct threads_before threads_after idle_cpu_after_pct; do
    field $f "$line" >> "$WORK/$kind.conns.$f"
  done
}

# queue: one run of the mailbox cost (chat-server only: the original has no mailbox)
queue() {
  local line
  start_server rust
  line=$(timeout 120 "$BIN/chat-bench" queue --addr "127.0.0.1:$PORT" --messages "$QUEUED" \
    2>> "$WORK/bench.err" | grep '^RESULT')
  stop_server
  echo "rust queue: ${line:-no result}" >&2
  for f in per_message_us p50_us p99_us; do field $f "$line" >> "$WORK/rust.queue.$f"; done
}

# The two servers take turns on every benchmark, so that both see the same machine: on
# a shared host the background load drifts from one minute to the next.
# runs_of NAME: how many runs a figure gets. One message in flight at a time (k1-w1)
# measures the machine's scheduling as much as the server: on a shared VM its p99 swings
# from 0.1 ms to 10 ms between back-to-back runs of the same binary. It takes a couple
# of seconds, so it gets three times the runs.
runs_of() { if [ "$1" = k1-w1 ]; then echo $((RUNS * 3)); else echo "$RUNS"; fi; }

while read -r name pairs window messages; do
  # receipts runs in turns with k16-w64, below: the machine drifts between minutes, and
  # a ratio of runs taken minutes apart would measure the drift.
  [ "$name" = receipts ] && continue
  wanted "$name" || continue
  for run in $(seq "$(runs_of "$name")"); do
    for kind in $KINDS; do relay "$kind" "$name" "$pairs" "$window" "$messages"; done
    if [ "$name" = k16-w64 ] && wanted receipts; then # the original has no receipts
      relay rust receipts "$pairs" "$window" "$messages"
    fi
  done
done <<< "$RELAYS"
for run in $(seq "$RUNS"); do
  wanted queue && queue
  if wanted conns; then for kind in $KINDS; do conns "$kind"; done; fi
done

value() { # value KIND NAME FIELD: the median; FAIL if any run lost or corrupted a message
  if [ -s "$WORK/$1.$2.fail" ]; then echo "FAIL($(wc -l < "$WORK/$1.$2.fail")/$(runs_of "$2"))"; return; fi
  [ -f "$WORK/$1.$2.$3" ] && median < "$WORK/$1.$2.$3" || echo "-"
}


# cell KIND NAME: one server's msgs/s, p50 / p99 and CPU per message for a relay, or
# its failures
cell() {
  local rate; rate=$(value "$1" "$2" msgs_per_sec)
  case $rate in
    FAIL*) echo "$rate" ;;
    *) printf '%9s %6s / %-7s %5s' "$rate" "$(value "$1" "$2" p50_us)" "$(value "$1" "$2" p99_us)" \
         "$(value "$1" "$2" server_cpu_us_per_msg)" ;;
  esac
}

any_relay=false
while read -r name _; do wanted "$name" && any_relay=true; done <<< "$RELAYS"
if $any_relay; then
echo
echo "runs per figure: $RUNS$(wanted k1-w1 && echo ", k1-w1: $(runs_of k1-w1)") (median); $(nproc) cores; chat-bench on the same machine"
printf '%-9s | %-38s | %-38s | %s\n' relay "chat-server msgs/s p50/p99us cpu-us" "original msgs/s p50/p99us cpu-us" "ratio"
while read -r name _; do
  wanted "$name" || continue
  r=$(value rust "$name" msgs_per_sec); o=$(value original "$name" msgs_per_sec)
  ratio="-"; [[ "$r" =~ ^[0-9]+$ && "$o" =~ ^[0-9]+$ && "$o" -gt 0 ]] && ratio=$(awk "BEGIN {printf \"%.1fx\", $r/$o}")
  if [ "$name" = receipts ]; then # against the plain relay with the same settings
    p=$(value rust k16-w64 msgs_per_sec)
    [[ "$r" =~ ^[0-9]+$ && "$p" =~ ^[0-9]+$ && "$p" -gt 0 ]] && ratio=$(awk "BEGIN {printf \"%.2fx k16-w64\", $r/$p}")
  fi
  printf '%-9s | %-38s | %-38s | %s\n' "$name" "$(cell rust "$name")" "$(cell original "$name")" "$ratio"
done <<< "$RELAYS"
echo "cpu-us: the server's CPU time (user + system, all threads) per relayed message, counted in 10 ms ticks (a run shorter than a few ticks reads 0)"
wanted receipts && echo "receipts: k16-w64 with receipts on (every message acknowledged, every receipt checked); its ratio is to k16-w64"
echo "FAIL(n/m): n of m runs lost, duplicated, corrupted or reordered a message, or gave no result"
fi
wanted conns && echo
wanted conns && printf '%-9s | %-9s %-8s %-9s %-8s %-10s | %-13s %s\n' conns "logged_in" "login_s" "rss_MiB" threads "idle_cpu%" "threads_after" "cpu%_after"
for kind in rust original; do
  [ -f "$WORK/$kind.conns.logged_in" ] || continue
  printf '%-9s | %-9s %-8s %-9s %-8s %-10s | %-13s %s\n' "$kind" \
    "$(value $kind conns logged_in)/$N" "$(value $kind conns login_seconds)" "$(value $kind conns rss_mib)" \
    "$(value $kind conns threads)" "$(value $kind conns idle_cpu_pct)" \
    "$(value $kind conns threads_after)" "$(value $kind conns idle_cpu_after_pct)"
done
wanted queue && echo
wanted queue && echo "queued message (append, then the echo; synced within a second, --sync every-second): $(value rust queue per_message_us) us each" \
  "(p50 $(value rust queue p50_us) us, p99 $(value rust queue p99_us) us)"

# The attack benchmarks (bench/attacks.py): squatting, guessing, a trickling receiver,
# pipelined USERS, log floods, each against a fresh chat-server.
if [ "${SKIP_ATTACKS:-0}" != 1 ]; then
  echo
  if command -v python3 >/dev/null; then
    python3 bench/attacks.py "$BIN/chat-server" "$WORK/users.txt"
  else
    echo "attacks: skipped, python3 not found"
  fi
fi
