//! Sessions over real TCP: logging in and out, the newest login winning, failed logins,
//! and many clients at once.

mod common;

use chatroom::blocking_client::Reply;
use common::*;
use std::collections::HashMap;
use std::thread;

#[test]
fn after_a_disconnect_the_user_can_log_in_again_and_receive() {
    let server = start();
    let mut sender = logged_in(server.addr(), "1002");
    for round in 0..3 {
        let first = logged_in(server.addr(), "1001");
        first.shutdown().unwrap();
        drop(first);
        let mut again = logged_in(server.addr(), "1001");
        sender.send_chat("1001", &format!("round {round}")).unwrap();
        let (flag, message) = next_chat(&mut again);
        assert_eq!(
            (flag, message.text.to_lossy()),
            (1, format!("round {round}"))
        );
        assert_eq!(next_chat(&mut sender).0, 1);
    }
}

#[test]
fn the_newest_login_wins_and_the_older_connection_sees_eof() {
    let server = start();
    let mut older = connect(server.addr());
    raw_login(&mut older, "似末");
    let mut newer = logged_in(server.addr(), "似末");
    assert!(
        closed_by_server(&mut older),
        "the older connection is closed"
    );

    let mut friend = logged_in(server.addr(), "1001");
    friend.send_chat("似末", "which one?").unwrap();
    assert_eq!(next_chat(&mut newer).1.text.to_lossy(), "which one?");
    assert_eq!(next_chat(&mut friend).0, 1);
}

#[test]
fn an_old_connections_cleanup_never_removes_a_newer_login() {
    let server = start();
    let mut friend = logged_in(server.addr(), "1002");
    for round in 0..30 {
        let mut older = connect(server.addr());
        raw_login(&mut older, "1001");
        let mut newer = logged_in(server.addr(), "1001");
        // Once the older connection has seen EOF its thread is ending, and its cleanup
        // races what follows; whichever order they run in, 1001 stays online.
        assert!(closed_by_server(&mut older));
        drop(older);
        friend.send_chat("1001", &format!("round {round}")).unwrap();
        assert_eq!(next_chat(&mut friend).0, 1, "round {round}: delivered live");
        assert_eq!(
            next_chat(&mut newer).1.text.to_lossy(),
            format!("round {round}")
        );
        newer.send_users().unwrap();
        match newer.read_reply().unwrap() {
            Reply::Users { names, .. } => assert!(names.contains(&"1001".to_string())),
            other => panic!("expected USERS, got {other:?}"),
        }
    }
}

#[test]
fn logging_in_again_as_the_same_user_changes_nothing() {
    let server = start();
    let mut client = logged_in(server.addr(), "1001");
    assert_eq!(client.login("1001", PASSWORD).unwrap(), 1);
    let mut friend = logged_in(server.addr(), "1002");
    friend.send_chat("1001", "still here?").unwrap();
    assert_eq!(next_chat(&mut client).1.text.to_lossy(), "still here?");
}

#[test]
fn logging_in_as_another_user_switches_and_the_old_name_goes_offline() {
    let server = start();
    let mut client = logged_in(server.addr(), "1001");
    assert_eq!(client.login("1003", PASSWORD).unwrap(), 1);
    client.send_users().unwrap();
    assert_eq!(
        client.read_reply().unwrap(),
        Reply::Users {
            flag: 1,
            names: vec!["1003".to_string()]
        }
    );
    let mut friend = logged_in(server.addr(), "1002");
    friend.send_chat("1001", "to the old name").unwrap();
    assert_eq!(next_chat(&mut friend).0, 0, "1001 is offline now: queued");
    friend.send_chat("1003", "to the new name").unwrap();
    assert_eq!(next_chat(&mut friend).0, 1);
    let (_, message) = next_chat(&mut client);
    assert_eq!(message.sender.to_lossy(), "1002");
    assert_eq!(message.text.to_lossy(), "to the new name");
}

#[test]
fn the_fifth_failed_login_in_a_row_is_minus_six_and_closes() {
    let server = start();
    let mut stream = connect(server.addr());
    for _ in 0..4 {
        send(&mut stream, &login_frame("1001", "wrong"));
        assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -1]));
    }
    send(&mut stream, &login_frame("1001", "wrong"));
    assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -6]));
    assert!(closed_by_server(&mut stream));
    // Another connection may still log in as that user.
    logged_in(server.addr(), "1001");
}

#[test]
fn malformed_logins_count_as_failures() {
    let server = start();
    let mut stream = connect(server.addr());
    for _ in 0..3 {
        send(&mut stream, &login_frame("", "x"));
        assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -3]));
    }
    let mut short = ints(&[1, 3]);
    short.extend([0, 0, 0]);
    send(&mut stream, &short);
    assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -3]));
    send(&mut stream, &login_frame("1001", "wrong"));
    assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -6]));
    assert!(closed_by_server(&mut stream));
}

/// 50 senders × 100 messages into one receiver: every frame arrives intact, exactly
/// once, and each sender's messages in the order sent.
#[test]
fn fifty_concurrent_senders_reach_one_receiver_intact_and_in_order() {
    const SENDERS: usize = 50;
    const MESSAGES: usize = 100;
    let server = start_with(numbered_users("u", SENDERS + 1), |_| {});
    let receiver_name = format!("u{SENDERS}");
    let mut receiver = logged_in(server.addr(), &receiver_name);

    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let addr = server.addr();
            let to = receiver_name.clone();
            thread::spawn(move || {
                let name = format!("u{i}");
                let mut client = logged_in(addr, &name);
                // Pipelined: all requests first, then all echoes.
                for seq in 0..MESSAGES {
                    client.send_chat(&to, &format!("{name} {seq}")).unwrap();
                }
                for seq in 0..MESSAGES {
                    let (flag, message) = next_chat(&mut client);
                    assert_eq!(flag, 1);
                    assert_eq!(message.text.to_lossy(), format!("{name} {seq}"));
                }
            })
        })
        .collect();

    let mut next_seq: HashMap<String, usize> = HashMap::new();
    for _ in 0..SENDERS * MESSAGES {
        let (flag, message) = next_chat(&mut receiver);
        assert_eq!(flag, 1);
        assert_eq!(message.receiver.to_lossy(), receiver_name);
        let sender = message.sender.to_lossy();
        let text = message.text.to_lossy();
        let (claimed, seq) = text.split_once(' ').expect("text is `name seq`");
        assert_eq!(claimed, sender, "the frame is intact");
        let expected = next_seq.entry(sender.clone()).or_default();
        assert_eq!(
            seq.parse::<usize>().unwrap(),
            *expected,
            "order from {sender}"
        );
        *expected += 1;
    }
    for sender in senders {
        sender.join().expect("sender thread");
    }
    assert_eq!(next_seq.len(), SENDERS);
    assert!(next_seq.values().all(|&n| n == MESSAGES));
}
