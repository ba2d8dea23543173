//! The valid exchanges of the original protocol, as functions of a server's address, so
//! that the same tests run against the full server (`tests/wire.rs`) and against the
//! first step, `examples/minimal.rs` (`tests/minimal.rs`). Only what both must do byte
//! for byte is here: the original's own LOGIN and CHAT with the six built-in users.

use super::*;
use crate::assert_frames;
use std::net::SocketAddr;
use std::thread;

/// Proves the stream holds nothing more and is in step: the next request's reply comes
/// next (a wrong password, answered -1 by both servers).
fn assert_in_step(stream: &mut std::net::TcpStream) {
    send(stream, &login_frame("1001", "not the password"));
    assert_frames!(
        read_n(stream, 12),
        ints(&[1, 40, -1]),
        "next: the probe's reply"
    );
}

pub fn every_built_in_user_logs_in_with_exactly_twelve_bytes(addr: SocketAddr) {
    for name in BUILT_IN_USERS {
        let mut stream = connect(addr);
        send(&mut stream, &login_frame(name, PASSWORD));
        assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, 1]), "{name}");
        assert_in_step(&mut stream);
    }
}

pub fn a_wrong_password_or_unknown_name_is_answered_minus_one(addr: SocketAddr) {
    let mut stream = connect(addr);
    for (name, password) in [("1001", "654321"), ("1004", PASSWORD), ("似末", "")] {
        send(&mut stream, &login_frame(name, password));
        assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -1]), "{name}");
    }
}

pub fn chat_is_echoed_to_the_sender_and_delivered_with_the_same_152_bytes(addr: SocketAddr) {
    let mut simo = connect(addr);
    let mut makabaka = connect(addr);
    raw_login(&mut simo, "似末");
    raw_login(&mut makabaka, "玛卡巴卡");

    send(&mut simo, &chat_frame("似末", "玛卡巴卡", "你好, 玛卡巴卡"));
    let expected = chat_reply(1, &chat_body("似末", "玛卡巴卡", "你好, 玛卡巴卡"));
    assert_eq!(expected.len(), 152);
    assert_frames!(read_n(&mut simo, 152), expected, "the echo");
    assert_frames!(read_n(&mut makabaka, 152), expected, "the delivery");

    send(&mut makabaka, &chat_frame("玛卡巴卡", "似末", "hi"));
    let expected = chat_reply(1, &chat_body("玛卡巴卡", "似末", "hi"));
    assert_frames!(read_n(&mut makabaka, 152), expected);
    assert_frames!(read_n(&mut simo, 152), expected);
    assert_in_step(&mut simo);
    assert_in_step(&mut makabaka);
}

/// When the echo arrives, the delivery is already in the receiver's socket: the
/// server delivers first, so the echo's flag can say what happened. (On loopback a
/// write lands in the receiver's buffer before the write returns.)
pub fn the_delivery_is_written_before_the_echo(addr: SocketAddr) {
    let mut sender = connect(addr);
    let mut receiver = connect(addr);
    raw_login(&mut sender, "1001");
    raw_login(&mut receiver, "1002");
    for round in 0..20 {
        send(
            &mut sender,
            &chat_frame("1001", "1002", &format!("{round}")),
        );
        read_n(&mut sender, 152);
        receiver.set_nonblocking(true).unwrap();
        let mut frame = [0; 152];
        let ready = receiver.peek(&mut frame).unwrap_or(0);
        receiver.set_nonblocking(false).unwrap();
        assert!(
            ready > 0,
            "round {round}: the echo came before the delivery"
        );
        read_n(&mut receiver, 152);
    }
}

pub fn the_relayed_sender_is_the_session_name_whatever_the_client_wrote(addr: SocketAddr) {
    let mut liar = connect(addr);
    let mut victim = connect(addr);
    raw_login(&mut liar, "1001");
    raw_login(&mut victim, "1002");
    send(&mut liar, &chat_frame("1003", "1002", "I am 1003"));
    let expected = chat_reply(1, &chat_body("1001", "1002", "I am 1003"));
    assert_frames!(read_n(&mut victim, 152), expected);
    assert_frames!(read_n(&mut liar, 152), expected);
}

/// The original reads a CHAT body only when at least two users are online: alone, the
/// body stayed in the socket and was taken for the next header.
pub fn chatting_while_alone_keeps_the_stream_in_step(addr: SocketAddr) {
    let mut alone = connect(addr);
    raw_login(&mut alone, "花开富贵");
    for _ in 0..3 {
        send(&mut alone, &chat_frame("花开富贵", "1002", "anyone there?"));
        let echo = read_n(&mut alone, 152);
        assert_eq!(
            echo[..8],
            ints(&[2, 140]),
            "a CHAT reply, whatever its flag"
        );
        assert_eq!(echo[12..], chat_body("花开富贵", "1002", "anyone there?"));
    }
    assert_in_step(&mut alone);
}

/// A frame that arrives in two pieces, split at any byte of its header or body, is
/// read whole: the server waits for the rest (`read_exact`) instead of taking the
/// first piece for the frame (the original's `read` returns what has arrived, which
/// may be part of it). The split is made certain, not left to the network: each first
/// piece travels behind a whole request (a chat to a user who does not exist, answered
/// -1 by both servers), so that by the time that request's reply comes back the server
/// holds the piece, and only then is the rest sent. Every split point of a LOGIN frame
/// (a login again as oneself, answered 1) and of a CHAT frame is tried.
pub fn frames_split_at_any_byte_are_read_whole(addr: SocketAddr) {
    let mut sender = raw_logged_in(addr, "1001");
    let mut receiver = raw_logged_in(addr, "1002");
    let probe = chat_frame("1001", "nobody", "a whole request before the piece");
    let probe_reply = chat_reply(
        -1,
        &chat_body("1001", "nobody", "a whole request before the piece"),
    );
    let login = login_frame("1001", PASSWORD);
    let chat = chat_frame("1001", "1002", "in two pieces");
    let delivered = chat_reply(1, &chat_body("1001", "1002", "in two pieces"));
    for (frame, what) in [(&login, "LOGIN"), (&chat, "CHAT")] {
        for split in 1..frame.len() {
            let mut first = probe.clone();
            first.extend_from_slice(&frame[..split]);
            send(&mut sender, &first);
            assert_frames!(
                read_n(&mut sender, probe_reply.len()),
                probe_reply,
                "the reply to the request before the first {split} bytes of a {what} frame"
            );
            send(&mut sender, &frame[split..]);
            if what == "LOGIN" {
                assert_frames!(
                    read_n(&mut sender, FEEDBACK_LEN),
                    ints(&[1, 40, 1]),
                    "a LOGIN frame split after byte {split}"
                );
            } else {
                assert_frames!(
                    read_n(&mut receiver, delivered.len()),
                    delivered,
                    "the delivery of a CHAT frame split after byte {split}"
                );
                assert_frames!(
                    read_n(&mut sender, delivered.len()),
                    delivered,
                    "the echo of a CHAT frame split after byte {split}"
                );
            }
        }
    }
    assert_in_step(&mut sender);
}

/// Many clients connecting and logging in at the same moment each get their own answer
/// (the original hands each socket to its thread through a pointer to a variable the
/// next accept overwrites, and concurrent logins go unanswered).
pub fn concurrent_logins_are_each_answered(addr: SocketAddr) {
    let logins: Vec<_> = (0..48)
        .map(|i| {
            thread::spawn(move || {
                let name = BUILT_IN_USERS[i % BUILT_IN_USERS.len()];
                let mut stream = connect(addr);
                send(&mut stream, &login_frame(name, PASSWORD));
                read_n(&mut stream, 12)
            })
        })
        .collect();
    for login in logins {
        assert_eq!(login.join().unwrap(), ints(&[1, 40, 1]));
    }
}

/// How many times each user under fire logs in again, each time on a new connection.
const LOGINS_UNDER_FIRE: usize = 250;
/// Users who log in again and again while the senders write to them.
const RECEIVERS_UNDER_FIRE: [&str; 2] = ["似末", "玛卡巴卡"];
/// Users who write to the receivers without pause, each on its own connection.
const SENDERS_UNDER_FIRE: [&str; 4] = ["1001", "1002", "1003", "花开富贵"];

/// Reads `stream` until it ends, on a thread: what arrives is not checked, only taken,
/// so that the server never blocks writing to it.
fn drain(stream: &std::net::TcpStream) -> thread::JoinHandle<()> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        let mut sink = [0; 4096];
        while matches!(std::io::Read::read(&mut stream, &mut sink), Ok(n) if n > 0) {}
    })
}

/// A login's reply is the first frame its connection gets, even while others write to
/// that user at that very moment: a sender can find the new connection in the online
/// map only once the reply is on its way. (A server that puts the user in the map and
/// lets go of the map's lock before it writes the reply lets a delivery overtake the
/// reply: the client, which reads 12 bytes for its reply, reads a CHAT feedback
/// instead, and is out of step from then on.) Two users log in again and again on new
/// connections, each taking over from the last, while four senders pipeline messages
/// to them without pause. The moment between the map and the reply lasts well under a
/// microsecond, so this catches a server that opens it only in some runs: a guard, not
/// a proof (see exercise 6 of docs/TOUR.md for a race that is caught every time).
pub fn a_login_reply_comes_before_any_message_sent_during_the_login(addr: SocketAddr) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = SENDERS_UNDER_FIRE
        .iter()
        .map(|&name| {
            let mut stream = raw_logged_in(addr, name);
            let stop = std::sync::Arc::clone(&stop);
            let frames: Vec<u8> = RECEIVERS_UNDER_FIRE
                .iter()
                .flat_map(|receiver| chat_frame(name, receiver, "are you there yet?"))
                .collect();
            thread::spawn(move || {
                let echoes = drain(&stream);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if std::io::Write::write_all(&mut stream, &frames).is_err() {
                        break;
                    }
                }
                let _ = stream.shutdown(std::net::Shutdown::Write);
                echoes.join().unwrap();
            })
        })
        .collect();
    let receivers: Vec<_> = RECEIVERS_UNDER_FIRE
        .iter()
        .map(|&name| thread::spawn(move || log_in_again_and_again(addr, name)))
        .collect();
    let failures: Vec<String> = receivers
        .into_iter()
        .filter_map(|receiver| receiver.join().unwrap())
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Logs `name` in `LOGINS_UNDER_FIRE` times, each on a new connection, keeping the
/// newest (drained) until the next has its reply; the first login whose first frame is
/// not its reply, described.
fn log_in_again_and_again(addr: SocketAddr, name: &str) -> Option<String> {
    let mut newest: Option<(std::net::TcpStream, thread::JoinHandle<()>)> = None;
    let mut failure = None;
    for login in 1..=LOGINS_UNDER_FIRE {
        let mut stream = connect(addr);
        send(&mut stream, &login_frame(name, PASSWORD));
        let first = read_n(&mut stream, FEEDBACK_LEN);
        if first != ints(&[1, 40, 1]) {
            failure = Some(format!(
                "login {login} of {LOGINS_UNDER_FIRE} of {name}, while {} wrote to it: its \
                 first frame began {}, not its LOGIN reply {}: a message overtook the reply",
                SENDERS_UNDER_FIRE.join(", "),
                describe_frames(&first),
                describe_frames(&ints(&[1, 40, 1])),
            ));
            break;
        }
        let reader = drain(&stream);
        if let Some((older, reader)) = newest.replace((stream, reader)) {
            let _ = older.shutdown(std::net::Shutdown::Both);
            reader.join().unwrap();
        }
    }
    if let Some((last, reader)) = newest {
        let _ = last.shutdown(std::net::Shutdown::Both);
        reader.join().unwrap();
    }
    failure
}

/// The cleanup of a connection that leaves takes its user offline only if the online
/// map still names that connection: a newer login of the same user, on another
/// connection, stays online and receives. (A cleanup that removes the name whatever
/// connection it maps to lets an old connection, closing late, take a newer login
/// offline: messages to that user then fail with -1 although the user is there.)
pub fn a_newer_login_stays_online_when_the_older_connection_leaves(addr: SocketAddr) {
    let mut sender = raw_logged_in(addr, "1001");
    let mut older = raw_logged_in(addr, "1002");
    let mut newer = raw_logged_in(addr, "1002");
    // The older connection leaves. Its end of stream comes after its session's cleanup
    // (the full server closes it at the newer login; the example, when its thread
    // ends, after the cleanup): once it is seen, the cleanup is done.
    let _ = older.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    if let Err(error) = std::io::Read::read_to_end(&mut older, &mut rest) {
        panic!("the older connection of 1002 was never closed: {error}");
    }
    send(&mut sender, &chat_frame("1001", "1002", "still there?"));
    let expected = chat_reply(1, &chat_body("1001", "1002", "still there?"));
    assert_frames!(
        read_n(&mut sender, 152),
        expected,
        "the echo of a message to 1002, logged in on a newer connection after the older one left"
    );
    assert_frames!(
        read_n(&mut newer, 152),
        expected,
        "the delivery to the newer login"
    );
    assert_in_step(&mut newer);
}

/// Declares a `#[test]` for each exchange above, each against a server made by
/// `$start` (an expression whose value has an `addr()` method and stops the server
/// when dropped). The one list of the exchanges both servers must pass.
#[macro_export]
macro_rules! exchange_tests {
    ($start:expr) => {
        $crate::exchange_tests!($start;
            every_built_in_user_logs_in_with_exactly_twelve_bytes,
            a_wrong_password_or_unknown_name_is_answered_minus_one,
            chat_is_echoed_to_the_sender_and_delivered_with_the_same_152_bytes,
            the_delivery_is_written_before_the_echo,
            the_relayed_sender_is_the_session_name_whatever_the_client_wrote,
            chatting_while_alone_keeps_the_stream_in_step,
            frames_split_at_any_byte_are_read_whole,
            concurrent_logins_are_each_answered,
            a_login_reply_comes_before_any_message_sent_during_the_login,
            a_newer_login_stays_online_when_the_older_connection_leaves,
        );
    };
    ($start:expr; $($name:ident),+ $(,)?) => {$(
        #[test]
        fn $name() {
            let server = $start;
            common::exchanges::$name(server.addr());
        }
    )+};
}
