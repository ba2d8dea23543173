//! The defences against a patient attacker, over real TCP: squatting on the client
//! limit, frames begun and never finished, guessing passwords however one reconnects,
//! and a second login whose reply fails. Each test fails without the defence it names.
//!
//! Clients "from another machine" bind to 127.0.0.2 before connecting: on Linux every
//! 127.x.y.z is loopback, and the server sees a different client address.

mod common;

use common::*;
use std::net::TcpStream;
use std::time::Duration;

/// Where the attacker connects from, when the test needs the users elsewhere.
const ATTACKER: &str = ANOTHER_MACHINE;

#[test]
fn connections_that_never_log_in_make_room_oldest_first() {
    const LIMIT: usize = 20;
    let server = start_with(chatroom::users::Accounts::built_in(), |config| {
        config.max_clients = LIMIT;
    });
    let addr = server.addr();
    let mut user = raw_logged_in(addr, "1001");
    // The rest of the slots: idle connections and connections stuck half-way through a
    // frame (the frame timeout is 10 s, far longer than this test needs).
    let mut squatters: Vec<TcpStream> = (1..LIMIT)
        .map(|i| {
            let mut squatter = connect_from(ATTACKER, addr);
            if i % 2 == 0 {
                send(&mut squatter, &ints(&[1]));
            }
            squatter
        })
        .collect();

    // Each newcomer logs in; each time the oldest squatter is told -5 and closed. The
    // newcomers stay, so the server stays full.
    let mut newcomers = Vec::new();
    for (i, name) in ["1002", "1003", "似末"].into_iter().enumerate() {
        newcomers.push(raw_logged_in(addr, name));
        let evicted = &mut squatters[i];
        assert_frames!(read_n(evicted, 12), ints(&[1, 40, -5]), "squatter {i}");
        assert!(closed_by_server(evicted), "squatter {i}");
    }
    // Logged-in users are never evicted.
    send(&mut user, &chat_frame("1001", "1001", "still here"));
    assert_frames!(
        read_n(&mut user, 152),
        chat_reply(1, &chat_body("1001", "1001", "still here"))
    );
}

#[test]
fn a_frame_begun_and_not_finished_is_closed_after_the_frame_timeout_an_idle_one_is_not() {
    let server = start_with(chatroom::users::Accounts::built_in(), |config| {
        config.frame_timeout = Duration::from_secs(1);
    });
    let mut idle = connect(server.addr());
    let mut half_header = connect(server.addr());
    send(&mut half_header, &ints(&[2]));
    let mut half_body = raw_logged_in(server.addr(), "1002");
    send(
        &mut half_body,
        &chat_frame("1002", "1001", "never finished")[..100],
    );

    // Both are closed by the server (within READ_TIMEOUT, which is 10 frame timeouts).
    assert!(closed_by_server(&mut half_header));
    assert!(closed_by_server(&mut half_body));
    // The idle connection has waited longer than the frame timeout by now, and is
    // still served.
    raw_login(&mut idle, "1001");
}

#[test]
fn a_success_does_not_reset_the_failures_of_a_connection() {
    let server = start();
    let mut guesser = connect(server.addr());
    for _ in 0..4 {
        send(&mut guesser, &login_frame("1002", "guess"));
        assert_frames!(read_n(&mut guesser, 12), ints(&[1, 40, -1]));
    }
    // Logging in as oneself in between used to reset the count.
    raw_login(&mut guesser, "1001");
    send(&mut guesser, &login_frame("1002", "guess"));
    assert_frames!(read_n(&mut guesser, 12), ints(&[1, 40, -6]));
    assert!(closed_by_server(&mut guesser));
}

#[test]
fn an_address_with_too_many_failed_logins_is_refused_unchecked_and_others_are_not() {
    const FAILURES: usize = 7;
    let server = start_with(chatroom::users::Accounts::built_in(), |config| {
        config.login_failures = FAILURES;
    });
    let addr = server.addr();
    // Guessing on fresh connections, four at a time, stays under the per-connection
    // limit of five, and still runs into the per-address one.
    let mut failures = 0;
    while failures < FAILURES {
        let mut guesser = connect_from(ATTACKER, addr);
        for _ in 0..4.min(FAILURES - failures) {
            send(&mut guesser, &login_frame("1002", "guess"));
            assert_frames!(read_n(&mut guesser, 12), ints(&[1, 40, -1]));
            failures += 1;
        }
    }
    // Now even the right password gets -6 from that address, and the connection closes.
    let mut blocked = connect_from(ATTACKER, addr);
    send(&mut blocked, &login_frame("1002", PASSWORD));
    assert_frames!(read_n(&mut blocked, 12), ints(&[1, 40, -6]));
    assert!(closed_by_server(&mut blocked));
    // A user at another address logs in as that very account.
    raw_logged_in(addr, "1002");
}

/// A second login as 1001 whose connection resets at once: whatever happens to its
/// reply, the first connection of 1001 is either the one the online map names (a
/// message to 1001 reaches it) or closed. It used to stay open and out of the map, so
/// that messages to 1001 were queued while it could still send as 1001.
#[test]
fn a_second_login_that_resets_never_leaves_the_first_open_and_offline() {
    // Nothing is stored for an offline 1001, so a new login of 1001 gets no old mail.
    let server = start_with(chatroom::users::Accounts::built_in(), |config| {
        config.mailbox_limit = 0;
    });
    let addr = server.addr();
    let mut friend = logged_in(addr, "1002");
    for round in 0..50 {
        let mut first = raw_logged_in(addr, "1001");
        let mut second = connect(addr);
        // Leave a reply unread (USERS before login: -2), so that dropping the socket
        // sends a reset rather than a FIN.
        send(&mut second, &ints(&[3, 0]));
        let mut reply = [0; 12];
        second.peek(&mut reply).unwrap();
        send(&mut second, &login_frame("1001", PASSWORD));
        drop(second);

        let text = format!("round {round}");
        friend.send_chat("1001", &text).unwrap();
        let (flag, _) = next_chat(&mut friend);
        // The second login may or may not have been served yet; it may even still
        // come. Either way the first connection must get the message or be closed.
        first
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut header = [0; 12];
        match std::io::Read::read(&mut first, &mut header) {
            Ok(0) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            Ok(_) if flag == 1 => {
                // It got the delivery; the rest of the frame follows.
                read_n(&mut first, 140);
            }
            Ok(_) => panic!("round {round}: first connection got a frame, echo was {flag}"),
            Err(error) if flag != 1 => {
                panic!(
                    "round {round}: 1001 is offline (echo {flag}) but its first connection is open ({error})"
                )
            }
            Err(_) => panic!("round {round}: the delivery to the first connection never came"),
        }
    }
}
