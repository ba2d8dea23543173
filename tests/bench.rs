//! `chat-bench relay` against a real server, plain and with receipts: the benchmark
//! checks every message it relays (order, bytes, ids, receipts), so `make bench` is
//! only worth its figures while those checks pass. Small runs, for correctness, not
//! speed: speed is `make bench`'s business, never a test's.

mod common;

use common::*;
use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_chat-bench");
/// Two pairs, the users `u00000` .. `u00003` that chat-bench names.
const PAIRS: usize = 2;
/// Messages each sender sends.
const MESSAGES: usize = 2000;

/// Runs `chat-bench relay` against a fresh server; its RESULT line.
#[track_caller]
fn relay(extra: &[&str]) -> String {
    let server = start_with(numbered_users("u0000", 2 * PAIRS), |_| {});
    let output = Command::new(BENCH)
        .args(["relay", "--addr", &server.addr().to_string()])
        .args([
            "--pairs",
            &PAIRS.to_string(),
            "--messages",
            &MESSAGES.to_string(),
        ])
        .args(["--window", "16", "--password", PASSWORD])
        .args(extra)
        .output()
        .expect("chat-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "chat-bench relay {extra:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find(|line| line.starts_with("RESULT relay"))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"))
        .to_string()
}

/// The value of `name=` in a RESULT line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

#[test]
fn the_plain_relay_delivers_every_message_in_order() {
    let result = relay(&[]);
    assert_eq!(
        field(&result, "delivered"),
        (PAIRS * MESSAGES).to_string(),
        "{result}"
    );
    assert_eq!(field(&result, "errors"), "0", "{result}");
}

#[test]
fn the_receipts_relay_delivers_every_message_and_every_sender_hears_of_it() {
    let result = relay(&["--receipts"]);
    assert_eq!(
        field(&result, "delivered"),
        (PAIRS * MESSAGES).to_string(),
        "{result}"
    );
    assert_eq!(field(&result, "errors"), "0", "{result}");
    // Each sender waits for the RECEIVED that covers its last message, so each has
    // seen at least one.
    let received: usize = field(&result, "received_frames").parse().expect("a count");
    assert!(received >= PAIRS, "RECEIVED frames: {result}");
}

#[test]
fn the_receipts_relay_with_an_ack_for_every_message_delivers_them_all() {
    // The heaviest acknowledging there is: one ACK per message. RECEIVED frames are
    // coalesced on their way to the sender (one per receiver, the highest id), so they
    // may be fewer than the ACKs; the last one always covers the last message.
    let result = relay(&["--receipts", "--ack-at", "1"]);
    assert_eq!(field(&result, "errors"), "0", "{result}");
    assert_eq!(
        field(&result, "delivered"),
        (PAIRS * MESSAGES).to_string(),
        "{result}"
    );
}

#[test]
fn an_ack_at_without_receipts_is_refused() {
    let output = Command::new(BENCH)
        .args(["relay", "--ack-at", "64"])
        .output()
        .expect("chat-bench runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--ack-at goes with --receipts"), "{stderr}");
}

#[test]
fn an_ack_at_beyond_the_servers_bound_is_refused() {
    let output = Command::new(BENCH)
        .args(["relay", "--receipts", "--ack-at", "257"])
        .output()
        .expect("chat-bench runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 to 256"), "{stderr}");
}
