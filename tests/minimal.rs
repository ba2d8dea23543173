//! The first step, `examples/minimal.rs`, passes the same wire tests as the full server
//! for the original's valid exchanges (tests/common/exchanges.rs): it is the design in
//! its plainest form, not a different protocol.
//!
//! Each run of this test builds the example first (`cargo build --example minimal`,
//! once per test process), so the tests always run the example's current source: a
//! learner who edits `examples/minimal.rs` (exercise 6 of docs/TOUR.md) tests the edit,
//! not an older build. Each test starts it on a free port.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The example server, running; killed when dropped.
struct Minimal {
    child: Child,
    addr: SocketAddr,
}

impl Minimal {
    fn start() -> Minimal {
        let mut child = Command::new(example_binary())
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the minimal example");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("expected `listening on ADDR`, got {first:?}"));
        Minimal {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Minimal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example's binary, `target/<profile>/examples/minimal`, beside this test's
/// `target/<profile>/deps/`, freshly built from the current source. `cargo test` builds
/// examples only as test harnesses, and would not rebuild the binary after an edit.
fn example_binary() -> PathBuf {
    // Once per test process: the tests run in parallel, and one build serves them all.
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(build_example).clone()
}

fn build_example() -> PathBuf {
    let this_test = std::env::current_exe().unwrap();
    let profile_dir = this_test.parent().and_then(|deps| deps.parent()).unwrap();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--example", "minimal", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    // Up to date, this is a quick check; after an edit, a rebuild (its errors on stderr).
    let status = build
        .status()
        .expect("run cargo to build the minimal example");
    assert!(status.success(), "cargo build --example minimal failed");
    let binary = profile_dir.join("examples").join("minimal");
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}

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
