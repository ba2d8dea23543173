//! The receipts extension over real TCP (docs/PROTOCOL.md §3): MESSAGE frames with ids,
//! cumulative acknowledgements, the window that pauses a slow receiver, the store that
//! keeps everything unacknowledged however a connection ends, RECEIVED and READ, ids
//! kept in the mailbox, and a plain client that sees exactly what it saw before. The
//! faults the store must survive (bursts, full disks, a SIGKILL) are in
//! tests/store_first.rs.

mod common;
mod terminal;

use chatroom::blocking_client::{Client, Reply};
use chatroom::message_id;
use chatroom::protocol::{Kind, RECEIPTS_WINDOW};
use common::receipts::*;
use common::*;
use socket2::SockRef;
use std::net::TcpStream;
use std::time::Duration;
use terminal::Terminal;

#[test]
fn receipts_turn_every_chat_frame_into_a_message_with_its_id() {
    let server = start();
    let mut sender = receipts_client(server.addr(), "1001");
    let mut receiver = receipts_client(server.addr(), "1002");
    sender.send_chat("1002", "hello").unwrap();
    let (flag, delivered_id, from, text) = next_message(&mut receiver);
    assert_eq!((flag, from.as_str(), text.as_str()), (1, "1001", "hello"));
    let (echo_flag, echo_id, _, _) = next_message(&mut sender);
    assert_eq!(echo_flag, 1, "the echo: OK, delivered");
    assert_eq!(echo_id, delivered_id, "the echo carries the delivery's id");
    let now = message_id::now_ms();
    let accepted = message_id::sent_at_ms(delivered_id).expect("a real id");
    assert!(
        accepted <= now && now - accepted < 60_000,
        "an id carries the millisecond the server accepted the message: {accepted} vs {now}"
    );
    // To someone unknown: refused, id 0.
    sender.send_chat("nobody", "x").unwrap();
    let (flag, id, _, _) = next_message(&mut sender);
    assert_eq!(
        (flag, id),
        (-1, 0),
        "REJECTED, and a refused message has id 0"
    );
    // RECEIPTS again: OK, no change; with a body: MALFORMED.
    sender.send_receipts().unwrap();
    assert_eq!(feedback(sender.read_reply().unwrap()), (Kind::Receipts, 1));
    sender
        .send_raw(&[ints(&[4, 3]), vec![0; 3]].concat())
        .unwrap();
    assert_eq!(feedback(sender.read_reply().unwrap()), (Kind::Receipts, -3));
}

#[test]
fn a_plain_client_sees_byte_for_byte_what_it_saw_before_while_others_use_receipts() {
    let server = start();
    let mut plain = raw_logged_in(server.addr(), "1001");
    let mut with_receipts = receipts_client(server.addr(), "1002");
    send(&mut plain, &chat_frame("1001", "1002", "to receipts"));
    assert_eq!(
        read_n(&mut plain, 152),
        chat_reply(1, &chat_body("1001", "1002", "to receipts")),
        "the plain sender's echo is a CHAT frame, as ever"
    );
    next_message(&mut with_receipts);
    with_receipts.send_chat("1001", "to plain").unwrap();
    assert_eq!(
        read_n(&mut plain, 152),
        chat_reply(1, &chat_body("1002", "1001", "to plain")),
        "a plain receiver gets a CHAT frame, as ever"
    );
    let (flag, id, _, _) = next_message(&mut with_receipts);
    assert_eq!(flag, 1);
    assert!(
        message_id::sent_at_ms(id).is_some(),
        "the receipts sender's echo carries the id the plain receiver's message got"
    );
    // The room, too.
    with_receipts.send_chat("*", "everyone").unwrap();
    assert_eq!(
        read_n(&mut plain, 152),
        chat_reply(1, &chat_body("1002", "*", "everyone"))
    );
}

#[test]
fn acks_are_cumulative_and_refused_beyond_what_was_delivered_or_backwards() {
    let server = start();
    let mut sender = raw_logged_in(server.addr(), "1001");
    let mut receiver = receipts_client(server.addr(), "1002");
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        send(&mut sender, &chat_frame("1001", "1002", text));
        read_n(&mut sender, 152);
        ids.push(next_message(&mut receiver).1);
    }
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids increase: {ids:?}"
    );
    receiver.send_ack(ids[2] + 1).unwrap();
    receiver.send_ack(ids[1]).unwrap();
    receiver.send_ack(ids[0]).unwrap();
    // The same ACK again: no error, nothing changes.
    receiver.send_ack(ids[1]).unwrap();
    receiver.send_users().unwrap();
    assert_eq!(
        feedback(receiver.read_reply().unwrap()),
        (Kind::Ack, -3),
        "an ACK above the highest delivered id is MALFORMED"
    );
    assert_eq!(
        feedback(receiver.read_reply().unwrap()),
        (Kind::Ack, -3),
        "an ACK below the last one is MALFORMED"
    );
    assert!(
        matches!(receiver.read_reply().unwrap(), Reply::Users { .. }),
        "a valid ACK has no answer"
    );
    // The third is unacknowledged: dropping the connection stores it, and only it.
    drop(receiver);
    let (_again, stored) = login_and_collect_stored(server.addr(), "1002");
    let texts: Vec<_> = stored.iter().map(|(_, _, text)| text.as_str()).collect();
    assert_eq!(
        texts,
        ["three"],
        "the acknowledged two are gone, the third kept"
    );
}

#[test]
fn a_receiver_that_never_acknowledges_is_paused_at_the_window_not_closed() {
    const SENT: usize = 300;
    let server = start();
    let mut receiver = receipts_client(server.addr(), "1002");
    let echoes = send_to_1002(server.addr(), SENT);
    let written = echoes.iter().filter(|(flag, _, _)| *flag == 1).count();
    assert_eq!(
        written, RECEIPTS_WINDOW,
        "256 written to the receiver's socket (OK)"
    );
    assert!(
        echoes[RECEIPTS_WINDOW..]
            .iter()
            .all(|(flag, _, _)| *flag == 0),
        "the other 44 kept in its store (QUEUED)"
    );
    let mut got = Vec::new();
    for _ in 0..RECEIPTS_WINDOW {
        got.push(next_message(&mut receiver).1);
    }
    // Still connected: a USERS answers, and nothing else came before it.
    receiver.send_users().unwrap();
    assert!(
        matches!(receiver.read_reply().unwrap(), Reply::Users { .. }),
        "the connection stays open, and nothing beyond the window was written"
    );
    receiver.send_ack(*got.last().unwrap()).unwrap();
    for _ in RECEIPTS_WINDOW..SENT {
        got.push(next_message(&mut receiver).1);
    }
    let ids: Vec<u64> = echoes.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(
        got, ids,
        "the ACK brought the 44, every message once, in order"
    );
}

#[test]
fn a_receiver_that_stops_reading_and_is_reset_loses_nothing_echoed() {
    const MESSAGES: usize = 2_000;
    let server = start();
    // The receiver turns receipts on, then stops: it never reads again (as a stopped
    // process), and then its connection is reset (as a killed one).
    let mut receiver = TcpStream::connect(server.addr()).unwrap();
    receiver.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    send(
        &mut receiver,
        &[ints(&[4, 0]), login_frame("1002", PASSWORD)].concat(),
    );
    assert_eq!(read_n(&mut receiver, 12), ints(&[4, 0, 1]), "RECEIPTS OK");
    assert_eq!(read_n(&mut receiver, 12), ints(&[1, 40, 1]), "LOGIN OK");
    let echoes = send_to_1002(server.addr(), MESSAGES);
    SockRef::from(&receiver)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(receiver);
    let (_again, stored) = collect_stored(server.addr(), "1002");
    nothing_echoed_is_lost(&echoes, &stored);
}

/// Sends `signal` (`STOP`, `KILL`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits until process `pid` is stopped (state `T` in /proc/PID/stat): a stop signal
/// takes effect a moment after `kill` returns.
fn wait_until_stopped(pid: u32) {
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process");
        // The state follows the command name, which is in parentheses.
        let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        if state == Some("T") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} did not stop: {stat}"
        );
        std::thread::yield_now();
    }
}

/// The case with its real causes: `chat-client --listen` (receipts on, as by
/// default) stopped with SIGSTOP while messages are sent to it, then killed with
/// SIGKILL. 200 stay within the window and are all written to its socket; of 2,000, 256
/// are written and the rest wait in the store. Either way every one comes at the next
/// login.
#[test]
fn a_chat_client_stopped_then_killed_loses_nothing_echoed_to_it() {
    for count in [200, 2_000] {
        let server = start();
        let mut listener = Terminal::open(server.addr(), &["1002", PASSWORD, "--listen"]);
        listener.expect_line("listening");
        let pid = listener.child.id();
        signal(pid, "STOP");
        wait_until_stopped(pid);
        let echoes = send_to_1002(server.addr(), count);
        signal(pid, "KILL");
        listener.child.wait().expect("the killed client is reaped");
        let (_again, stored) = collect_stored(server.addr(), "1002");
        nothing_echoed_is_lost(&echoes, &stored);
        if count > RECEIPTS_WINDOW {
            assert!(
                echoes.iter().filter(|(flag, _, _)| *flag == 1).count() == RECEIPTS_WINDOW,
                "beyond the window the rest waited in the store (QUEUED)"
            );
        } else {
            assert!(
                echoes.iter().all(|(flag, _, _)| *flag == 1),
                "within the bound every message reached the stopped client's socket (1)"
            );
        }
    }
}

#[test]
fn received_reaches_an_online_receipts_sender_and_read_is_forwarded() {
    let server = start();
    let mut sender = receipts_client(server.addr(), "似末");
    let mut receiver = receipts_client(server.addr(), "玛卡巴卡");
    sender.send_chat("玛卡巴卡", "你好").unwrap();
    let (_, id, _, _) = next_message(&mut receiver);
    assert_eq!(next_message(&mut sender).1, id);
    receiver.send_ack(id).unwrap();
    assert_eq!(
        sender.read_reply().unwrap(),
        Reply::Receipt {
            kind: Kind::Received,
            id,
            name: "玛卡巴卡".to_string()
        },
        "RECEIVED: 玛卡巴卡's client has the message"
    );
    receiver.send_read(id, "似末").unwrap();
    assert_eq!(
        sender.read_reply().unwrap(),
        Reply::Receipt {
            kind: Kind::Read,
            id,
            name: "玛卡巴卡".to_string()
        },
        "READ forwarded with the reader's name"
    );
    receiver.send_read(id, "nobody").unwrap();
    assert_eq!(
        feedback(receiver.read_reply().unwrap()),
        (Kind::Read, -1),
        "REJECTED"
    );
    receiver
        .send_raw(&[ints(&[8, 27]), vec![0; 27]].concat())
        .unwrap();
    assert_eq!(
        feedback(receiver.read_reply().unwrap()),
        (Kind::Read, -3),
        "MALFORMED"
    );
    let mut stranger = Client::connect(server.addr()).unwrap();
    stranger.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stranger.send_read(id, "似末").unwrap();
    assert_eq!(
        feedback(stranger.read_reply().unwrap()),
        (Kind::Read, -2),
        "NOT_LOGGED_IN"
    );
}

#[test]
fn ids_are_unique_and_increase_on_each_connection_under_16_senders() {
    const SENDERS: usize = 16;
    // Together less than the window, so that every echo says 1 (beyond it they would
    // wait in the store, which is the test above).
    const EACH: usize = 15;
    let server = start_with(numbered_users("s", SENDERS + 1), |_| {});
    let mut receiver = receipts_client(server.addr(), "s0");
    let addr = server.addr();
    let senders: Vec<_> = (1..=SENDERS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut sender = receipts_client(addr, &format!("s{i}"));
                let mut ids = Vec::new();
                for n in 0..EACH {
                    sender.send_chat("s0", &n.to_string()).unwrap();
                    // RECEIVED frames come too, as the receiver acknowledges.
                    loop {
                        match sender.read_reply().unwrap() {
                            Reply::Message { id, .. } => break ids.push(id),
                            Reply::Receipt {
                                kind: Kind::Received,
                                ..
                            } => {}
                            other => panic!("expected the echo, got {other:?}"),
                        }
                    }
                }
                ids
            })
        })
        .collect();
    let mut delivered = Vec::new();
    for _ in 0..SENDERS * EACH {
        delivered.push(next_message(&mut receiver).1);
        // Acknowledge as a client does, so the queue never fills.
        receiver.send_ack(*delivered.last().unwrap()).unwrap();
    }
    assert!(
        delivered.windows(2).all(|pair| pair[0] < pair[1]),
        "the receiver's ids increase in the order it got them"
    );
    let mut echoed: Vec<u64> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    echoed.sort_unstable();
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    assert_eq!(
        echoed, sorted,
        "each echo carries its delivery's id, and ids are unique"
    );
}

#[test]
fn a_stored_message_keeps_its_id_across_a_restart_and_an_old_mailbox_is_upgraded() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let server = serve_on(&dir, |_| {});
    let mut sender = receipts_client(server.local_addr(), "1001");
    sender.send_chat("1002", "while you were away").unwrap();
    let (flag, id, _, _) = next_message(&mut sender);
    assert_eq!(flag, 0, "QUEUED");
    drop(sender);
    server.stop();
    // An old-format mailbox for 1003 (140-byte records, no header), as the previous
    // version wrote it.
    let old = [
        chat_body("1001", "1003", "old one"),
        chat_body("1002", "1003", "old two"),
    ]
    .concat();
    std::fs::write(dir.join("31303033.mbox"), old).unwrap();
    let server = serve_on(&dir, |_| {});
    let (_client, stored) = collect_stored(server.local_addr(), "1002");
    assert_eq!(
        stored,
        [(id, "while you were away".to_string())],
        "the same id"
    );
    let (_client, upgraded) = collect_stored(server.local_addr(), "1003");
    let texts: Vec<_> = upgraded.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, ["old one", "old two"], "the old mailbox, delivered");
    assert!(
        upgraded[0].0 > id && upgraded[0].0 < upgraded[1].0,
        "given ids, in order"
    );
    let on_disk = std::fs::read(dir.join("31303033.mbox")).unwrap();
    assert!(on_disk.is_empty(), "acknowledged, so emptied: {on_disk:?}");
}

#[test]
fn stored_messages_handed_to_a_receipts_login_stay_until_acknowledged() {
    let server = start();
    let mut sender = raw_logged_in(server.addr(), "1001");
    send(&mut sender, &chat_frame("1001", "1002", "keep me"));
    assert_eq!(read_n(&mut sender, 152)[..12], ints(&[2, 140, 0]), "QUEUED");
    // Delivered at a login, never acknowledged: it comes again.
    let mut first = receipts_client(server.addr(), "1002");
    let (_, id, _, text) = next_message(&mut first);
    assert_eq!(text, "keep me");
    drop(first);
    let (_second, stored) = collect_stored(server.addr(), "1002");
    assert_eq!(
        stored,
        [(id, "keep me".to_string())],
        "again, with the same id"
    );
    // Acknowledged (collect_stored acks): gone.
    let (_third, stored) = collect_stored(server.addr(), "1002");
    assert!(
        stored.is_empty(),
        "acknowledged messages are not delivered again"
    );
}

/// SIGTERM, then SIGKILL, while a receipts receiver holds unacknowledged messages and
/// others wait in its store: after a restart on the same data directory they all
/// arrive, with their ids, in order. The store is the queue: nothing was in memory only.
#[test]
fn unacknowledged_and_stored_messages_survive_a_sigterm_and_a_sigkill() {
    use common::child::run_server_on;
    for signal in ["TERM", "KILL"] {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("data");
        let mut server = run_server_on(&dir, "", &[]);
        let receiver = receipts_client(server.addr, "1002");
        let mut sender = receipts_client(server.addr, "1001");
        let mut echoes = Vec::new();
        for i in 0..100 {
            sender.send_chat("1002", &format!("written {i}")).unwrap();
            let (flag, id, _, text) = next_message(&mut sender);
            assert_eq!(
                flag, 1,
                "written to the receiver's socket, never acknowledged"
            );
            echoes.push((id, text));
        }
        drop(receiver);
        for i in 0..20 {
            sender.send_chat("1002", &format!("stored {i}")).unwrap();
            let (flag, id, _, text) = next_message(&mut sender);
            assert_eq!(flag, 0, "the receiver is gone: kept in its store (QUEUED)");
            echoes.push((id, text));
        }
        server.signal(signal);
        server.exit_within(Duration::from_secs(5));
        drop(sender);
        let restarted = run_server_on(&dir, "", &[]);
        let (_client, stored) = collect_stored(restarted.addr, "1002");
        assert_eq!(
            stored, echoes,
            "after SIG{signal}: all 120 echoed 0 or 1, in order, with their ids"
        );
    }
}

#[test]
fn a_room_message_reaches_a_receipts_receiver_with_an_id_unless_its_window_is_full() {
    let server = start();
    let mut talker = raw_logged_in(server.addr(), "1003");
    let mut listener = receipts_client(server.addr(), "1002");
    send(&mut talker, &chat_frame("1003", "*", "hello room"));
    read_n(&mut talker, 152);
    let (flag, id, from, text) = next_message(&mut listener);
    assert_eq!(
        (flag, from.as_str(), text.as_str()),
        (1, "1003", "hello room")
    );
    assert_ne!(id, 0, "a room message takes the receiver's next id");
    listener.send_ack(id).unwrap();
    listener.send_users().unwrap();
    assert!(
        matches!(listener.read_reply().unwrap(), Reply::Users { .. }),
        "an ACK may cover a room message"
    );
    // A full window: 256 messages written and not acknowledged.
    let echoes = send_to_1002(server.addr(), RECEIPTS_WINDOW);
    assert!(echoes.iter().all(|(flag, _, _)| *flag == 1));
    send(&mut talker, &chat_frame("1003", "*", "missed"));
    read_n(&mut talker, 152);
    for _ in 0..RECEIPTS_WINDOW {
        let (_, _, from, _) = next_message(&mut listener);
        assert_eq!(from, "1001");
    }
    listener.send_users().unwrap();
    assert!(
        matches!(listener.read_reply().unwrap(), Reply::Users { .. }),
        "with its window full, the receiver misses the room message, as an offline user does"
    );
}
