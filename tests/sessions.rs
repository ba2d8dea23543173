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

/// Frames from two threads never interleave on one socket, even when the socket is
/// full and each write goes out in pieces: every write to a connection holds its write
/// lock from the first byte to the last. The receiver, with a small receive buffer and
/// reading a few bytes at a time so that its socket in the server stays full, gets
/// from two kinds of writer at once: the senders' threads, delivering their messages
/// to it in batches (up to 64 frames in one write), and its own session thread,
/// writing the echoes of the notes it sends itself, in batches too. (Deliveries to one
/// receiver are already taken one at a time, under its mailbox lock; its own replies
/// are not.) It checks that every 152-byte frame is whole and that each writer's
/// messages come in the order sent.
#[test]
fn frames_from_two_threads_never_interleave_on_a_receiver_with_a_full_socket() {
    const SENDERS: usize = 4;
    const MESSAGES: usize = 2000;
    /// Small enough that a batch of 64 frames (9728 bytes) cannot go out in one piece.
    const RECEIVE_BUFFER: usize = 2048;
    /// The receiver's segment size, the smallest TCP allows: the server's send buffer
    /// for the connection grows with it, so it stays a few segments and fills.
    const SEGMENT: u32 = 536;
    /// The receiver's reads: so small that the server's threads outpace it.
    const READ_PIECE: usize = 16;
    let server = start_with(numbered_users("u", SENDERS + 1), |_| {});
    let receiver_name = format!("u{SENDERS}");
    let mut receiver = {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(RECEIVE_BUFFER).unwrap();
        socket.set_tcp_mss(SEGMENT).unwrap();
        socket.connect(&server.addr().into()).unwrap();
        let stream: std::net::TcpStream = socket.into();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
    };
    raw_login(&mut receiver, &receiver_name);
    let numbered = |name: &str, to: &str| -> Vec<u8> {
        (0..MESSAGES)
            .flat_map(|seq| chat_frame(name, to, &format!("{name} {seq}")))
            .collect()
    };
    // The receiver's notes to itself, echoed by its own session thread.
    let mut writer = receiver.try_clone().unwrap();
    let notes = numbered(&receiver_name, &receiver_name);
    let writing_notes = thread::spawn(move || send(&mut writer, &notes));

    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let addr = server.addr();
            let to = receiver_name.clone();
            let name = format!("u{i}");
            let requests = numbered(&name, &to);
            thread::spawn(move || {
                let mut stream = raw_logged_in(addr, &name);
                // Written on another thread: the echoes must be read meanwhile, or the
                // server, blocked writing them, would stop reading the requests.
                let mut writer = stream.try_clone().unwrap();
                let writing = thread::spawn(move || send(&mut writer, &requests));
                for seq in 0..MESSAGES {
                    let expected = chat_reply(1, &chat_body(&name, &to, &format!("{name} {seq}")));
                    assert_frames!(read_n(&mut stream, 152), expected, "echo {seq} to {name}");
                }
                writing.join().unwrap();
            })
        })
        .collect();

    let mut next_seq: HashMap<String, usize> = HashMap::new();
    for count in 0..(SENDERS + 1) * MESSAGES {
        let mut frame = vec![0; 152];
        for piece in frame.chunks_mut(READ_PIECE) {
            if let Err(error) = std::io::Read::read_exact(&mut receiver, piece) {
                panic!("frame {count} to {receiver_name}: {error}");
            }
        }
        let text_of = |field: &[u8]| {
            let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            String::from_utf8_lossy(&field[..end]).into_owned()
        };
        let (sender, text) = (text_of(&frame[12..32]), text_of(&frame[52..]));
        // A whole frame: `FEEDBACK{2, 140, 1 OK}` and a text that names its sender.
        let seq = match text.split_once(' ') {
            Some((claimed, seq)) if frame[..12] == ints(&[2, 140, 1])[..] && claimed == sender => {
                seq.parse::<usize>().ok()
            }
            _ => None,
        };
        let Some(seq) = seq else {
            panic!(
                "frame {count} to {receiver_name} is not one whole FEEDBACK{{2, 140, 1 OK}} + \
                 CHATMSG: two threads' writes interleaved on its socket; its 152 bytes: \
                 {frame:?}"
            );
        };
        let expected = next_seq.entry(sender.clone()).or_default();
        assert_eq!(
            seq,
            *expected,
            "frame {count} to {receiver_name}: {}: out of {sender}'s order",
            describe_frames(&frame)
        );
        *expected += 1;
    }
    writing_notes.join().unwrap();
    for sender in senders {
        sender.join().expect("sender thread");
    }
    assert_eq!(next_seq.len(), SENDERS + 1);
    assert!(next_seq.values().all(|&n| n == MESSAGES));
}

/// A user whose client leaves is no longer online: its session's cleanup takes the name
/// out of the online map (the original's thread left it in `onlineMap`, and everyone
/// went on seeing, and writing to, a user who had gone). The server closes its end of
/// the connection only after the cleanup, so the end of stream says it is done.
#[test]
fn a_user_whose_client_leaves_is_no_longer_online() {
    let server = start();
    let mut watcher = raw_logged_in(server.addr(), "1002");
    let mut leaver = raw_logged_in(server.addr(), "1001");
    leaver.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut leaver, &mut rest).expect("the server closes its end");
    send(&mut watcher, &ints(&[3, 0]));
    let mut reply = read_n(&mut watcher, 12);
    let names_len = i32::from_le_bytes(reply[4..8].try_into().unwrap());
    reply.extend(read_n(&mut watcher, usize::try_from(names_len).unwrap()));
    let mut only_the_watcher = ints(&[3, 20, 1]);
    only_the_watcher.extend(field(b"1002", 20));
    assert_frames!(reply, only_the_watcher, "USERS after 1001's client left");
}
