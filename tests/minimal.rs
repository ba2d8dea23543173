//! The first step, `examples/minimal.rs`, passes the same wire tests as the full server
//! for the original's valid exchanges (tests/common/exchanges.rs): it is the design in
//! its plainest form, not a different protocol.
//!
//! Each run of this test builds the example first (`cargo build --example minimal`,
//! once per test process), so the tests always run the example's current source: a
//! learner who edits `examples/minimal.rs` (exercise 6 of docs/TOUR.md) tests the edit,
//! not an older build. Each test starts it on a free port.

mod common;

use common::child::cpu_ticks;
use common::minimal::{Minimal, example_binary};
use common::{FEEDBACK_LEN, PASSWORD, READ_TIMEOUT, connect, ints, login_frame, read_n, send};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The descriptor limit of the example in the test of running out: its three standard
/// streams, its listener, and twelve clients.
const DESCRIPTOR_LIMIT: usize = 16;
/// Clients opened at once against that limit: more than it has descriptors for, so that
/// the rest wait in the listener's queue and `accept` fails (EMFILE).
const CLIENTS: usize = 30;
/// How long the example's CPU time is watched while it has no descriptor free.
const CPU_WINDOW: Duration = Duration::from_secs(1);
/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;
/// At most this share of one core over the window: a loop that retries `accept` at once
/// takes all of it (1.99 s of CPU in 2 s before the back-off), a back-off almost none.
const MOST_CPU_PERCENT: u64 = 10;
/// How often the test looks at the example's open descriptors while it waits for it to
/// run out.
const POLL: Duration = Duration::from_millis(10);

exchange_tests!(Minimal::start());

/// The example as a script runs it, to completion: its exit status and its stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(example_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the minimal example");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[test]
fn a_bad_port_argument_exits_2_with_the_usage() {
    for port in ["abc", "-1", "70000"] {
        let (code, stderr) = run_to_exit(&[port]);
        assert_eq!(code, Some(2), "{port}: {stderr}");
        assert!(
            stderr.contains("usage: cargo run --example minimal"),
            "{stderr}"
        );
    }
}

#[test]
fn a_port_it_cannot_listen_on_exits_non_zero() {
    // The example listens on every interface: hold the same port there first.
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, stderr) = run_to_exit(&[&port]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on port {port}")),
        "{stderr}"
    );
}

/// Descriptors the process `pid` has open now.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// The soft descriptor limit of the process `pid`, as its limits file writes it.
fn soft_descriptor_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a descriptor limit");
    line.split_whitespace().nth(3).unwrap().to_string()
}

/// With no descriptor free, `accept` fails at once for as long as clients wait in the
/// queue: the example rests between tries instead of spinning a core, and once clients
/// leave it accepts and serves the next one.
#[test]
fn with_no_descriptor_free_the_example_rests_instead_of_spinning_and_serves_again_later() {
    let minimal =
        Minimal::start_through_shell(&format!("ulimit -n {DESCRIPTOR_LIMIT} 2>/dev/null;"));
    let pid = minimal.pid();
    let soft = soft_descriptor_limit(pid);
    if soft != DESCRIPTOR_LIMIT.to_string() {
        eprintln!(
            "skipped: the shell could not lower the descriptor limit to {DESCRIPTOR_LIMIT} \
             (it is {soft})"
        );
        return;
    }
    let clients: Vec<_> = (0..CLIENTS).map(|_| connect(minimal.addr())).collect();
    // It has taken every descriptor it may: the clients left over wait in the queue.
    let deadline = Instant::now() + READ_TIMEOUT;
    while open_descriptors(pid) < DESCRIPTOR_LIMIT {
        assert!(
            Instant::now() < deadline,
            "{} descriptors open after {CLIENTS} clients connected, never {DESCRIPTOR_LIMIT}",
            open_descriptors(pid)
        );
        thread::sleep(POLL);
    }

    let before = cpu_ticks(pid);
    thread::sleep(CPU_WINDOW);
    let used = cpu_ticks(pid) - before;
    let window_ticks = TICKS_PER_SECOND * u64::try_from(CPU_WINDOW.as_millis()).unwrap() / 1000;
    assert!(
        used * 100 <= window_ticks * MOST_CPU_PERCENT,
        "{used} ticks of CPU in {CPU_WINDOW:?} ({window_ticks} ticks) with no descriptor \
         free: the accept loop spins"
    );

    drop(clients);
    let mut newcomer = connect(minimal.addr());
    send(&mut newcomer, &login_frame("1001", PASSWORD));
    assert_eq!(
        read_n(&mut newcomer, FEEDBACK_LEN),
        ints(&[1, 40, 1]),
        "a login once the clients have left"
    );
}
