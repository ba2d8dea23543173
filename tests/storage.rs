//! Storage that tells the truth, over real TCP: -8 when a message cannot be stored,
//! -7 only for a limit (of one mailbox or of the whole store), mailbox entries that are
//! not regular files never touched, records the server did not write never delivered,
//! and private files.

mod common;

use chatroom::ServerHandle;
use chatroom::blocking_client::Client;
use common::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// 1002's mailbox: its name's bytes in hex.
const MAILBOX_OF_1002: &str = "31303032.mbox";

/// The echo flag of one message from `client` to `to`.
fn echo_of(client: &mut Client, to: &str, text: &str) -> i32 {
    client.send_chat(to, text).unwrap();
    next_chat(client).0
}

/// The texts of the stored messages `name` is handed at login.
fn stored_for(addr: std::net::SocketAddr, name: &str) -> Vec<String> {
    let (_, stored) = login_and_collect_stored(addr, name);
    stored.into_iter().map(|(_, _, text)| text).collect()
}

/// 1001's message to an offline 1002 whose mailbox entry is not a regular file: refused
/// with -8, and 1002 then logs in to no stored messages. Returns 1001's client.
fn assert_not_stored_and_nothing_delivered(server: &ServerHandle, text: &str) -> Client {
    let mut sender = logged_in(server.local_addr(), "1001");
    assert_eq!(echo_of(&mut sender, "1002", text), -8);
    assert_eq!(
        stored_for(server.local_addr(), "1002"),
        Vec::<String>::new()
    );
    sender
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    fs::create_dir(&data).unwrap();
    (temp, data)
}

#[test]
fn a_symlinked_mailbox_is_never_followed_and_its_target_stays_byte_identical() {
    let (temp, data) = data_dir();
    let target = temp.path().join("precious.txt");
    let precious = b"not a mailbox: somebody's file, 151 bytes long, which a message to 1002 \
                     used to truncate and append to, and whose text was delivered as chat."
        .to_vec();
    fs::write(&target, &precious).unwrap();
    symlink(&target, data.join(MAILBOX_OF_1002)).unwrap();

    let server = serve_on(&data, |_| {});
    assert_not_stored_and_nothing_delivered(&server, "through the link?");
    assert_eq!(fs::read(&target).unwrap(), precious);
}

#[test]
fn a_fifo_in_place_of_a_mailbox_blocks_nobody() {
    let (_temp, data) = data_dir();
    let fifo = data.join(MAILBOX_OF_1002);
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("skipped: mkfifo is not available here");
        return;
    }
    let server = serve_on(&data, |_| {});
    let mut sender = assert_not_stored_and_nothing_delivered(&server, "into the pipe?");
    // The lock of 1002's mailbox is free: 1002 logs in again, and is reachable.
    let mut receiver = logged_in(server.local_addr(), "1002");
    assert_eq!(echo_of(&mut sender, "1002", "live"), 1);
    assert_eq!(next_chat(&mut receiver).1.text.to_lossy(), "live");
}

#[test]
fn a_directory_in_place_of_a_mailbox_is_refused_with_minus_eight() {
    let (_temp, data) = data_dir();
    fs::create_dir(data.join(MAILBOX_OF_1002)).unwrap();
    let server = serve_on(&data, |_| {});
    assert_not_stored_and_nothing_delivered(&server, "into a directory?");
}

#[test]
fn the_store_limit_counts_all_mailboxes_and_a_delivery_frees_room() {
    let (_temp, data) = data_dir();
    let server = serve_on(&data, |config| config.store_limit = 2);
    let mut sender = logged_in(server.local_addr(), "1001");
    assert_eq!(echo_of(&mut sender, "1002", "one"), 0);
    assert_eq!(echo_of(&mut sender, "1003", "two"), 0);
    assert_eq!(
        echo_of(&mut sender, "似末", "three"),
        -7,
        "the store is full"
    );
    assert_eq!(stored_for(server.local_addr(), "1002"), ["one"]);
    assert_eq!(echo_of(&mut sender, "似末", "three again"), 0, "room again");
}

#[test]
fn records_the_server_did_not_write_are_skipped_and_the_rest_delivered() {
    let (_temp, data) = data_dir();
    let mut records = chat_body("1001", "1002", "genuine");
    records.extend(chat_body("mallory", "1002", "forged sender"));
    records.extend(chat_body("1001", "1003", "someone else's"));
    let mut not_utf8 = chat_body("1001", "1002", "bad name");
    not_utf8[0] = 0xFF;
    records.extend(not_utf8);
    records.extend(chat_body("1003", "1002", "also genuine"));
    fs::write(data.join(MAILBOX_OF_1002), records).unwrap();
    let server = serve_on(&data, |_| {});
    assert_eq!(
        stored_for(server.local_addr(), "1002"),
        ["genuine", "also genuine"]
    );
}

#[test]
fn the_data_directory_and_mailboxes_are_private() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("made").join("with").join("parents");
    let server = serve_on(&data, |_| {});
    let mut sender = logged_in(server.local_addr(), "1001");
    assert_eq!(echo_of(&mut sender, "1002", "private"), 0);
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(MAILBOX_OF_1002)), 0o600);
}

/// A disk that fills: every message answered 0 was stored and is delivered, every one
/// that did not fit is answered -8 (never -7, never 0), and nothing stored is lost.
/// Needs a small tmpfs, so root: skipped with a message where it cannot be mounted.
#[test]
fn a_full_disk_is_answered_minus_eight_and_what_was_stored_stays() {
    let temp = tempfile::tempdir().unwrap();
    let Some(disk) = small_tmpfs(temp.path(), "64k") else {
        return;
    };
    let data = disk.0.join("data");
    let server = serve_on(&data, |_| {});
    let mut sender = logged_in(server.local_addr(), "1001");
    let mut queued = Vec::new();
    let mut refused = 0;
    // 64 KiB hold about 460 records; send more than fit.
    for seq in 0..1_000 {
        let text = format!("{seq}");
        match echo_of(&mut sender, "1002", &text) {
            0 => queued.push(text),
            -8 => refused += 1,
            other => panic!("message {seq}: flag {other}, expected 0 or -8"),
        }
    }
    assert!(refused > 0, "the disk never filled");
    assert!(!queued.is_empty(), "nothing fitted");
    assert_eq!(stored_for(server.local_addr(), "1002"), queued);
}
