//! Hostile input while honest clients chat: thousands of random and mutated frames from
//! a seeded generator (bad lengths, unknown types, truncations, random bytes, oversized
//! fields, invalid UTF-8, connections dropped mid-frame). The server must not die, every
//! honest message must arrive exactly once and in order, and the thread count must
//! return to where it started.
//!
//! The attackers connect from 127.0.0.2 and the honest clients from 127.0.0.1: the
//! attackers' failed logins soon block their own address (failed logins count per
//! client address), which must not lock the honest users out.
//!
//! The seed is printed (and shown when the test fails); `HOSTILE_SEED=N cargo test
//! --test hostile` replays a run. One test in this file: it counts this process's
//! threads.

mod common;

use chatroom::blocking_client::Reply;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

const DEFAULT_SEED: u64 = 0x5EED_C4A7_2026;
const HONEST_PAIRS: usize = 4;
const HONEST_MESSAGES: usize = 300;
const HOSTILE_THREADS: usize = 4;
const HOSTILE_CONNECTIONS_PER_THREAD: usize = 150;
const HONEST_PASSWORD: &str = "not-for-attackers";
const HOSTILE_USERS: usize = 5;
/// Where the attackers connect from: another client address than the honest users'.
const ATTACKER_ADDRESS: &str = ANOTHER_MACHINE;

fn users() -> chatroom::users::Accounts {
    let mut file = String::new();
    for i in 0..HONEST_PAIRS {
        file.push_str(&format!("a{i}:{HONEST_PASSWORD}\nb{i}:{HONEST_PASSWORD}\n"));
    }
    for i in 0..HOSTILE_USERS {
        file.push_str(&format!("x{i}:{PASSWORD}\n"));
    }
    chatroom::users::Accounts::parse(file.as_bytes()).unwrap()
}

/// One frame's worth of hostility; `true` in the second place when the server is
/// expected to hang up after it (so generating more is pointless).
fn hostile_frame(rng: &mut Rng) -> (Vec<u8>, bool) {
    let names = ["a0", "b1", "x0", "x1", "*", "", "nobody", "似末"];
    let pick = |rng: &mut Rng| names[rng.below(names.len())];
    // Frames that end the connection are rarer, so that most connections carry many.
    let choice = if rng.below(8) == 0 {
        8 + rng.below(3)
    } else {
        rng.below(8)
    };
    match choice {
        0 => (
            login_frame(&format!("x{}", rng.below(HOSTILE_USERS)), PASSWORD),
            false,
        ),
        1 => (login_frame(pick(rng), "guess"), false),
        2 => {
            let sender = pick(rng);
            let receiver = pick(rng);
            (chat_frame(sender, receiver, "hostile hello"), false)
        }
        3 => {
            // Random bytes in every field: no NULs, invalid UTF-8, 20-byte names.
            let mut frame = ints(&[2, 140]);
            frame.extend(rng.bytes(140));
            (frame, false)
        }
        4 => {
            // Random bytes in a LOGIN body: invalid UTF-8 names.
            let mut frame = ints(&[1, 40]);
            frame.extend(rng.bytes(40));
            (frame, false)
        }
        5 => {
            // A known type with the wrong length, oversized fields included.
            let kind = [1, 2, 3][rng.below(3)];
            let len = rng.below(600);
            let mut frame = ints(&[kind, len as i32]);
            frame.extend(rng.bytes(len));
            (frame, false)
        }
        6 => {
            // An unknown type.
            let kind = rng.next_u64() as i32;
            let kind = if (1..=3).contains(&kind) { 42 } else { kind };
            let len = rng.below(300);
            let mut frame = ints(&[kind, len as i32]);
            frame.extend(rng.bytes(len));
            (frame, false)
        }
        7 => (ints(&[3, 0]), false),
        8 => {
            // A length out of bounds: the server hangs up.
            let len = [-1, -4096, 4097, i32::MAX, i32::MIN][rng.below(5)];
            (ints(&[rng.below(4) as i32, len]), true)
        }
        9 => {
            // Random bytes: anything may follow, a hang-up included.
            let len = 1 + rng.below(200);
            (rng.bytes(len), true)
        }
        _ => {
            // A frame cut short, then nothing more.
            let frame = chat_frame("x0", "a0", "truncated");
            let cut = 1 + rng.below(frame.len() - 1);
            (frame[..cut].to_vec(), true)
        }
    }
}

/// One hostile connection: a burst of frames, then a polite or an abrupt end.
/// Returns how many frames it sent.
fn hostile_connection(addr: SocketAddr, rng: &mut Rng) -> usize {
    let mut stream = connect_from(ATTACKER_ADDRESS, addr);
    let mut burst = Vec::new();
    let mut frames = 0;
    for _ in 0..(5 + rng.below(40)) {
        let (frame, ends) = hostile_frame(rng);
        burst.extend(frame);
        frames += 1;
        if ends {
            break;
        }
    }
    // The server may hang up half-way; that is its right.
    let _ = stream.write_all(&burst);
    if rng.below(2) == 0 {
        // Abrupt: with replies unread this is a reset.
        drop(stream);
    } else {
        let _ = stream.shutdown(Shutdown::Write);
        let mut replies = Vec::new();
        let _ = stream.read_to_end(&mut replies);
    }
    frames
}

#[test]
fn hostile_frames_do_not_harm_honest_clients() {
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("hostile seed: {seed} (replay with HOSTILE_SEED={seed})");
    let server = start_with(users(), |_| {});
    let addr = server.addr();
    let baseline = thread_count();

    let receivers: Vec<_> = (0..HONEST_PAIRS)
        .map(|i| {
            let mut client = chatroom::blocking_client::Client::connect(addr).unwrap();
            client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            assert_eq!(client.login(&format!("b{i}"), HONEST_PASSWORD).unwrap(), 1);
            thread::spawn(move || {
                let from = format!("a{i}");
                let mut next = 0;
                while next < HONEST_MESSAGES {
                    let (flag, message) = next_chat(&mut client);
                    if message.sender.to_lossy() != from {
                        continue; // hostile chatter is allowed to reach us
                    }
                    assert_eq!(flag, 1);
                    assert_eq!(
                        message.text.to_lossy(),
                        format!("{from} {next}"),
                        "seed {seed}"
                    );
                    next += 1;
                }
                client
            })
        })
        .collect();

    // Attackers keep going until the honest senders are done, and at least for
    // HOSTILE_CONNECTIONS_PER_THREAD connections each.
    let honest_done = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..HOSTILE_THREADS)
        .map(|t| {
            let mut rng = Rng::new(seed.wrapping_add(t as u64));
            let honest_done = Arc::clone(&honest_done);
            thread::spawn(move || {
                let (mut connections, mut frames) = (0, 0);
                while connections < HOSTILE_CONNECTIONS_PER_THREAD
                    || !honest_done.load(Ordering::Acquire)
                {
                    frames += hostile_connection(addr, &mut rng);
                    connections += 1;
                }
                (connections, frames)
            })
        })
        .collect();

    let senders: Vec<_> = (0..HONEST_PAIRS)
        .map(|i| {
            thread::spawn(move || {
                let name = format!("a{i}");
                let mut client = chatroom::blocking_client::Client::connect(addr).unwrap();
                client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                assert_eq!(client.login(&name, HONEST_PASSWORD).unwrap(), 1);
                let mut echoed = 0;
                for seq in 0..HONEST_MESSAGES {
                    client
                        .send_chat(&format!("b{i}"), &format!("{name} {seq}"))
                        .unwrap();
                    // A window of 8 unacknowledged messages.
                    while seq + 1 - echoed > 8 || (seq + 1 == HONEST_MESSAGES && echoed < seq + 1) {
                        match client.read_reply().unwrap() {
                            Reply::Chat { flag, message } if message.sender.to_lossy() == name => {
                                assert_eq!(flag, 1);
                                assert_eq!(message.text.to_lossy(), format!("{name} {echoed}"));
                                echoed += 1;
                            }
                            _ => {} // hostile chatter addressed to us
                        }
                    }
                }
                client
            })
        })
        .collect();

    let started = Instant::now();
    let senders: Vec<_> = senders
        .into_iter()
        .map(|s| s.join().expect("sender"))
        .collect();
    let receivers: Vec<_> = receivers
        .into_iter()
        .map(|r| r.join().expect("receiver"))
        .collect();
    honest_done.store(true, Ordering::Release);
    let (connections, thrown) = attackers
        .into_iter()
        .map(|a| a.join().expect("attacker"))
        .fold((0, 0), |(c, f), (dc, df)| (c + dc, f + df));
    eprintln!(
        "threw {thrown} hostile frames on {connections} connections in {:?}",
        started.elapsed()
    );
    assert!(thrown >= 3_000, "only {thrown} hostile frames");

    // Still serving.
    let mut late = logged_in(addr, "x0");
    late.send_chat("x0", "still alive?").unwrap();
    assert_eq!(next_chat(&mut late).0, 1);
    drop((late, senders, receivers));

    assert_threads_return_to(baseline, &format!("seed {seed}"));
}
