//! Offline messages (docs/PROTOCOL.md §6): stored for a known user who is offline, delivered
//! at their next login oldest first, surviving restarts and crashes.

mod common;

use chatroom::blocking_client::{Client, Reply};
use chatroom::users::Accounts;
use chatroom::{Config, Server};
use common::child::run_server_on;
use common::*;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::Duration;

fn texts(stored: &[(i32, String, String)]) -> Vec<&str> {
    stored.iter().map(|(_, _, text)| text.as_str()).collect()
}

#[test]
fn messages_to_an_offline_user_are_queued_and_delivered_at_login_in_order() {
    let server = start();
    let mut sender = logged_in(server.addr(), "1001");
    for text in ["first", "second", "third"] {
        send_expecting(&mut sender, "似末", text, 0);
    }
    let mut other = logged_in(server.addr(), "1002");
    send_expecting(&mut other, "似末", "from 1002", 0);

    let (simo, stored) = login_and_collect_stored(server.addr(), "似末");
    assert_eq!(texts(&stored), ["first", "second", "third", "from 1002"]);
    assert!(
        stored.iter().all(|(flag, _, _)| *flag == 1),
        "delivered as flag 1"
    );
    assert_eq!(stored[3].1, "1002");

    // Delivered means gone: the next login gets nothing, and live chat works.
    drop(simo);
    let (mut simo_again, stored) = login_and_collect_stored(server.addr(), "似末");
    assert!(stored.is_empty());
    send_expecting(&mut sender, "似末", "live now", 1);
    assert_eq!(next_chat(&mut simo_again).1.text.to_lossy(), "live now");
}

/// Sends `text` to `to` and checks the echo's flag.
fn send_expecting(client: &mut Client, to: &str, text: &str, flag: i32) {
    client.send_chat(to, text).unwrap();
    let (got, message) = next_chat(client);
    assert_eq!((got, message.text.to_lossy()), (flag, text.to_string()));
}

/// An in-process server with the built-in users on a free loopback port, keeping its
/// mailboxes in `dir` (which outlives it, for restarts).
fn spawn_on(dir: &Path) -> chatroom::ServerHandle {
    let config = Config {
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    Server::bind_with_users(&config, Accounts::built_in())
        .unwrap()
        .spawn()
}

#[test]
fn stored_messages_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let first = spawn_on(data.path());
    let mut sender = logged_in(first.local_addr(), "1001");
    for text in ["before", "the", "restart"] {
        send_expecting(&mut sender, "玛卡巴卡", text, 0);
    }
    drop(sender);
    first.stop();

    let second = spawn_on(data.path());
    let (_client, stored) = login_and_collect_stored(second.local_addr(), "玛卡巴卡");
    assert_eq!(texts(&stored), ["before", "the", "restart"]);
}

#[test]
fn a_full_mailbox_refuses_with_minus_seven() {
    let server = start_with(Accounts::built_in(), |config| config.mailbox_limit = 2);
    let mut sender = logged_in(server.addr(), "1001");
    send_expecting(&mut sender, "1003", "one", 0);
    send_expecting(&mut sender, "1003", "two", 0);
    send_expecting(&mut sender, "1003", "three", -7);
    let (_client, stored) = login_and_collect_stored(server.addr(), "1003");
    assert_eq!(texts(&stored), ["one", "two"]);
}

#[test]
fn room_messages_are_never_stored() {
    let server = start();
    let mut sender = logged_in(server.addr(), "1001");
    send_expecting(&mut sender, "*", "anyone?", 1);
    let (_client, stored) = login_and_collect_stored(server.addr(), "1002");
    assert!(stored.is_empty());
}

#[test]
fn a_torn_record_at_the_end_is_dropped_and_the_rest_delivered() {
    let data = tempfile::tempdir().unwrap();
    let server = spawn_on(data.path());
    let mut sender = logged_in(server.local_addr(), "1001");
    send_expecting(&mut sender, "1002", "whole one", 0);
    send_expecting(&mut sender, "1002", "whole two", 0);
    // A crash in the middle of the next append: part of a record at the end.
    let mailbox = data.path().join("31303032.mbox"); // "1002" in hex
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&mailbox)
        .unwrap();
    file.write_all(&chat_body("1001", "1002", "torn")[..77])
        .unwrap();
    drop(file);
    let (_client, stored) = login_and_collect_stored(server.local_addr(), "1002");
    assert_eq!(texts(&stored), ["whole one", "whole two"]);
}

/// Many senders keep sending while the receiver logs in: nothing is lost, nothing
/// duplicated, and each sender's messages arrive in order, the stored ones first.
#[test]
fn messages_sent_while_the_receiver_logs_in_keep_their_order() {
    const SENDERS: usize = 8;
    const MESSAGES: usize = 150;
    let server = start_with(numbered_users("u", SENDERS + 1), |_| {});
    let receiver_name = format!("u{SENDERS}");
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let addr = server.addr();
            let to = receiver_name.clone();
            let started = started_tx.clone();
            thread::spawn(move || {
                let name = format!("u{i}");
                let mut client = logged_in(addr, &name);
                let mut flags = HashMap::new();
                for seq in 0..MESSAGES {
                    client.send_chat(&to, &format!("{seq}")).unwrap();
                    let (flag, _) = next_chat(&mut client);
                    *flags.entry(flag).or_insert(0) += 1;
                    if seq == 10 {
                        started.send(()).unwrap();
                    }
                }
                flags
            })
        })
        .collect();
    // Log in once every sender has had messages queued.
    for _ in 0..SENDERS {
        started_rx.recv().unwrap();
    }
    let mut receiver = logged_in(server.addr(), &receiver_name);
    let mut next: HashMap<String, usize> = HashMap::new();
    for _ in 0..SENDERS * MESSAGES {
        let (flag, message) = next_chat(&mut receiver);
        assert_eq!(flag, 1);
        let sender = message.sender.to_lossy();
        let expected = next.entry(sender.clone()).or_default();
        assert_eq!(
            message.text.to_lossy(),
            expected.to_string(),
            "from {sender}"
        );
        *expected += 1;
    }
    let mut queued = 0;
    for sender in senders {
        let flags = sender.join().unwrap();
        assert_eq!(flags.keys().filter(|f| **f != 0 && **f != 1).count(), 0);
        queued += flags.get(&0).copied().unwrap_or(0);
    }
    assert!(queued >= SENDERS * 11, "the early messages were queued");
    // Nothing more, nothing twice: the next bytes answer our own request.
    receiver.send_users().unwrap();
    assert!(matches!(
        receiver.read_reply().unwrap(),
        Reply::Users { .. }
    ));
}

/// A live delivery that fails (the receiver stopped reading and its write timed out)
/// is stored, not lost: every message echoed 0 arrives at the next login.
#[test]
fn a_failed_live_delivery_ends_up_in_the_mailbox() {
    let server = start_with(Accounts::built_in(), |config| {
        config.write_timeout = Duration::from_secs(1);
    });
    let mut sleeper = connect(server.addr());
    raw_login(&mut sleeper, "1003");
    let mut sender = logged_in(server.addr(), "1001");
    let mut queued = Vec::new();
    let mut seq = 0;
    // Send in bursts until the server gives up on the sleeper and starts queueing.
    while queued.len() < 20 {
        for _ in 0..100 {
            sender.send_chat("1003", &format!("{seq}")).unwrap();
            seq += 1;
        }
        for _ in 0..100 {
            let (flag, message) = next_chat(&mut sender);
            match flag {
                1 => {}
                0 => queued.push(message.text.to_lossy()),
                other => panic!("unexpected flag {other}"),
            }
        }
        assert!(seq < 400_000, "the sleeper was never cut off");
    }
    drop(sleeper);
    let (_client, stored) = login_and_collect_stored(server.addr(), "1003");
    let stored = texts(&stored);
    // At-least-once: a batch cut off mid-write may be stored whole, so the stored list
    // may start with a few that were also written live; every queued one is there, in
    // order, at the end.
    assert!(stored.ends_with(&queued.iter().map(String::as_str).collect::<Vec<_>>()));
}

/// The binary killed with SIGKILL in the middle of traffic and restarted: every message
/// whose echo said QUEUED is delivered.
#[test]
fn every_queued_message_survives_sigkill() {
    let data = tempfile::tempdir().unwrap();
    // Owned: killed, its log shown, if the test fails before it is killed on purpose.
    let mut server = run_server_on(data.path(), "", &[]);
    let mut sender = logged_in(server.addr, "1001");
    let mut promised = Vec::new();
    let mut seq = 0;
    let mut killed = false;
    // Pipelined: keep 16 in flight, kill the server after 200 promises.
    for _ in 0..16 {
        sender.send_chat("花开富贵", &format!("{seq}")).unwrap();
        seq += 1;
    }
    loop {
        match sender.read_reply() {
            Ok(Reply::Chat { flag: 0, message }) => promised.push(message.text.to_lossy()),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => break, // the server is gone
        }
        if promised.len() == 200 && !killed {
            server.child.kill().unwrap(); // SIGKILL
            server.child.wait().unwrap();
            killed = true;
        }
        if !killed && sender.send_chat("花开富贵", &format!("{seq}")).is_ok() {
            seq += 1;
        }
    }
    assert!(killed);
    let restarted = run_server_on(data.path(), "", &[]);
    let (_client, stored) = login_and_collect_stored(restarted.addr, "花开富贵");
    let stored = texts(&stored);
    assert!(promised.len() >= 200);
    assert!(
        stored.starts_with(&promised.iter().map(String::as_str).collect::<Vec<_>>()),
        "{} promised, {} stored",
        promised.len(),
        stored.len()
    );
}
