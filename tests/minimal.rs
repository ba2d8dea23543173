//! The first step, `examples/minimal.rs`, passes the same wire tests as the full server
//! for the original's valid exchanges (tests/common/exchanges.rs): it is the design in
//! its plainest form, not a different protocol.
//!
//! Each run of this test builds the example first (`cargo build --example minimal`,
//! once per test process), so the tests always run the example's current source: a
//! learner who edits `examples/minimal.rs` (exercise 6 of docs/TOUR.md) tests the edit,
//! not an older build. Each test starts it on a free port.

mod common;

use common::minimal::{Minimal, example_binary};
use std::process::{Command, Stdio};

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
