//! The valid exchanges of the original protocol, as functions of a server's address, so
//! that the same tests run against the full server (`tests/wire.rs`) and against the
//! first step, `examples/minimal.rs` (`tests/minimal.rs`). Only what both must do byte
//! for byte is here: the original's own LOGIN and CHAT with the six built-in users.

use super::*;
use std::net::SocketAddr;
use std::thread;

/// Proves the stream holds nothing more and is in step: the next request's reply comes
/// next (a wrong password, answered -1 by both servers).
fn assert_in_step(stream: &mut std::net::TcpStream) {
    send(stream, &login_frame("1001", "not the password"));
    assert_eq!(
        read_n(stream, 12),
        ints(&[1, 40, -1]),
        "next: the probe's reply"
    );
}

pub fn every_built_in_user_logs_in_with_exactly_twelve_bytes(addr: SocketAddr) {
    for name in BUILT_IN_USERS {
        let mut stream = connect(addr);
        send(&mut stream, &login_frame(name, PASSWORD));
        assert_eq!(read_n(&mut stream, 12), ints(&[1, 40, 1]), "{name}");
        assert_in_step(&mut stream);
    }
}

pub fn a_wrong_password_or_unknown_name_is_answered_minus_one(addr: SocketAddr) {
    let mut stream = connect(addr);
    for (name, password) in [("1001", "654321"), ("1004", PASSWORD), ("似末", "")] {
        send(&mut stream, &login_frame(name, password));
        assert_eq!(read_n(&mut stream, 12), ints(&[1, 40, -1]), "{name}");
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
    assert_eq!(read_n(&mut simo, 152), expected, "the echo");
    assert_eq!(read_n(&mut makabaka, 152), expected, "the delivery");

    send(&mut makabaka, &chat_frame("玛卡巴卡", "似末", "hi"));
    let expected = chat_reply(1, &chat_body("玛卡巴卡", "似末", "hi"));
    assert_eq!(read_n(&mut makabaka, 152), expected);
    assert_eq!(read_n(&mut simo, 152), expected);
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
    assert_eq!(read_n(&mut victim, 152), expected);
    assert_eq!(read_n(&mut liar, 152), expected);
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

pub fn frames_split_into_single_bytes_are_read_whole(addr: SocketAddr) {
    let mut a = connect(addr);
    let mut b = connect(addr);
    raw_login(&mut b, "1002");
    let mut bytes = login_frame("1001", PASSWORD);
    bytes.extend(chat_frame("1001", "1002", "one byte at a time"));
    for byte in bytes {
        send(&mut a, &[byte]);
    }
    assert_eq!(read_n(&mut a, 12), ints(&[1, 40, 1]));
    let expected = chat_reply(1, &chat_body("1001", "1002", "one byte at a time"));
    assert_eq!(read_n(&mut a, 152), expected);
    assert_eq!(read_n(&mut b, 152), expected);
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
            frames_split_into_single_bytes_are_read_whole,
            concurrent_logins_are_each_answered,
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
