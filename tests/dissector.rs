//! The Wireshark dissector `contrib/chatroom.lua`, tested with the real tshark: a real
//! session through a real server (logins, chats delivered, a chat to an offline user,
//! the room, USERS, a pipelined burst in one write, a frame split over two writes, a
//! length the server cannot trust) is recorded byte for byte at the clients' sockets,
//! written as a pcap file (Ethernet, IPv4, TCP with true sequence and acknowledgement
//! numbers, so that Wireshark reassembles as it would a live capture), and decoded by
//! `tshark -X lua_script:contrib/chatroom.lua`. The tests assert what tshark says. A
//! second session plays the receipts extension (types 4 to 8): two receipts
//! connections, a message delivered and echoed as MESSAGE frames, an ACK and the
//! RECEIVED it brings, a READ forwarded, and refusals. A third capture is written by
//! hand: MESSAGE frames whose ids are of each kind (a millisecond and a sequence, the
//! first receipts server's microseconds, and 0), whatever kind the server gives today.
//!
//! Without tshark the tests print why and pass, unless `CHATROOM_REQUIRE_TSHARK=1`
//! (set by `.ci/run` once it has installed tshark): then a missing tshark fails them.
//! `CHATROOM_CAPTURE=FILE` keeps the capture, `CHATROOM_RECEIPTS_CAPTURE=FILE` the
//! receipts session's and `CHATROOM_IDS_CAPTURE=FILE` the hand-written ids', to open in
//! Wireshark.

mod capture;
mod common;

use capture::{Event, Recorded, Recording, pcap};
use chatroom::message_id::{FIRST_MILLISECOND_ID, SEQUENCE_BITS};
use chatroom::protocol::{
    CHAT_BODY_LEN, CHAT_FRAME_LEN, FEEDBACK_LEN, HEADER_LEN, LOGIN_BODY_LEN, NAME_LEN, TEXT_LEN,
};
use common::*;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

const DISSECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/chatroom.lua");
/// The environment variable that turns "tshark is missing" from a skip into a failure.
const REQUIRE_TSHARK: &str = "CHATROOM_REQUIRE_TSHARK";
/// The environment variable naming a file to keep the capture in.
const KEEP_CAPTURE: &str = "CHATROOM_CAPTURE";

/// The capture shows the server on the dissector's default port, whatever port the test
/// server really had, so that the default registration is what decodes it.
const DEFAULT_PORT: u16 = 12345;
/// The server's port in a second copy of the capture, decoded through the preference.
const OTHER_PORT: u16 = 23456;

/// A LOGIN feedback: 12 bytes, though its length field says 40 (docs/PROTOCOL.md §1).
const LOGIN_REPLY_LEN: usize = FEEDBACK_LEN;
/// A USERS reply's header, before its 20-byte names.
const USERS_HEADER_LEN: usize = FEEDBACK_LEN;
/// Where the split frame is cut: inside the CHATMSG's sender field.
const SPLIT_AT: usize = HEADER_LEN + NAME_LEN / 2;
/// A length the server cannot trust (outside `0..=4096`): it closes the connection.
const UNTRUSTED_LENGTH: i32 = 5000;
/// A type docs/PROTOCOL.md does not define, and the body sent with it.
const UNKNOWN_TYPE: i32 = 9;
const UNKNOWN_BODY: &[u8] = b"abc";

// Wire values of docs/PROTOCOL.md §1 and §2, as the tests expect tshark to print them.
const LOGIN: i32 = 1;
const CHAT: i32 = 2;
const USERS: i32 = 3;
const OK: i32 = 1;
const QUEUED: i32 = 0;
const NOT_LOGGED_IN: i32 = -2;
const MALFORMED: i32 = -3;
const UNSUPPORTED: i32 = -4;

/// The frame numbers of the packets the tests look at.
struct Frames {
    login_simo: u32,
    login_simo_reply: u32,
    login_makabaka: u32,
    chat_to_makabaka: u32,
    delivery_to_makabaka: u32,
    echo_to_simo: u32,
    chat_to_offline: u32,
    echo_queued: u32,
    room_chat: u32,
    room_delivery: u32,
    users: u32,
    users_reply: u32,
    split_first_half: u32,
    split_second_half: u32,
    split_delivery: u32,
    burst: u32,
    burst_replies: u32,
    untrusted_length: u32,
}

const GREETING: &str = "你好";
const FOR_LATER: &str = "明天见";
const TO_THE_ROOM: &str = "大家好";
const SPLIT_TEXT: &str = "分两次写";
const BURST_TEXT: &str = "一次写完";

/// What an original client's memory might hold after a string.
const GARBAGE: u8 = 0xEE;

/// A CHAT request whose text field carries garbage after its NUL, as the original
/// client's memory leaves there.
fn chat_frame_with_garbage(sender: &str, receiver: &str, text: &str) -> Vec<u8> {
    let mut frame = chat_frame(sender, receiver, text);
    let text_at = HEADER_LEN + 2 * NAME_LEN;
    let after_nul = text_at + text.len() + 1;
    frame[after_nul..].fill(GARBAGE);
    frame
}

/// The session: every exchange the tests then find in tshark's output.
fn run_session(addr: SocketAddr) -> (Recording, Frames) {
    let mut rec = Recording::default();
    let r = &mut rec;

    let mut simo = Recorded::open(r, addr);
    let login_simo = simo.send(r, &login_frame("似末", PASSWORD));
    let login_simo_reply = simo.receive(r, LOGIN_REPLY_LEN);
    let mut makabaka = Recorded::open(r, addr);
    let login_makabaka = makabaka.send(r, &login_frame("玛卡巴卡", PASSWORD));
    makabaka.receive(r, LOGIN_REPLY_LEN);

    // Delivery comes before the echo (docs/PROTOCOL.md §2): read in that order.
    let chat_to_makabaka = simo.send(r, &chat_frame("似末", "玛卡巴卡", GREETING));
    let delivery_to_makabaka = makabaka.receive(r, CHAT_FRAME_LEN);
    let echo_to_simo = simo.receive(r, CHAT_FRAME_LEN);

    let chat_to_offline = simo.send(r, &chat_frame("似末", "1003", FOR_LATER));
    let echo_queued = simo.receive(r, CHAT_FRAME_LEN);

    let room_chat = makabaka.send(r, &chat_frame("玛卡巴卡", "*", TO_THE_ROOM));
    let room_delivery = simo.receive(r, CHAT_FRAME_LEN);
    makabaka.receive(r, CHAT_FRAME_LEN);

    let users = simo.send(r, &ints(&[USERS, 0]));
    let users_reply = simo.receive(r, USERS_HEADER_LEN + 2 * NAME_LEN);

    let split = chat_frame("玛卡巴卡", "似末", SPLIT_TEXT);
    let split_first_half = makabaka.send(r, &split[..SPLIT_AT]);
    let split_second_half = makabaka.send(r, &split[SPLIT_AT..]);
    let split_delivery = simo.receive(r, CHAT_FRAME_LEN);
    makabaka.receive(r, CHAT_FRAME_LEN);

    // Five requests in one write: a chat before logging in, the login, USERS, a chat
    // with garbage after a NUL, and a type nobody defined.
    let mut pipelined = chat_frame("1001", "似末", "too early");
    pipelined.extend(login_frame("1001", PASSWORD));
    pipelined.extend(ints(&[USERS, 0]));
    pipelined.extend(chat_frame_with_garbage("1001", "似末", BURST_TEXT));
    pipelined.extend(ints(&[UNKNOWN_TYPE, UNKNOWN_BODY.len() as i32]));
    pipelined.extend(UNKNOWN_BODY);
    let mut one_zero_zero_one = Recorded::open(r, addr);
    let burst = one_zero_zero_one.send(r, &pipelined);
    let three_names = USERS_HEADER_LEN + 3 * NAME_LEN;
    let replies_len =
        CHAT_FRAME_LEN + LOGIN_REPLY_LEN + three_names + CHAT_FRAME_LEN + FEEDBACK_LEN;
    let burst_replies = one_zero_zero_one.receive(r, replies_len);
    simo.receive(r, CHAT_FRAME_LEN);

    // A length the server cannot trust, and a well-formed LOGIN right behind it in the
    // same write: the server closes the connection without reading on.
    let mut untrusted = Recorded::open(r, addr);
    let mut bad = ints(&[CHAT, UNTRUSTED_LENGTH]);
    bad.extend(login_frame("1002", PASSWORD));
    let untrusted_length = untrusted.send(r, &bad);
    untrusted.expect_closed(r, "a length outside 0..=4096");

    for client in [simo, makabaka, one_zero_zero_one] {
        client.close(r);
    }
    let frames = Frames {
        login_simo,
        login_simo_reply,
        login_makabaka,
        chat_to_makabaka,
        delivery_to_makabaka,
        echo_to_simo,
        chat_to_offline,
        echo_queued,
        room_chat,
        room_delivery,
        users,
        users_reply,
        split_first_half,
        split_second_half,
        split_delivery,
        burst,
        burst_replies,
        untrusted_length,
    };
    (rec, frames)
}

/// The fields every test reads, in tshark's `-e` order.
const FIELDS: [&str; 21] = [
    "frame.number",
    "_ws.col.Info",
    "chatroom.direction",
    "chatroom.type",
    "chatroom.length",
    "chatroom.flag",
    "chatroom.name",
    "chatroom.password",
    "chatroom.password_length",
    "chatroom.sender",
    "chatroom.receiver",
    "chatroom.text",
    "chatroom.users.count",
    "chatroom.user",
    "chatroom.id",
    "chatroom.id.time",
    "chatroom.id.sequence",
    "chatroom.after_nul",
    "_ws.expert.message",
    "tcp.segment",
    "tcp.reassembled_in",
];
/// Separates the values of one field when a packet holds several frames.
const AGGREGATOR: char = ';';

/// One packet as tshark decoded it: each field's values, in the order of the frames.
struct Packet(HashMap<&'static str, Vec<String>>);

impl Packet {
    fn all(&self, field: &str) -> Vec<&str> {
        self.0[field].iter().map(String::as_str).collect()
    }

    fn one(&self, field: &str) -> &str {
        match self.all(field)[..] {
            [value] => value,
            ref values => panic!("{field}: expected one value, tshark shows {values:?}"),
        }
    }

    fn info(&self) -> &str {
        self.one("_ws.col.Info")
    }
}

/// tshark, if it runs. Missing, it is a skip with a message (once, written past the test
/// harness's capture so that `cargo test` shows it), or with `CHATROOM_REQUIRE_TSHARK=1`
/// a failure of every test.
fn tshark_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let required = std::env::var(REQUIRE_TSHARK).is_ok_and(|value| value == "1");
    let found = *FOUND.get_or_init(|| {
        let found = Command::new("tshark")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        if !found && !required {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: tshark is not installed (apt-get install tshark), so \
                 contrib/chatroom.lua is not tested; {REQUIRE_TSHARK}=1 makes this a failure"
            );
        }
        found
    });
    assert!(
        found || !required,
        "tshark is not installed, and {REQUIRE_TSHARK}=1 says the dissector must be tested"
    );
    found
}

/// Runs tshark with the dissector on `capture`, `extra` arguments added, in a home of its
/// own (so that a personal copy of the plugin or changed preferences cannot interfere).
fn tshark(capture: &Path, extra: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let lua = format!("lua_script:{DISSECTOR}");
    let output = Command::new("tshark")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(["-X", &lua, "-r"])
        .arg(capture)
        .args(extra)
        .output()
        .expect("run tshark");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tshark failed: {stderr}");
    // As root, tshark warns that it runs as root; anything else is the dissector's error.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.contains("could be dangerous"))
        .collect();
    assert!(
        complaints.is_empty(),
        "tshark complained: {}",
        complaints.join("\n")
    );
    String::from_utf8(output.stdout).expect("tshark prints UTF-8")
}

/// Every packet of `capture`, decoded with `extra` arguments.
fn decode(capture: &Path, extra: &[&str]) -> Vec<Packet> {
    let aggregator = format!("aggregator={AGGREGATOR}");
    // Two passes, so that a segment's packet says in which later packet its frame is
    // reassembled.
    let mut args = vec![
        "-2",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        &aggregator,
    ];
    for field in FIELDS {
        args.extend(["-e", field]);
    }
    args.extend(extra);
    let text = tshark(capture, &args);
    let packets: Vec<Packet> = text
        .lines()
        .map(|line| {
            let values: Vec<&str> = line.split('\t').collect();
            assert_eq!(values.len(), FIELDS.len(), "a line of tshark: {line:?}");
            Packet(
                FIELDS
                    .iter()
                    .zip(values)
                    .map(|(&field, value)| {
                        let split = if value.is_empty() {
                            Vec::new()
                        } else {
                            value.split(AGGREGATOR).map(str::to_owned).collect()
                        };
                        (field, split)
                    })
                    .collect(),
            )
        })
        .collect();
    for (number, packet) in packets.iter().enumerate() {
        assert_eq!(packet.one("frame.number"), (number + 1).to_string());
    }
    packets
}

/// A session, recorded once for all the tests, and the directory its captures are in:
/// `session.pcap`, the server on the default port.
struct Session<F = Frames> {
    recording: Recording,
    frames: F,
    dir: tempfile::TempDir,
    packets: Vec<Packet>,
}

impl<F> Session<F> {
    /// Packet number `frame` of the capture (tshark counts from 1).
    fn packet(&self, frame: u32) -> &Packet {
        nth(&self.packets, frame)
    }

    fn capture(&self) -> std::path::PathBuf {
        self.dir.path().join("session.pcap")
    }
}

/// The session `run` plays through a real server, decoded by tshark on the default port,
/// or `None` (a skip) if tshark is missing. `keep` names the environment variable that
/// keeps the capture.
fn record<F>(run: impl FnOnce(SocketAddr) -> (Recording, F), keep: &str) -> Option<Session<F>> {
    if !tshark_available() {
        return None;
    }
    let server = start();
    let (recording, frames) = run(server.addr());
    Some(decoded(recording, frames, keep))
}

/// `recording` written as a capture and decoded by tshark on the default port. `keep`
/// names the environment variable that keeps the capture.
fn decoded<F>(recording: Recording, frames: F, keep: &str) -> Session<F> {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("session.pcap");
    let bytes = pcap(&recording, DEFAULT_PORT);
    std::fs::write(&capture, &bytes).unwrap();
    if let Some(keep) = std::env::var_os(keep) {
        std::fs::write(&keep, &bytes).unwrap();
    }
    let packets = decode(&capture, &[]);
    assert_eq!(packets.len(), usize::try_from(recording.packets).unwrap());
    Session {
        recording,
        frames,
        dir,
        packets,
    }
}

/// The plain session (no receipts), recorded once.
fn session() -> Option<&'static Session> {
    static SESSION: OnceLock<Option<Session>> = OnceLock::new();
    SESSION
        .get_or_init(|| record(run_session, KEEP_CAPTURE))
        .as_ref()
}

fn n(value: i32) -> String {
    value.to_string()
}

#[test]
fn a_login_shows_the_name_and_only_the_length_of_the_password() {
    let Some(session) = session() else { return };
    let login = session.packet(session.frames.login_simo);
    assert_eq!(login.info(), "LOGIN 似末");
    assert_eq!(login.one("chatroom.direction"), "request (client → server)");
    assert_eq!(login.one("chatroom.type"), n(LOGIN));
    assert_eq!(login.one("chatroom.length"), LOGIN_BODY_LEN.to_string());
    assert_eq!(login.one("chatroom.name"), "似末");
    assert_eq!(
        login.one("chatroom.password_length"),
        PASSWORD.len().to_string()
    );
    assert_eq!(
        login.one("chatroom.password"),
        format!("({} bytes, not shown)", PASSWORD.len()),
        "the password is not shown"
    );
    assert_eq!(
        session
            .packet(session.frames.login_makabaka)
            .one("chatroom.name"),
        "玛卡巴卡"
    );
}

#[test]
fn the_login_feedback_is_twelve_bytes_though_its_length_says_forty() {
    let Some(session) = session() else { return };
    let reply = session.packet(session.frames.login_simo_reply);
    assert_eq!(reply.info(), "FEEDBACK LOGIN ok");
    assert_eq!(reply.one("chatroom.direction"), "reply (server → client)");
    assert_eq!(reply.one("chatroom.type"), n(LOGIN));
    assert_eq!(reply.one("chatroom.length"), LOGIN_BODY_LEN.to_string());
    assert_eq!(reply.one("chatroom.flag"), n(OK));
    assert!(
        reply.one("_ws.expert.message").contains("no body follows"),
        "the missing body is explained, not taken for a cut-off frame: {:?}",
        reply.all("_ws.expert.message")
    );
}

#[test]
fn a_chat_shows_sender_receiver_and_text_in_request_delivery_and_echo() {
    let Some(session) = session() else { return };
    let frames = &session.frames;
    let request = session.packet(frames.chat_to_makabaka);
    assert_eq!(request.info(), "CHAT 似末 → 玛卡巴卡 \"你好\"");
    for (what, frame) in [
        ("the delivery", frames.delivery_to_makabaka),
        ("the echo", frames.echo_to_simo),
    ] {
        let reply = session.packet(frame);
        assert_eq!(
            reply.info(),
            "FEEDBACK CHAT ok 似末 → 玛卡巴卡 \"你好\"",
            "{what}"
        );
        assert_eq!(reply.one("chatroom.type"), n(CHAT), "{what}");
        assert_eq!(reply.one("chatroom.flag"), n(OK), "{what}");
    }
    for frame in [
        frames.chat_to_makabaka,
        frames.delivery_to_makabaka,
        frames.echo_to_simo,
    ] {
        let packet = session.packet(frame);
        assert_eq!(packet.one("chatroom.length"), CHAT_BODY_LEN.to_string());
        assert_eq!(packet.one("chatroom.sender"), "似末");
        assert_eq!(packet.one("chatroom.receiver"), "玛卡巴卡");
        assert_eq!(packet.one("chatroom.text"), GREETING);
    }
}

#[test]
fn a_chat_to_an_offline_user_is_echoed_queued() {
    let Some(session) = session() else { return };
    let request = session.packet(session.frames.chat_to_offline);
    assert_eq!(request.info(), format!("CHAT 似末 → 1003 \"{FOR_LATER}\""));
    let echo = session.packet(session.frames.echo_queued);
    assert_eq!(echo.one("chatroom.flag"), n(QUEUED));
    assert_eq!(
        echo.info(),
        format!("FEEDBACK CHAT queued 似末 → 1003 \"{FOR_LATER}\"")
    );
}

#[test]
fn a_room_message_is_shown_as_addressed_to_the_room() {
    let Some(session) = session() else { return };
    for frame in [session.frames.room_chat, session.frames.room_delivery] {
        let packet = session.packet(frame);
        assert_eq!(packet.one("chatroom.receiver"), "*");
        assert!(
            packet
                .info()
                .ends_with(&format!("玛卡巴卡 → * (the room) \"{TO_THE_ROOM}\"")),
            "{}",
            packet.info()
        );
    }
}

#[test]
fn the_users_reply_lists_the_online_names() {
    let Some(session) = session() else { return };
    let request = session.packet(session.frames.users);
    assert_eq!(request.info(), "USERS");
    assert_eq!(request.one("chatroom.type"), n(USERS));
    let reply = session.packet(session.frames.users_reply);
    assert_eq!(reply.info(), "FEEDBACK USERS ok 似末, 玛卡巴卡");
    assert_eq!(reply.one("chatroom.length"), (2 * NAME_LEN).to_string());
    assert_eq!(reply.one("chatroom.users.count"), "2");
    assert_eq!(reply.all("chatroom.user"), ["似末", "玛卡巴卡"]);
}

#[test]
fn a_frame_split_over_two_segments_is_reassembled_in_the_second() {
    let Some(session) = session() else { return };
    let frames = &session.frames;
    let first = session.packet(frames.split_first_half);
    assert!(
        first.all("chatroom.type").is_empty(),
        "half a frame is not decoded on its own: {}",
        first.info()
    );
    assert_eq!(
        first.one("tcp.reassembled_in"),
        frames.split_second_half.to_string()
    );
    let second = session.packet(frames.split_second_half);
    assert_eq!(
        second.all("tcp.segment"),
        [
            frames.split_first_half.to_string(),
            frames.split_second_half.to_string()
        ],
        "the CHAT frame is put together from both segments"
    );
    assert_eq!(
        second.info(),
        format!("CHAT 玛卡巴卡 → 似末 \"{SPLIT_TEXT}\"")
    );
    assert_eq!(second.one("chatroom.sender"), "玛卡巴卡");
    assert_eq!(
        session.packet(frames.split_delivery).one("chatroom.text"),
        SPLIT_TEXT
    );
}

#[test]
fn a_pipelined_burst_in_one_segment_is_split_into_its_frames() {
    let Some(session) = session() else { return };
    let burst = session.packet(session.frames.burst);
    assert_eq!(
        burst.all("chatroom.type"),
        [CHAT, LOGIN, USERS, CHAT, UNKNOWN_TYPE].map(n),
        "five requests in one segment"
    );
    assert_eq!(burst.all("chatroom.name"), ["1001"]);
    assert_eq!(burst.all("chatroom.text"), ["too early", BURST_TEXT]);
    assert_eq!(
        burst.info(),
        format!(
            "CHAT 1001 → 似末 \"too early\" | LOGIN 1001 | USERS | \
             CHAT 1001 → 似末 \"{BURST_TEXT}\" | UNKNOWN({UNKNOWN_TYPE}) {} bytes",
            UNKNOWN_BODY.len()
        )
    );

    let replies = session.packet(session.frames.burst_replies);
    assert_eq!(
        replies.all("chatroom.type"),
        [CHAT, LOGIN, USERS, CHAT, UNKNOWN_TYPE].map(n),
        "five replies in one segment"
    );
    assert_eq!(
        replies.all("chatroom.flag"),
        [NOT_LOGGED_IN, OK, OK, OK, UNSUPPORTED].map(n)
    );
    assert_eq!(replies.all("chatroom.user"), ["1001", "似末", "玛卡巴卡"]);
    assert_eq!(
        replies.info(),
        format!(
            "FEEDBACK CHAT not logged in 1001 → 似末 \"too early\" | FEEDBACK LOGIN ok | \
             FEEDBACK USERS ok 1001, 似末, 玛卡巴卡 | \
             FEEDBACK CHAT ok 1001 → 似末 \"{BURST_TEXT}\" | FEEDBACK UNKNOWN({UNKNOWN_TYPE}) unsupported"
        )
    );
}

#[test]
fn bytes_after_a_nul_and_an_unknown_type_are_marked() {
    let Some(session) = session() else { return };
    let burst = session.packet(session.frames.burst);
    let garbage_len = TEXT_LEN - BURST_TEXT.len() - 1;
    assert_eq!(
        burst.all("chatroom.after_nul"),
        [format!("{GARBAGE:02x}").repeat(garbage_len)],
        "the garbage after the text's NUL, and only there"
    );
    let experts = burst.all("_ws.expert.message");
    assert!(
        experts.contains(&format!(
            "{garbage_len} bytes after the NUL: ignored, and zeroed in every frame the server writes"
        )
        .as_str()),
        "{experts:?}"
    );
    assert!(
        experts.contains(
            &format!(
                "Unknown type {UNKNOWN_TYPE}: the server skips its body and answers UNSUPPORTED"
            )
            .as_str()
        ),
        "{experts:?}"
    );
    let echo = session.packet(session.frames.burst_replies);
    assert!(
        echo.all("chatroom.after_nul").is_empty(),
        "the server's echo is zero-padded"
    );
}

#[test]
fn a_length_outside_bounds_is_malformed_and_the_next_frame_still_decodes() {
    let Some(session) = session() else { return };
    let packet = session.packet(session.frames.untrusted_length);
    assert_eq!(packet.all("chatroom.type"), [n(CHAT), n(LOGIN)]);
    assert_eq!(
        packet.all("chatroom.length"),
        [n(UNTRUSTED_LENGTH), LOGIN_BODY_LEN.to_string()]
    );
    assert_eq!(
        packet.all("_ws.expert.message"),
        [format!(
            "Length {UNTRUSTED_LENGTH} is outside 0..=4096: the server closes the connection"
        )]
    );
    assert_eq!(
        packet.info(),
        format!("CHAT length {UNTRUSTED_LENGTH} [malformed] | LOGIN 1002"),
        "the header alone is the bad frame: the dissector does not wait for the body"
    );
    let malformed = tshark(
        &session.capture(),
        &[
            "-Y",
            "chatroom.length.bad",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    assert_eq!(
        malformed.trim(),
        session.frames.untrusted_length.to_string(),
        "the expert info filters the bad length, and nothing else"
    );
}

/// Packet number `frame` (tshark counts from 1) of `packets`.
fn nth(packets: &[Packet], frame: u32) -> &Packet {
    &packets[usize::try_from(frame).unwrap() - 1]
}

#[test]
fn the_port_preference_or_decode_as_moves_the_dissector_to_another_port() {
    let Some(session) = session() else { return };
    let frames = &session.frames;
    let capture = session.dir.path().join("other-port.pcap");
    std::fs::write(&capture, pcap(&session.recording, OTHER_PORT)).unwrap();
    let preference = format!("chatroom.port:{OTHER_PORT}");
    let decode_as = format!("tcp.port=={OTHER_PORT},chatroom");
    for how in [["-o", &preference], ["-d", &decode_as]] {
        let moved = decode(&capture, &how);
        assert_eq!(
            nth(&moved, frames.login_simo).info(),
            "LOGIN 似末",
            "{how:?}"
        );
        assert_eq!(
            nth(&moved, frames.login_simo_reply).info(),
            "FEEDBACK LOGIN ok",
            "{how:?}: replies are told from requests by the server's port"
        );
    }

    let not_moved = decode(&capture, &[]);
    assert!(
        nth(&not_moved, frames.login_simo)
            .all("chatroom.type")
            .is_empty(),
        "without the preference, port {OTHER_PORT} is not the chat protocol"
    );
}

/// The packet tree of packet `frame` of the session's capture, as `tshark -V` prints the
/// chat protocol's part of it.
fn tree_of<F>(session: &Session<F>, frame: u32) -> String {
    let filter = format!("frame.number == {frame}");
    tshark(&session.capture(), &["-2", "-O", "chatroom", "-Y", &filter])
}

#[test]
fn types_and_flags_are_shown_by_name_in_the_packet_tree() {
    let Some(session) = session() else { return };
    let replies = tree_of(session, session.frames.burst_replies);
    for line in [
        "Type: CHAT (2)",
        "Flag: NOT_LOGGED_IN (-2)",
        "Type: LOGIN (1)",
        "Flag: OK (1)",
        "Type: USERS (3)",
        "[Online users: 3]",
        "Type: Unknown (9)",
        "Flag: UNSUPPORTED (-4)",
    ] {
        assert!(
            replies.lines().any(|l| l.trim() == line),
            "the replies to the burst show {line:?}:\n{replies}"
        );
    }
    let queued = tree_of(session, session.frames.echo_queued);
    assert!(
        queued.lines().any(|l| l.trim() == "Flag: QUEUED (0)"),
        "{queued}"
    );
}

/// A capture of one connection made by hand, for frames no client of this server and
/// no server sends: each `(to_server, bytes)` is one segment. Returns the capture's path
/// (in `dir`) and each segment's frame number.
fn hand_made_capture(dir: &Path, segments: &[(bool, Vec<u8>)]) -> (std::path::PathBuf, Vec<u32>) {
    let mut recording = Recording::default();
    recording.push(Event::Open { conn: 0 });
    let frames = segments
        .iter()
        .map(|(to_server, bytes)| {
            recording.push(Event::Data {
                conn: 0,
                to_server: *to_server,
                bytes: bytes.clone(),
            })
        })
        .collect();
    let path = dir.join("hand-made.pcap");
    std::fs::write(&path, pcap(&recording, DEFAULT_PORT)).unwrap();
    (path, frames)
}

#[test]
fn frames_outside_the_protocol_are_marked_and_framing_stays_in_step() {
    if !tshark_available() {
        return;
    }
    const WRONG_LOGIN_LEN: usize = 39;
    const UNDEFINED_FLAG: i32 = 9;
    const NOT_A_MULTIPLE_OF_A_NAME: i32 = 30;
    let twenty_bytes = "abcdefghijklmnopqrst";
    assert_eq!(twenty_bytes.len(), NAME_LEN);

    let mut wrong_login = ints(&[LOGIN, WRONG_LOGIN_LEN as i32]);
    wrong_login.extend(vec![0; WRONG_LOGIN_LEN]);
    let mut not_utf8 = ints(&[LOGIN, LOGIN_BODY_LEN as i32]);
    not_utf8.extend(field(b"\xFF\xFE", NAME_LEN));
    not_utf8.extend(field(PASSWORD.as_bytes(), NAME_LEN));
    let mut requests = wrong_login;
    requests.extend(login_frame(twenty_bytes, PASSWORD));
    requests.extend(not_utf8);
    requests.extend(chat_frame("1001", "1002", "line one\nline two"));

    let mut undefined_flag = chat_reply(UNDEFINED_FLAG, &chat_body("1001", "1002", "hi"));
    // The server's answer to a CHAT of the wrong length: MALFORMED and a zeroed body.
    undefined_flag.extend(chat_reply(MALFORMED, &[0; CHAT_BODY_LEN]));
    let mut out_of_bounds = ints(&[UNKNOWN_TYPE, -1, UNSUPPORTED]);
    out_of_bounds.extend(ints(&[LOGIN, LOGIN_BODY_LEN as i32, OK]));
    let dir = tempfile::tempdir().unwrap();
    let (capture, frames) = hand_made_capture(
        dir.path(),
        &[
            (true, requests),
            (false, undefined_flag),
            (false, ints(&[USERS, NOT_A_MULTIPLE_OF_A_NAME, OK])),
            (false, out_of_bounds),
        ],
    );
    let packets = decode(&capture, &[]);
    let packet = |frame: u32| nth(&packets, frame);

    let requests = packet(frames[0]);
    assert_eq!(
        requests.info(),
        "LOGIN 39 bytes [wrong length] | LOGIN abcdefghijklmnopqrst | LOGIN \u{FFFD}\u{FFFD} \
         | CHAT 1001 → 1002 \"line one\\x0aline two\"",
        "a wrong LOGIN length is skipped whole, as the server does; the Info column stays \
         on one line"
    );
    assert_eq!(
        requests.all("chatroom.name"),
        [twenty_bytes, "\u{FFFD}\u{FFFD}"],
        "a 20-byte name fills its field without a NUL"
    );
    let experts = requests.all("_ws.expert.message");
    assert!(
        experts
            .contains(&"A LOGIN body is 40 bytes: the server skips this one and answers MALFORMED"),
        "{experts:?}"
    );
    assert!(
        experts.iter().any(|m| m.starts_with("Not valid UTF-8")),
        "{experts:?}"
    );

    let undefined = packet(frames[1]);
    assert_eq!(
        undefined.all("chatroom.flag"),
        [n(UNDEFINED_FLAG), n(MALFORMED)]
    );
    assert_eq!(
        undefined.info(),
        "FEEDBACK CHAT flag 9 [unknown] 1001 → 1002 \"hi\" | FEEDBACK CHAT malformed",
        "an undefined flag is shown as its number, and marked"
    );
    assert_eq!(
        undefined.all("_ws.expert.message"),
        ["Flag 9 is not one docs/PROTOCOL.md defines"]
    );

    assert_eq!(
        packet(frames[2]).info(),
        "FEEDBACK USERS ok [malformed]",
        "a USERS reply carries whole 20-byte names"
    );
    let out_of_bounds = packet(frames[3]);
    assert_eq!(
        out_of_bounds.info(),
        "FEEDBACK UNKNOWN(9) unsupported [malformed] | FEEDBACK LOGIN ok",
        "a length outside 0..=4096 is the header alone, and the next frame is found"
    );
    assert!(
        out_of_bounds
            .all("_ws.expert.message")
            .contains(&"Length -1 is outside 0..=4096"),
        "{:?}",
        out_of_bounds.all("_ws.expert.message")
    );
}

// The receipts extension (docs/PROTOCOL.md §3, types 4 to 8), in a session of its own.

/// Wire values of docs/PROTOCOL.md §3.
const RECEIPTS: i32 = 4;
const MESSAGE: i32 = 5;
const ACK: i32 = 6;
const RECEIVED: i32 = 7;
const READ: i32 = 8;
const REJECTED: i32 = -1;
/// A MESSAGE frame: `FEEDBACK{5, 148, flag}`, the u64 id, the CHATMSG.
const ID_LEN: usize = 8;
const MESSAGE_BODY_LEN: usize = ID_LEN + CHAT_BODY_LEN;
const MESSAGE_FRAME_LEN: usize = FEEDBACK_LEN + MESSAGE_BODY_LEN;
/// A RECEIVED or READ frame with flag 1: `FEEDBACK{7 or 8, 28, 1}`, the id, a name.
const RECEIPT_BODY_LEN: usize = ID_LEN + NAME_LEN;
const RECEIPT_FRAME_LEN: usize = FEEDBACK_LEN + RECEIPT_BODY_LEN;
/// The environment variable naming a file to keep the receipts session's capture in.
const KEEP_RECEIPTS_CAPTURE: &str = "CHATROOM_RECEIPTS_CAPTURE";

const SENDER: &str = "1001";
const RECEIVER: &str = "1002";
const NOBODY: &str = "nobody";
const RECEIPTS_TEXT: &str = "收到请回复";
const REFUSED_TEXT: &str = "hello?";
/// The id of the requests refused for something else (an unknown name, no login, no
/// receipts), kept apart from the message's id.
const ANY_ID: u64 = 1;

/// The frame numbers, and the id the server gave the message.
struct ReceiptFrames {
    id: u64,
    receiver_receipts_and_login: u32,
    receiver_replies: u32,
    sender_receipts_and_login: u32,
    chat: u32,
    delivery: u32,
    echo: u32,
    ack: u32,
    received: u32,
    read: u32,
    read_forwarded: u32,
    refused_chat: u32,
    refused_echo: u32,
    refusals: u32,
    refusal_replies: u32,
    plain: u32,
    plain_replies: u32,
}

/// `HEAD{4, 0}`.
fn receipts_frame() -> Vec<u8> {
    ints(&[RECEIPTS, 0])
}

/// `HEAD{6, 8}` + the id.
fn ack_frame(id: u64) -> Vec<u8> {
    let mut frame = ints(&[ACK, ID_LEN as i32]);
    frame.extend(id.to_le_bytes());
    frame
}

/// `HEAD{8, 28}` + the id + the sender's name.
fn read_frame(id: u64, sender: &str) -> Vec<u8> {
    let mut frame = ints(&[READ, RECEIPT_BODY_LEN as i32]);
    frame.extend(id.to_le_bytes());
    frame.extend(field(sender.as_bytes(), NAME_LEN));
    frame
}

/// The id of the MESSAGE frame `frame`.
fn message_id(frame: &[u8]) -> u64 {
    assert_eq!(
        frame[..FEEDBACK_LEN],
        ints(&[MESSAGE, MESSAGE_BODY_LEN as i32, OK])
    );
    u64::from_le_bytes(
        frame[FEEDBACK_LEN..FEEDBACK_LEN + ID_LEN]
            .try_into()
            .unwrap(),
    )
}

/// A receiver and a sender, both with receipts on, a chat delivered and echoed as
/// MESSAGE frames, the receiver's ACK and the RECEIVED it brings the sender, a READ
/// forwarded, a refused chat's echo, a burst of requests refused, and a plain
/// connection's.
fn run_receipts_session(addr: SocketAddr) -> (Recording, ReceiptFrames) {
    let mut rec = Recording::default();
    let r = &mut rec;
    let both_replies = FEEDBACK_LEN + LOGIN_REPLY_LEN;

    // RECEIPTS and LOGIN in one write, as docs/PROTOCOL.md §3 says a client does.
    let mut receiver = Recorded::open(r, addr);
    let mut hello = receipts_frame();
    hello.extend(login_frame(RECEIVER, PASSWORD));
    let receiver_receipts_and_login = receiver.send(r, &hello);
    let receiver_replies = receiver.receive(r, both_replies);
    let mut sender = Recorded::open(r, addr);
    let mut hello = receipts_frame();
    hello.extend(login_frame(SENDER, PASSWORD));
    let sender_receipts_and_login = sender.send(r, &hello);
    sender.receive(r, both_replies);

    let chat = sender.send(r, &chat_frame(SENDER, RECEIVER, RECEIPTS_TEXT));
    let (delivery, delivered) = receiver.receive_bytes(r, MESSAGE_FRAME_LEN);
    let (echo, echoed) = sender.receive_bytes(r, MESSAGE_FRAME_LEN);
    let id = message_id(&delivered);
    assert_eq!(
        message_id(&echoed),
        id,
        "the echo carries the delivery's id"
    );

    // An ACK has no answer: the RECEIVED it brings the sender is what comes next.
    let ack = receiver.send(r, &ack_frame(id));
    let received = sender.receive(r, RECEIPT_FRAME_LEN);
    let read = receiver.send(r, &read_frame(id, SENDER));
    let read_forwarded = sender.receive(r, RECEIPT_FRAME_LEN);

    let refused_chat = sender.send(r, &chat_frame(SENDER, NOBODY, REFUSED_TEXT));
    let refused_echo = sender.receive(r, MESSAGE_FRAME_LEN);

    // Five requests refused, in one write, their five bodiless replies in one segment:
    // an ACK above what was delivered, RECEIPTS with a body, a READ for an unknown
    // name, a READ of the wrong length, and a MESSAGE, which only the server sends.
    let mut refused = ack_frame(id + 1);
    refused.extend(ints(&[RECEIPTS, UNKNOWN_BODY.len() as i32]));
    refused.extend(UNKNOWN_BODY);
    refused.extend(read_frame(ANY_ID, NOBODY));
    refused.extend(ints(&[READ, ID_LEN as i32]));
    refused.extend(id.to_le_bytes());
    refused.extend(ints(&[MESSAGE, 0]));
    let refusals = receiver.send(r, &refused);
    let refusal_replies = receiver.receive(r, 5 * FEEDBACK_LEN);

    // A plain connection, not logged in: a READ, an ACK, and a RECEIVED from a client.
    let mut plain = Recorded::open(r, addr);
    let mut requests = read_frame(ANY_ID, SENDER);
    requests.extend(ack_frame(ANY_ID));
    requests.extend(ints(&[RECEIVED, 0]));
    let plain_requests = plain.send(r, &requests);
    let plain_replies = plain.receive(r, 3 * FEEDBACK_LEN);

    for client in [receiver, sender, plain] {
        client.close(r);
    }
    let frames = ReceiptFrames {
        id,
        receiver_receipts_and_login,
        receiver_replies,
        sender_receipts_and_login,
        chat,
        delivery,
        echo,
        ack,
        received,
        read,
        read_forwarded,
        refused_chat,
        refused_echo,
        refusals,
        refusal_replies,
        plain: plain_requests,
        plain_replies,
    };
    (rec, frames)
}

/// The receipts session, recorded once.
fn receipts_session() -> Option<&'static Session<ReceiptFrames>> {
    static SESSION: OnceLock<Option<Session<ReceiptFrames>>> = OnceLock::new();
    SESSION
        .get_or_init(|| record(run_receipts_session, KEEP_RECEIPTS_CAPTURE))
        .as_ref()
}

/// Seconds and nanoseconds since the Unix epoch as tshark shows a UTC time: `Dec  1,
/// 2026 08:40:00.123456000 UTC`. (Days to a civil date: Howard Hinnant's algorithm.)
fn utc_time(secs: u64, nanos: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, in_day) = (secs / 86_400, secs % 86_400);
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{} {day:>2}, {year} {:02}:{:02}:{:02}.{nanos:09} UTC",
        MONTHS[usize::try_from(month - 1).unwrap()],
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
    )
}

const MILLIS_PER_SEC: u64 = 1_000;
const MICROS_PER_SEC: u64 = 1_000_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_MICRO: u64 = 1_000;

/// What tshark shows as `chatroom.id.time` for a message id: the millisecond in its top
/// bits, or for an id of the first receipts server (below 2^56) its microsecond.
fn id_time(id: u64) -> String {
    if id >= FIRST_MILLISECOND_ID {
        let millis = id >> SEQUENCE_BITS;
        utc_time(
            millis / MILLIS_PER_SEC,
            millis % MILLIS_PER_SEC * NANOS_PER_MILLI,
        )
    } else {
        utc_time(id / MICROS_PER_SEC, id % MICROS_PER_SEC * NANOS_PER_MICRO)
    }
}

/// What tshark shows as `chatroom.id.sequence` for a message id: its low 20 bits, for
/// an id with a millisecond; nothing for an id of the first receipts server.
fn id_sequence(id: u64) -> Vec<String> {
    if id >= FIRST_MILLISECOND_ID {
        vec![(id & ((1 << SEQUENCE_BITS) - 1)).to_string()]
    } else {
        Vec::new()
    }
}

#[test]
fn the_utc_time_of_an_id_is_computed_right() {
    assert_eq!(id_time(1), "Jan  1, 1970 00:00:00.000001000 UTC");
    assert_eq!(
        id_time(1_764_576_000_000_001),
        "Dec  1, 2025 08:00:00.000001000 UTC"
    );
    assert_eq!(
        id_time(951_827_696_123_456),
        "Feb 29, 2000 12:34:56.123456000 UTC"
    );
    assert_eq!(
        id_time(1_796_631_909_123 << SEQUENCE_BITS | 3),
        "Dec  7, 2026 08:25:09.123000000 UTC"
    );
    assert_eq!(id_sequence(1_796_631_909_123 << SEQUENCE_BITS | 3), ["3"]);
    assert!(id_sequence(1_764_576_000_000_001).is_empty());
}

#[test]
fn receipts_requests_and_their_feedback_are_decoded_by_name() {
    let Some(session) = receipts_session() else {
        return;
    };
    let frames = &session.frames;
    for (frame, name) in [
        (frames.receiver_receipts_and_login, RECEIVER),
        (frames.sender_receipts_and_login, SENDER),
    ] {
        let request = session.packet(frame);
        assert_eq!(request.info(), format!("RECEIPTS | LOGIN {name}"));
        assert_eq!(request.all("chatroom.type"), [n(RECEIPTS), n(LOGIN)]);
        assert_eq!(request.all("chatroom.length"), ["0", "40"]);
    }
    let replies = session.packet(frames.receiver_replies);
    assert_eq!(replies.info(), "FEEDBACK RECEIPTS ok | FEEDBACK LOGIN ok");
    assert_eq!(replies.all("chatroom.type"), [n(RECEIPTS), n(LOGIN)]);
    assert_eq!(replies.all("chatroom.length"), ["0", "40"]);
    assert_eq!(replies.all("chatroom.flag"), [n(OK), n(OK)]);
}

#[test]
fn a_message_shows_its_id_as_a_number_and_as_a_utc_time() {
    let Some(session) = receipts_session() else {
        return;
    };
    let frames = &session.frames;
    let id = frames.id;
    assert_eq!(
        session.packet(frames.chat).info(),
        format!("CHAT {SENDER} → {RECEIVER} \"{RECEIPTS_TEXT}\"")
    );
    for (what, frame) in [("the delivery", frames.delivery), ("the echo", frames.echo)] {
        let message = session.packet(frame);
        assert_eq!(
            message.info(),
            format!("MESSAGE {SENDER} → {RECEIVER} \"{RECEIPTS_TEXT}\" id {id}"),
            "{what}"
        );
        assert_eq!(message.one("chatroom.type"), n(MESSAGE), "{what}");
        assert_eq!(message.one("chatroom.length"), MESSAGE_BODY_LEN.to_string());
        assert_eq!(message.one("chatroom.flag"), n(OK), "{what}");
        assert_eq!(message.one("chatroom.id"), id.to_string(), "{what}");
        assert_eq!(message.one("chatroom.id.time"), id_time(id), "{what}");
        assert_eq!(
            message.all("chatroom.id.sequence"),
            id_sequence(id),
            "{what}"
        );
        assert_eq!(message.one("chatroom.sender"), SENDER, "{what}");
        assert_eq!(message.one("chatroom.receiver"), RECEIVER, "{what}");
        assert_eq!(message.one("chatroom.text"), RECEIPTS_TEXT, "{what}");
    }
    let tree = tree_of(session, frames.delivery);
    for line in [
        format!("Chatroom reply, MESSAGE {SENDER} → {RECEIVER} \"{RECEIPTS_TEXT}\" id {id}"),
        "Type: MESSAGE (5)".to_string(),
        "Length: 148".to_string(),
        format!("Id: {id}"),
        format!("[Id as time: {}]", id_time(id)),
        format!("Sender: {SENDER}"),
    ] {
        assert!(
            tree.lines().any(|l| l.trim() == line),
            "the delivery's tree shows {line:?}:\n{tree}"
        );
    }
}

/// An id of this server: 2026-12-07 08:25:09.123 UTC, the receiver's fourth message of
/// that millisecond (sequence 3).
const MILLISECOND_ID: u64 = 1_796_631_909_123 << SEQUENCE_BITS | 3;
/// An id of the first receipts server, still in old mailboxes: 2026-12-01
/// 08:25:09.123456 UTC, in microseconds.
const MICROSECOND_ID: u64 = 1_796_113_509_123_456;
/// The environment variable naming a file to keep the capture of ids written by hand.
const KEEP_IDS_CAPTURE: &str = "CHATROOM_IDS_CAPTURE";

/// MESSAGE frames with the ids written by hand, whatever kind of id the server gives
/// today: one with a millisecond and a sequence, one in microseconds, and 0. Their
/// packets' numbers, in that order.
fn hand_written_ids() -> Option<&'static Session<[u32; 3]>> {
    static SESSION: OnceLock<Option<Session<[u32; 3]>>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            if !tshark_available() {
                return None;
            }
            let mut recording = Recording::default();
            let conn = recording.open_by_hand();
            let frames = [MILLISECOND_ID, MICROSECOND_ID, 0].map(|id| {
                let mut frame = ints(&[MESSAGE, MESSAGE_BODY_LEN as i32, OK]);
                frame.extend(id.to_le_bytes());
                frame.extend(chat_body(SENDER, RECEIVER, RECEIPTS_TEXT));
                recording.push(Event::Data {
                    conn,
                    to_server: false,
                    bytes: frame,
                })
            });
            Some(decoded(recording, frames, KEEP_IDS_CAPTURE))
        })
        .as_ref()
}

/// Ids are `(unix milliseconds << 20) | n`: tshark shows the millisecond as the id's
/// time and n as its sequence; an older id (below 2^56, microseconds) as its
/// microsecond, with no sequence; and id 0 as neither.
#[test]
fn an_id_shows_its_millisecond_and_sequence_and_an_older_id_its_microsecond() {
    let Some(session) = hand_written_ids() else {
        return;
    };
    let [millisecond, microsecond, zero] = session.frames;
    let message = session.packet(millisecond);
    assert_eq!(message.one("chatroom.id"), MILLISECOND_ID.to_string());
    assert_eq!(
        message.one("chatroom.id.time"),
        "Dec  7, 2026 08:25:09.123000000 UTC"
    );
    assert_eq!(message.one("chatroom.id.sequence"), "3");
    let tree = tree_of(session, millisecond);
    for line in [
        "[Id as time: Dec  7, 2026 08:25:09.123000000 UTC]",
        "[Id's sequence in its millisecond: 3]",
    ] {
        assert!(
            tree.lines().any(|l| l.trim() == line),
            "the tree shows {line:?}:\n{tree}"
        );
    }

    let older = session.packet(microsecond);
    assert_eq!(older.one("chatroom.id"), MICROSECOND_ID.to_string());
    assert_eq!(
        older.one("chatroom.id.time"),
        "Dec  1, 2026 08:25:09.123456000 UTC"
    );
    assert!(older.all("chatroom.id.sequence").is_empty());

    let none = session.packet(zero);
    assert_eq!(none.one("chatroom.id"), "0");
    assert!(none.all("chatroom.id.time").is_empty());
    assert!(none.all("chatroom.id.sequence").is_empty());
}

#[test]
fn an_ack_brings_the_sender_a_received_and_a_read_is_forwarded() {
    let Some(session) = receipts_session() else {
        return;
    };
    let frames = &session.frames;
    let id = frames.id;
    let ack = session.packet(frames.ack);
    assert_eq!(ack.info(), format!("ACK {id}"));
    assert_eq!(ack.one("chatroom.type"), n(ACK));
    assert_eq!(ack.one("chatroom.length"), ID_LEN.to_string());
    assert_eq!(ack.one("chatroom.id"), id.to_string());
    assert_eq!(ack.one("chatroom.id.time"), id_time(id));
    assert_eq!(ack.all("chatroom.id.sequence"), id_sequence(id));

    let received = session.packet(frames.received);
    assert_eq!(received.info(), format!("RECEIVED {RECEIVER} up to {id}"));
    assert_eq!(received.one("chatroom.type"), n(RECEIVED));
    assert_eq!(
        received.one("chatroom.length"),
        RECEIPT_BODY_LEN.to_string()
    );
    assert_eq!(received.one("chatroom.flag"), n(OK));
    assert_eq!(received.one("chatroom.id"), id.to_string());
    assert_eq!(received.one("chatroom.receiver"), RECEIVER);

    let read = session.packet(frames.read);
    assert_eq!(read.info(), format!("READ for {SENDER} up to {id}"));
    assert_eq!(read.one("chatroom.type"), n(READ));
    assert_eq!(read.one("chatroom.length"), RECEIPT_BODY_LEN.to_string());
    assert_eq!(read.one("chatroom.id"), id.to_string());
    assert_eq!(read.one("chatroom.sender"), SENDER, "the sender it tells");

    let forwarded = session.packet(frames.read_forwarded);
    assert_eq!(forwarded.info(), format!("READ {RECEIVER} up to {id}"));
    assert_eq!(forwarded.one("chatroom.type"), n(READ));
    assert_eq!(
        forwarded.one("chatroom.length"),
        RECEIPT_BODY_LEN.to_string()
    );
    assert_eq!(forwarded.one("chatroom.flag"), n(OK));
    assert_eq!(forwarded.one("chatroom.id"), id.to_string());
    assert_eq!(forwarded.one("chatroom.receiver"), RECEIVER, "the reader");

    let tree = tree_of(session, frames.received);
    let meaning =
        format!("Receipt: {RECEIVER}'s client has every message you sent them up to this id");
    assert!(tree.lines().any(|l| l.trim() == meaning), "{tree}");

    let filter = format!("chatroom.id == {id}");
    let with_the_id = tshark(
        &session.capture(),
        &["-Y", &filter, "-T", "fields", "-e", "frame.number"],
    );
    let expected: Vec<String> = [
        frames.delivery,
        frames.echo,
        frames.ack,
        frames.received,
        frames.read,
        frames.read_forwarded,
    ]
    .iter()
    .map(u32::to_string)
    .collect();
    assert_eq!(
        with_the_id.lines().collect::<Vec<_>>(),
        expected,
        "chatroom.id filters the frames that carry the id"
    );
}

#[test]
fn a_refused_messages_echo_has_id_zero_and_no_time() {
    let Some(session) = receipts_session() else {
        return;
    };
    let frames = &session.frames;
    assert_eq!(
        session.packet(frames.refused_chat).info(),
        format!("CHAT {SENDER} → {NOBODY} \"{REFUSED_TEXT}\"")
    );
    let echo = session.packet(frames.refused_echo);
    assert_eq!(
        echo.info(),
        format!("MESSAGE rejected {SENDER} → {NOBODY} \"{REFUSED_TEXT}\" id 0")
    );
    assert_eq!(echo.one("chatroom.flag"), n(REJECTED));
    assert_eq!(echo.one("chatroom.length"), MESSAGE_BODY_LEN.to_string());
    assert_eq!(echo.one("chatroom.id"), "0");
    assert!(echo.all("chatroom.id.time").is_empty(), "id 0 is no time");
}

#[test]
fn receipts_refusals_have_no_body_and_framing_stays_in_step() {
    let Some(session) = receipts_session() else {
        return;
    };
    let frames = &session.frames;
    let id = frames.id;
    let requests = session.packet(frames.refusals);
    assert_eq!(
        requests.info(),
        format!(
            "ACK {} | RECEIPTS {} bytes [wrong length] | READ for {NOBODY} up to {ANY_ID} | \
             READ 8 bytes [wrong length] | MESSAGE 0 bytes [server's type]",
            id + 1,
            UNKNOWN_BODY.len()
        )
    );
    assert_eq!(
        requests.all("chatroom.type"),
        [ACK, RECEIPTS, READ, READ, MESSAGE].map(n)
    );
    let experts = requests.all("_ws.expert.message");
    for expert in [
        "A RECEIPTS body is 0 bytes: the server skips this one and answers MALFORMED",
        "A READ body is 28 bytes: the server skips this one and answers MALFORMED",
        "MESSAGE is a frame only the server sends: the server skips its body and answers \
         UNSUPPORTED",
    ] {
        assert!(experts.contains(&expert), "{expert:?} in {experts:?}");
    }

    let replies = session.packet(frames.refusal_replies);
    assert_eq!(
        replies.info(),
        "FEEDBACK ACK malformed | FEEDBACK RECEIPTS malformed | FEEDBACK READ rejected | \
         FEEDBACK READ malformed | FEEDBACK MESSAGE unsupported",
        "five bodiless replies in one segment, each found"
    );
    assert_eq!(
        replies.all("chatroom.type"),
        [ACK, RECEIPTS, READ, READ, MESSAGE].map(n)
    );
    assert_eq!(replies.all("chatroom.length"), ["0"; 5]);
    assert_eq!(
        replies.all("chatroom.flag"),
        [MALFORMED, MALFORMED, REJECTED, MALFORMED, UNSUPPORTED].map(n)
    );
    assert!(replies.all("_ws.expert.message").is_empty());

    let plain = session.packet(frames.plain);
    assert_eq!(
        plain.info(),
        format!(
            "READ for {SENDER} up to {ANY_ID} | ACK {ANY_ID} | RECEIVED 0 bytes [server's type]"
        )
    );
    let plain_replies = session.packet(frames.plain_replies);
    assert_eq!(
        plain_replies.info(),
        "FEEDBACK READ not logged in | FEEDBACK ACK not logged in | FEEDBACK RECEIVED unsupported"
    );
    assert_eq!(
        plain_replies.all("chatroom.flag"),
        [NOT_LOGGED_IN, NOT_LOGGED_IN, UNSUPPORTED].map(n)
    );
}
