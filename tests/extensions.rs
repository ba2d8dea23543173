//! The extensions of docs/PROTOCOL.md §3: the room (`*`) and USERS (type 3).

mod common;

use chatroom::blocking_client::Reply;
use common::*;

#[test]
fn a_room_message_reaches_every_other_online_user_with_receiver_star() {
    let server = start();
    let mut speaker = raw_logged_in(server.addr(), "1001");
    let mut listeners: Vec<_> = ["1002", "似末", "玛卡巴卡"]
        .iter()
        .map(|name| raw_logged_in(server.addr(), name))
        .collect();
    send(&mut speaker, &chat_frame("1001", "*", "大家好"));
    let expected = chat_reply(1, &chat_body("1001", "*", "大家好"));
    for listener in &mut listeners {
        assert_eq!(read_n(listener, 152), expected);
    }
    assert_eq!(
        read_n(&mut speaker, 152),
        expected,
        "the echo, flag 1, one copy"
    );
    // The speaker got no copy of its own: the next bytes answer its next request.
    send(&mut speaker, &ints(&[3, 0]));
    assert_eq!(read_n(&mut speaker, 12), ints(&[3, 80, 1]));
}

#[test]
fn a_room_message_with_nobody_else_online_is_still_ok() {
    let server = start();
    let mut alone = logged_in(server.addr(), "1001");
    alone.send_chat("*", "hello?").unwrap();
    assert_eq!(next_chat(&mut alone).0, 1);
}

#[test]
fn a_room_message_before_login_is_refused() {
    let server = start();
    let mut stream = connect(server.addr());
    send(&mut stream, &chat_frame("", "*", "hi all"));
    assert_eq!(
        read_n(&mut stream, 152),
        chat_reply(-2, &chat_body("", "*", "hi all"))
    );
}

#[test]
fn users_lists_the_online_names_sorted_by_bytes() {
    let server = start();
    let mut clients: Vec<_> = ["玛卡巴卡", "1002", "似末", "1001"]
        .iter()
        .map(|name| raw_logged_in(server.addr(), name))
        .collect();
    send(&mut clients[0], &ints(&[3, 0]));
    let mut expected = ints(&[3, 80, 1]);
    for name in ["1001", "1002", "似末", "玛卡巴卡"] {
        expected.extend(field(name.as_bytes(), 20));
    }
    assert_eq!(read_n(&mut clients[0], 92), expected);
}

#[test]
fn users_before_login_is_minus_two_and_with_a_body_minus_three() {
    let server = start();
    let mut stream = connect(server.addr());
    send(&mut stream, &ints(&[3, 0]));
    assert_eq!(read_n(&mut stream, 12), ints(&[3, 0, -2]));
    let mut with_body = ints(&[3, 4]);
    with_body.extend(b"junk");
    send(&mut stream, &with_body);
    assert_eq!(read_n(&mut stream, 12), ints(&[3, 0, -3]));
    raw_login(&mut stream, "1003");
    send(&mut stream, &with_body);
    assert_eq!(
        read_n(&mut stream, 12),
        ints(&[3, 0, -3]),
        "after login too"
    );
    let mut client = logged_in(server.addr(), "1001");
    client.send_users().unwrap();
    assert_eq!(
        client.read_reply().unwrap(),
        Reply::Users {
            flag: 1,
            names: vec!["1001".to_string(), "1003".to_string()]
        }
    );
}
