//! docs/PROTOCOL.md §1 and the framing rules of §2, byte for byte, over real TCP: what an
//! original client sends and must get back.

mod common;

use common::*;

// The original's valid exchanges, shared with tests/minimal.rs (see common/exchanges.rs).
exchange_tests!(start());

/// Proves the stream holds nothing more: after one more request, the very next bytes
/// are that request's reply (a USERS request before login answers `{3, 0, -2}`, after
/// login a `{3, N, 1}` header).
fn assert_nothing_pending(stream: &mut std::net::TcpStream, logged_in: bool) {
    send(stream, &ints(&[3, 0]));
    let reply = read_n(stream, 12);
    assert_eq!(
        &reply[..4],
        &ints(&[3])[..],
        "next bytes are the USERS reply"
    );
    if logged_in {
        assert_eq!(&reply[8..], &ints(&[1])[..]);
        let len = i32::from_le_bytes(reply[4..8].try_into().unwrap());
        read_n(stream, len as usize);
    } else {
        assert_eq!(reply, ints(&[3, 0, -2]));
    }
}

#[test]
fn garbage_after_the_nul_is_ignored_and_zeroed_in_relayed_frames() {
    let server = start();
    let mut sender = connect(server.addr());
    let mut receiver = connect(server.addr());

    // As the original client does: the value, a NUL, then whatever was in its memory.
    let mut login = ints(&[1, 40]);
    login.extend(b"1001\0\xAA\xBB\xCC\xDD\xEE\xFF\x01\x02\x03\x04\x05\x06\x07\x08\x09");
    login.extend(b"123456\0garbage-here\x7F");
    send(&mut sender, &login);
    assert_frames!(read_n(&mut sender, 12), ints(&[1, 40, 1]));
    raw_login(&mut receiver, "1002");

    let mut chat = ints(&[2, 140]);
    chat.extend(b"1001\0junkjunkjunkjun");
    chat.extend(b"1002\0\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0A\x0B\x0C\x0D\x0E\x0F");
    let mut text = b"hello\0".to_vec();
    text.resize(100, 0xEE);
    chat.extend(text);
    assert_eq!(chat.len(), 148);
    send(&mut sender, &chat);

    let expected = chat_reply(1, &chat_body("1001", "1002", "hello"));
    assert_frames!(read_n(&mut receiver, 152), expected);
    assert_frames!(read_n(&mut sender, 152), expected);
}

#[test]
fn a_twenty_byte_name_with_no_nul_logs_in_and_chats() {
    let twenty = "花开富贵花开12"; // 6 × 3 + 2 = 20 bytes
    assert_eq!(twenty.len(), 20);
    let users = chatroom::users::Accounts::parse(
        format!("{twenty}:{PASSWORD}\nfriend:{PASSWORD}\n").as_bytes(),
    )
    .unwrap();
    let server = start_with(users, |_| {});
    let mut long = connect(server.addr());
    let mut friend = connect(server.addr());
    raw_login(&mut long, twenty);
    raw_login(&mut friend, "friend");

    send(
        &mut friend,
        &chat_frame("friend", twenty, "to the long name"),
    );
    let expected = chat_reply(1, &chat_body("friend", twenty, "to the long name"));
    assert_frames!(read_n(&mut long, 152), expected);
    assert_frames!(read_n(&mut friend, 152), expected);

    send(&mut long, &chat_frame(twenty, "friend", "back"));
    let expected = chat_reply(1, &chat_body(twenty, "friend", "back"));
    assert_eq!(&expected[12..32], twenty.as_bytes(), "no terminator");
    assert_frames!(read_n(&mut friend, 152), expected);
}

#[test]
fn chat_before_login_is_refused_with_the_body_echoed() {
    let server = start();
    let mut stream = connect(server.addr());
    let mut watcher = connect(server.addr());
    raw_login(&mut watcher, "1002");
    send(&mut stream, &chat_frame("1001", "1002", "let me in"));
    let expected = chat_reply(-2, &chat_body("1001", "1002", "let me in"));
    assert_frames!(read_n(&mut stream, 152), expected);
    // Nothing reached 1002: its next bytes answer its own request.
    assert_nothing_pending(&mut watcher, true);
}

#[test]
fn chat_to_an_unknown_user_is_minus_one_and_to_yourself_one_copy() {
    let server = start();
    let mut stream = connect(server.addr());
    raw_login(&mut stream, "1001");
    send(&mut stream, &chat_frame("1001", "nobody", "hello?"));
    assert_frames!(
        read_n(&mut stream, 152),
        chat_reply(-1, &chat_body("1001", "nobody", "hello?"))
    );
    send(&mut stream, &chat_frame("1001", "1001", "note to self"));
    assert_frames!(
        read_n(&mut stream, 152),
        chat_reply(1, &chat_body("1001", "1001", "note to self"))
    );
    assert_nothing_pending(&mut stream, true);
}

#[test]
fn an_empty_receiver_is_malformed() {
    let server = start();
    let mut stream = connect(server.addr());
    raw_login(&mut stream, "1001");
    send(&mut stream, &chat_frame("1001", "", "to whom?"));
    assert_frames!(
        read_n(&mut stream, 152),
        chat_reply(-3, &chat_body("1001", "", "to whom?"))
    );
}

#[test]
fn a_length_outside_0_to_4096_closes_only_that_connection() {
    let server = start();
    let mut bystander = connect(server.addr());
    raw_login(&mut bystander, "1002");
    for length in [-1, 4097, i32::MAX, i32::MIN] {
        for kind in [1, 2, 3, 99] {
            let mut stream = connect(server.addr());
            send(&mut stream, &ints(&[kind, length]));
            assert!(closed_by_server(&mut stream), "type {kind} length {length}");
        }
    }
    assert_nothing_pending(&mut bystander, true);
}

#[test]
fn the_largest_allowed_length_is_read_whole_and_skipped() {
    let server = start();
    let mut stream = connect(server.addr());
    let mut frame = ints(&[99, 4096]);
    frame.extend(vec![0x55; 4096]);
    send(&mut stream, &frame);
    assert_frames!(read_n(&mut stream, 12), ints(&[99, 0, -4]));
    raw_login(&mut stream, "1001");
}

#[test]
fn wrong_lengths_are_minus_three_and_the_body_is_consumed() {
    let server = start();
    let mut stream = connect(server.addr());
    // Before login, a wrong length is still -3: it is checked first.
    let mut login = ints(&[1, 41]);
    login.extend(field(b"1001", 20));
    login.extend(field(b"123456", 21));
    send(&mut stream, &login);
    assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -3]));
    let mut short_chat = ints(&[2, 139]);
    short_chat.extend(vec![0x41; 139]);
    send(&mut stream, &short_chat);
    assert_frames!(read_n(&mut stream, 152), chat_reply(-3, &[0; 140]));
    send(&mut stream, &ints(&[2, 0]));
    assert_frames!(read_n(&mut stream, 152), chat_reply(-3, &[0; 140]));
    // The stream is still in step: a proper login works.
    raw_login(&mut stream, "1001");
    send(&mut stream, &ints(&[1, 0]));
    assert_frames!(read_n(&mut stream, 12), ints(&[1, 40, -3]));
    assert_nothing_pending(&mut stream, true);
}

#[test]
fn an_unknown_type_is_minus_four_with_no_body_and_its_body_is_skipped() {
    let server = start();
    let mut stream = connect(server.addr());
    let mut frame = ints(&[7, 5]);
    frame.extend(b"\x01\x02\x03\x04\x05");
    send(&mut stream, &frame);
    assert_frames!(read_n(&mut stream, 12), ints(&[7, 0, -4]));
    send(&mut stream, &ints(&[0, 0]));
    assert_frames!(read_n(&mut stream, 12), ints(&[0, 0, -4]));
    raw_login(&mut stream, "1001");
}
