//! Receipts clients for the tests (docs/PROTOCOL.md §3): log in with receipts on, read
//! MESSAGE frames, collect what a store holds as a client does, and check that nothing
//! echoed 0 or 1 was lost.

use super::{PASSWORD, READ_TIMEOUT};
use chatroom::blocking_client::{Client, Reply};
use chatroom::protocol::Kind;
use std::collections::HashSet;
use std::net::SocketAddr;

/// A client with receipts on, logged in as `name`: RECEIPTS and LOGIN in one go, the
/// RECEIPTS answer first.
pub fn receipts_client(addr: SocketAddr, name: &str) -> Client {
    let mut client = Client::connect(addr).expect("connect");
    client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    client.send_receipts().unwrap();
    client.send_login(name, PASSWORD).unwrap();
    assert_eq!(
        feedback(client.read_reply().unwrap()),
        (Kind::Receipts, 1),
        "RECEIPTS is answered FEEDBACK{{4, 0, 1}} OK"
    );
    assert_eq!(
        client.read_reply().unwrap(),
        Reply::Login { flag: 1 },
        "LOGIN OK"
    );
    client
}

/// The kind and flag of a reply with no body.
pub fn feedback(reply: Reply) -> (Kind, i32) {
    match reply {
        Reply::Other(feedback) => (feedback.kind, feedback.flag),
        other => panic!("expected a reply with no body, got {other:?}"),
    }
}

/// The next reply, which must be a MESSAGE frame: flag, id, sender, text.
pub fn next_message(client: &mut Client) -> (i32, u64, String, String) {
    match client.read_reply().expect("a MESSAGE frame") {
        Reply::Message { flag, id, message } => {
            (flag, id, message.sender.to_lossy(), message.text.to_lossy())
        }
        other => panic!("expected a MESSAGE frame (type 5), got {other:?}"),
    }
}

/// Logs in with receipts and takes the stored messages as a client does: what comes
/// before the reply to a USERS sent right after, acknowledged, again until nothing more
/// comes (the window lets out at most 256 at a time).
pub fn collect_stored(addr: SocketAddr, name: &str) -> (Client, Vec<(u64, String)>) {
    let mut client = receipts_client(addr, name);
    let mut stored = Vec::new();
    loop {
        client.send_users().unwrap();
        let before = stored.len();
        loop {
            match client.read_reply().unwrap() {
                Reply::Message { id, message, .. } => stored.push((id, message.text.to_lossy())),
                Reply::Users { .. } => break,
                other => panic!("expected stored MESSAGE frames, then USERS, got {other:?}"),
            }
        }
        if stored.len() == before {
            return (client, stored);
        }
        // A valid ACK has no answer; the next USERS round trip shows it was acted on,
        // and brings what it let out of the store.
        client.send_ack(stored.last().unwrap().0).unwrap();
    }
}

/// Sends `count` messages from a receipts client `1001` to `1002`; each echo's flag,
/// id and text.
pub fn send_to_1002(addr: SocketAddr, count: usize) -> Vec<(i32, u64, String)> {
    let mut sender = receipts_client(addr, "1001");
    (0..count)
        .map(|i| {
            sender.send_chat("1002", &format!("m{i}")).unwrap();
            let (flag, id, _, text) = next_message(&mut sender);
            (flag, id, text)
        })
        .collect()
}

/// What a receiver got at its next login (`stored`) against what was sent to it
/// (`echoes`): every message echoed 0 or 1 is there, once, in order, with its id.
/// Prints the figures.
#[track_caller]
pub fn nothing_echoed_is_lost(echoes: &[(i32, u64, String)], stored: &[(u64, String)]) {
    let echoed_ok = echoes.iter().filter(|(flag, _, _)| *flag == 1).count();
    let ids: HashSet<u64> = stored.iter().map(|(id, _)| *id).collect();
    let duplicates = stored.len() - ids.len();
    let lost: Vec<_> = echoes
        .iter()
        .filter(|(flag, id, _)| *flag >= 0 && !ids.contains(id))
        .collect();
    eprintln!(
        "sent {}, echoed 1: {echoed_ok}, echoed 0: {}, delivered at the next login: {}, \
         duplicates: {duplicates}, lost: {}",
        echoes.len(),
        echoes.len() - echoed_ok,
        stored.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    let expected: Vec<_> = echoes
        .iter()
        .map(|(_, id, text)| (*id, text.clone()))
        .collect();
    assert_eq!(stored, expected, "every message, in order, with its id");
}
