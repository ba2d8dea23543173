//! Limits and faults (docs/PROTOCOL.md §2): slow receivers, the client limit, abrupt
//! disconnects. Each test fails if the behaviour it names is missing.

mod common;

use common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A receiver that never reads is flooded with megabytes, and meanwhile two other users
/// keep chatting with quick round trips; once its write times out the receiver is
/// disconnected and what follows goes to its mailbox (flag 0), then, the mailbox being
/// small here, is refused (flag -7).
#[test]
fn a_receiver_that_stops_reading_delays_nobody_else() {
    const FLOOD_BATCHES: usize = 400; // 40,000 frames, about 6 MB
    let server = start_with(chatroom::users::Accounts::built_in(), |config| {
        config.write_timeout = Duration::from_secs(2);
        config.mailbox_limit = 50;
    });
    let addr = server.addr();
    let mut sleeper = connect(addr);
    raw_login(&mut sleeper, "1003"); // and never reads again

    let flooder = logged_in(addr, "1001");
    let (mut flood_out, mut flood_in) = flooder.split();
    let writer = thread::spawn(move || {
        let frame = chat_frame("1001", "1003", "flood flood flood flood flood flood flood");
        let batch = frame.repeat(100);
        for _ in 0..FLOOD_BATCHES {
            if flood_out.write_all(&batch).is_err() {
                break; // the server shut down at the end of the test
            }
        }
    });
    let cut_off = Arc::new(AtomicBool::new(false));
    let saw_cut_off = Arc::clone(&cut_off);
    let echoes = thread::spawn(move || {
        let mut delivered = 0;
        while let Ok(reply) = chatroom::blocking_client::read_reply(&mut flood_in) {
            match reply {
                chatroom::blocking_client::Reply::Chat { flag: 1, .. } => delivered += 1,
                chatroom::blocking_client::Reply::Chat { flag: 0 | -7, .. } => {
                    saw_cut_off.store(true, Ordering::Release)
                }
                other => panic!("unexpected echo {other:?}"),
            }
        }
        delivered
    });

    let mut a = logged_in(addr, "似末");
    let mut b = logged_in(addr, "玛卡巴卡");
    let mut round_trips = 0;
    while !cut_off.load(Ordering::Acquire) || round_trips < 20 {
        let started = Instant::now();
        a.send_chat("玛卡巴卡", "ping").unwrap();
        // The delivery, then the echo (the server delivers first).
        assert_eq!(next_chat(&mut b).1.text.to_lossy(), "ping");
        assert_eq!(next_chat(&mut a), (1, next_chat_echo("ping")));
        b.send_chat("似末", "pong").unwrap();
        assert_eq!(next_chat(&mut a).1.text.to_lossy(), "pong");
        assert_eq!(next_chat(&mut b).0, 1);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "round trip took {took:?}");
        round_trips += 1;
        assert!(round_trips < 100_000, "the sleeper was never cut off");
    }
    // The server closed the sleeper: after the bytes already in its buffers, EOF. The
    // write that timed out may have left part of a frame, which is why it was closed.
    let mut rest = Vec::new();
    sleeper.read_to_end(&mut rest).unwrap();
    assert!(rest.len() > 1_000_000, "it was sent megabytes");
    for frame in rest.chunks_exact(152) {
        assert_eq!(
            frame[..12],
            ints(&[2, 140, 1]),
            "whole frames up to the cut"
        );
    }
    drop(server);
    writer.join().unwrap();
    assert!(echoes.join().unwrap() > 0);
}

/// The message 似末 sent to 玛卡巴卡 as the server echoes it.
fn next_chat_echo(text: &str) -> chatroom::protocol::ChatMessage {
    let body: [u8; 140] = chat_body("似末", "玛卡巴卡", text).try_into().unwrap();
    chatroom::protocol::ChatMessage::decode(&body)
}

#[test]
fn when_every_slot_is_logged_in_a_newcomer_gets_minus_five_and_is_closed() {
    let server = start_with(chatroom::users::Accounts::built_in(), |config| {
        config.max_clients = 3;
    });
    let mut held: Vec<_> = ["1001", "1002"]
        .iter()
        .map(|name| logged_in(server.addr(), name))
        .collect();
    let mut leaving = raw_logged_in(server.addr(), "1003");
    for _ in 0..3 {
        let mut refused = connect(server.addr());
        assert_frames!(read_n(&mut refused, 12), ints(&[1, 40, -5]));
        assert!(closed_by_server(&mut refused));
    }
    // The held clients are unaffected.
    held[0].send_chat("1002", "still fine").unwrap();
    assert_eq!(next_chat(&mut held[1]).1.text.to_lossy(), "still fine");

    // A slot comes back when a connection ends, however it ends: here a plain EOF. Its
    // session ends a moment after the client sees the EOF, so the next connection may
    // still find the server full; it is told so, and tries again.
    leaving.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_by_server(&mut leaving));
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let mut next = connect(server.addr());
        send(&mut next, &login_frame("1003", PASSWORD));
        if read_n(&mut next, 12) == ints(&[1, 40, 1]) {
            break;
        }
        // Refused: the slot is not back yet; the refusal itself is the pause.
        assert!(Instant::now() < deadline, "the freed slot is never reused");
    }
}

/// A limit far above what the machine could hold is a limit, not a reservation: the
/// server starts and serves (it used to size a table for every allowed client up front,
/// and aborted asking for gigabytes).
#[test]
fn a_huge_client_limit_reserves_nothing_up_front() {
    let server = start_with(chatroom::users::Accounts::built_in(), |config| {
        config.max_clients = usize::MAX;
    });
    let mut alice = logged_in(server.addr(), "1001");
    let mut bob = logged_in(server.addr(), "1002");
    alice.send_chat("1002", "plenty of room").unwrap();
    assert_eq!(next_chat(&mut bob).1.text.to_lossy(), "plenty of room");
}

#[test]
fn a_client_closing_mid_frame_affects_no_one_else() {
    let server = start();
    let mut a = logged_in(server.addr(), "1001");
    let mut b = logged_in(server.addr(), "1002");
    for cut in [1, 4, 8, 20, 100, 147] {
        let mut rude = connect(server.addr());
        raw_login(&mut rude, "1003");
        send(&mut rude, &chat_frame("1003", "1001", "cut short")[..cut]);
        drop(rude);
        a.send_chat("1002", &format!("after a cut at {cut}"))
            .unwrap();
        assert_eq!(
            next_chat(&mut b).1.text.to_lossy(),
            format!("after a cut at {cut}")
        );
        assert_eq!(next_chat(&mut a).0, 1);
    }
}

#[test]
fn messages_sent_just_before_hanging_up_are_still_delivered() {
    let server = start();
    let mut receiver = logged_in(server.addr(), "1002");
    let mut sender = connect(server.addr());
    let mut burst = login_frame("1001", PASSWORD);
    for seq in 0..200 {
        burst.extend(chat_frame("1001", "1002", &format!("{seq}")));
    }
    send(&mut sender, &burst);
    // Hang up our side at once, without reading a single reply.
    sender.shutdown(std::net::Shutdown::Write).unwrap();
    for seq in 0..200 {
        assert_eq!(next_chat(&mut receiver).1.text.to_lossy(), format!("{seq}"));
    }
    drop(sender);
}
