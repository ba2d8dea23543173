//! The store is the queue (docs/PROTOCOL.md §3 and §6): a message to a receipts receiver
//! is kept in its store before any socket sees it and leaves only when acknowledged. So
//! a burst pauses a receiver instead of closing it, the limits hold whatever happens to
//! the connection, and nothing echoed 0 or 1 is lost to a full disk, a read-only disk,
//! a descriptor limit or a crash. Also: ids per receiver, receipts that never wait on a
//! sender's socket, state per login, the log under a flood, and a start that fails
//! without touching the data directory.

mod common;

use chatroom::blocking_client::Reply;
use chatroom::log_limit::LINES_PER_WINDOW;
use chatroom::mailbox_format::HEADER_LEN as HEADER_BYTES;
use chatroom::message_id::{self, SEQUENCE_BITS};
use chatroom::protocol::ACK_AT_ONCE;
use chatroom::users::Accounts;
use common::child::{
    SERVER, descriptor_limits, lowest_free_descriptor, run_server, run_server_on,
    set_descriptor_limit,
};
use common::receipts::*;
use common::*;
use socket2::SockRef;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A connection the server has served once, before a login: its descriptor is taken, so
/// that a limit lowered after it leaves none free for anything else.
fn served_before_a_login(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    send(&mut stream, &ints(&[3, 0]));
    assert_eq!(
        read_n(&mut stream, 12),
        ints(&[3, 0, -2]),
        "served before a login"
    );
    stream
}

/// Lowers the descriptor limit of process `pid` so that no descriptor is free, runs
/// `f`, and raises the limit again.
fn with_no_descriptor_free<T>(pid: u32, f: impl FnOnce() -> T) -> T {
    let (soft, _) = descriptor_limits(pid);
    let lowered = set_descriptor_limit(pid, &lowest_free_descriptor(pid).to_string());
    assert!(lowered, "prlimit lowers the limit");
    let result = f();
    assert!(
        set_descriptor_limit(pid, &soft),
        "the limit is raised again"
    );
    result
}

/// Reads the answers to a LOGIN and a USERS sent after it: the login got in, and the
/// USERS answer (two names) came right after it, so no stored message came with it.
fn logged_in_without_stored_messages(stream: &mut TcpStream) {
    assert_eq!(read_n(stream, 12), ints(&[1, 40, 1]), "the login gets in");
    assert_eq!(
        read_n(stream, 12 + 40)[..12],
        ints(&[3, 40, 1]),
        "USERS next: the mailbox could not be read, so nothing came with the login"
    );
}

/// Reads one MESSAGE frame per text, each from `sender` to `receiver` with that text, in
/// order.
fn expect_messages(stream: &mut TcpStream, sender: &str, receiver: &str, texts: &[&str]) {
    for text in texts {
        let frame = read_n(stream, 160);
        assert_eq!(
            frame[..12],
            ints(&[5, 148, 1]),
            "a MESSAGE frame for {text:?}"
        );
        assert_eq!(
            frame[12 + 8..],
            chat_body(sender, receiver, text),
            "{text:?}, in order"
        );
    }
}

/// Resets a connection (as a killed client's is): linger 0, then close.
fn reset(stream: impl Into<TcpStream>) {
    let stream = stream.into();
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// A receipts receiver logged in as `name` that never reads (as a stopped process).
fn silent_receiver(addr: SocketAddr, name: &str) -> TcpStream {
    let mut receiver = TcpStream::connect(addr).unwrap();
    receiver.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    send(
        &mut receiver,
        &[ints(&[4, 0]), login_frame(name, PASSWORD)].concat(),
    );
    assert_eq!(read_n(&mut receiver, 12), ints(&[4, 0, 1]), "RECEIPTS OK");
    assert_eq!(read_n(&mut receiver, 12), ints(&[1, 40, 1]), "LOGIN OK");
    receiver
}

#[test]
fn a_plain_client_pipelining_1000_messages_to_an_acking_receiver_delivers_all_in_order() {
    const MESSAGES: usize = 1_000;
    let server = start();
    let mut receiver = receipts_client(server.addr(), "1002");
    let mut sender = raw_logged_in(server.addr(), "1001");
    // Every request at once, before reading a single echo: the first receipts server
    // closed the receiver as slow at the 257th, before its ACK at 128 could arrive.
    let requests: Vec<u8> = (0..MESSAGES)
        .flat_map(|i| chat_frame("1001", "1002", &format!("m{i}")))
        .collect();
    let writer = {
        let mut sender = sender.try_clone().unwrap();
        std::thread::spawn(move || sender.write_all(&requests).unwrap())
    };
    let mut texts = Vec::with_capacity(MESSAGES);
    let mut unacknowledged = 0;
    while texts.len() < MESSAGES {
        let (_, id, _, text) = next_message(&mut receiver);
        texts.push(text);
        unacknowledged += 1;
        // As chat-client does: at once when half the window is unacknowledged.
        if unacknowledged == ACK_AT_ONCE || texts.len() == MESSAGES {
            receiver.send_ack(id).unwrap();
            unacknowledged = 0;
        }
    }
    writer.join().unwrap();
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "all 1,000 arrive, in order");
    let mut flags = [0; 3];
    for _ in 0..MESSAGES {
        let echo = read_n(&mut sender, 152);
        let flag = i32::from_le_bytes(echo[8..12].try_into().unwrap());
        flags[usize::try_from(flag).expect("OK or QUEUED")] += 1;
    }
    eprintln!("echoes: {} OK, {} QUEUED", flags[1], flags[0]);
    receiver.send_users().unwrap();
    assert!(
        matches!(receiver.read_reply().unwrap(), Reply::Users { .. }),
        "the receiver is still connected, with nothing more to come"
    );
}

#[test]
fn rounds_of_flood_and_reset_never_hold_more_than_the_mailbox_limit() {
    const LIMIT: usize = 10;
    let server = start_with(Accounts::built_in(), |config| config.mailbox_limit = LIMIT);
    for round in 0..5 {
        let receiver = silent_receiver(server.addr(), "1002");
        let echoes = send_to_1002(server.addr(), 50);
        let kept = echoes.iter().filter(|(flag, _, _)| *flag >= 0).count();
        assert!(
            kept <= LIMIT,
            "round {round}: {kept} kept, more than --mailbox-limit {LIMIT}"
        );
        assert!(
            echoes.iter().skip(kept).all(|(flag, _, _)| *flag == -7),
            "round {round}: the rest refused at the door (MAILBOX_FULL)"
        );
        reset(receiver);
    }
    let (_client, stored) = collect_stored(server.addr(), "1002");
    assert_eq!(stored.len(), LIMIT, "the store held exactly the limit");
    // Other users' mail still fits: 1002's rounds took only 1002's room.
    let mut sender = receipts_client(server.addr(), "1001");
    sender.send_chat("1003", "for later").unwrap();
    assert_eq!(next_message(&mut sender).0, 0, "QUEUED for 1003");
}

/// A receipts receiver, 1002, that does not read; a sender that sends `count` messages,
/// message `i` to `receiver(i)` (1002, or 1003, who is offline), while `fault` is in
/// force from message `at` on; then 1002 is reset, `after` ends the fault, and both log
/// in again. Every message echoed 0 or 1 arrives, in order, with its id; every other one
/// was refused at the door (-7, -8).
fn nothing_echoed_is_lost_under(
    addr: SocketAddr,
    count: usize,
    at: usize,
    receiver: impl Fn(usize) -> &'static str,
    fault: impl FnOnce(),
    after: impl FnOnce(),
) {
    let silent = silent_receiver(addr, "1002");
    let mut sender = receipts_client(addr, "1001");
    let mut fault = Some(fault);
    let mut echoes: Vec<(&str, (i32, u64, String))> = Vec::with_capacity(count);
    for i in 0..count {
        if i == at {
            fault.take().unwrap()();
        }
        let to = receiver(i);
        sender.send_chat(to, &format!("m{i}")).unwrap();
        let (flag, id, _, text) = next_message(&mut sender);
        echoes.push((to, (flag, id, text)));
    }
    reset(silent);
    after();
    let refused = echoes.iter().filter(|(_, (flag, _, _))| *flag < 0).count();
    assert!(refused > 0, "the fault refused some messages at the door");
    assert!(
        echoes
            .iter()
            .all(|(_, (flag, _, _))| [1, 0, -7, -8].contains(flag)),
        "OK, QUEUED, or refused: {:?}",
        echoes
            .iter()
            .map(|(_, (flag, _, _))| flag)
            .collect::<Vec<_>>()
    );
    for name in ["1002", "1003"] {
        let (_client, stored) = collect_stored(addr, name);
        let kept: Vec<_> = echoes
            .iter()
            .filter(|(to, (flag, _, _))| *to == name && *flag >= 0)
            .map(|(_, echo)| echo.clone())
            .collect();
        nothing_echoed_is_lost(&kept, &stored);
    }
}

#[test]
fn a_full_disk_loses_nothing_echoed_and_refuses_the_rest_at_the_door() {
    let temp = tempfile::tempdir().unwrap();
    let Some(disk) = small_tmpfs(temp.path(), "64k") else {
        return;
    };
    let server = serve_on(&disk.0.join("data"), |_| {});
    // 64 KiB hold about 440 records: the disk fills during the 600.
    nothing_echoed_is_lost_under(server.local_addr(), 600, 0, |_| "1002", || {}, || {});
}

#[test]
fn a_read_only_disk_loses_nothing_echoed_and_refuses_the_rest_at_the_door() {
    let temp = tempfile::tempdir().unwrap();
    let Some(disk) = small_tmpfs(temp.path(), "1m") else {
        return;
    };
    let server = serve_on(&disk.0.join("data"), |_| {});
    let remount = |mode: &str| {
        Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&disk.0)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    // A file system with a file open for writing cannot be remounted read-only (as a
    // failing disk is, by the kernel): the server lets go of the files of mailboxes
    // idle for a second or two, so the remount waits for that, within a bound.
    let remount_read_only = || {
        let deadline = Instant::now() + READ_TIMEOUT;
        while !remount("ro") {
            assert!(
                Instant::now() < deadline,
                "the disk could be remounted read-only"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    nothing_echoed_is_lost_under(
        server.local_addr(),
        400,
        300,
        |_| "1002",
        remount_read_only,
        || assert!(remount("rw"), "remount rw"),
    );
}

#[test]
fn no_descriptor_free_loses_nothing_echoed_and_refuses_the_rest_at_the_door() {
    let server = run_server("", &[]);
    let pid = server.child.id();
    let (soft, _) = descriptor_limits(pid);
    let limit = |soft: &str| set_descriptor_limit(pid, soft);
    // No descriptor free once both clients are in: the store cannot open a file. 1002's
    // file is kept open (it was written at every message), so messages to it are still
    // kept; the first message to 1003, offline, needs a new file, and is refused.
    let mut lowered = false;
    nothing_echoed_is_lost_under(
        server.addr,
        300,
        100,
        |i| {
            if i < 100 || i % 2 == 0 {
                "1002"
            } else {
                "1003"
            }
        },
        || lowered = limit(&lowest_free_descriptor(pid).to_string()),
        || assert!(limit(&soft), "the limit is raised again"),
    );
    assert!(lowered, "prlimit lowered the server's descriptor limit");
}

#[test]
fn ids_carry_the_millisecond_and_count_only_the_receivers_own_messages_during_a_flood() {
    let server = start();
    let addr = server.addr();
    // Another pair floods: 20,000 messages from 1003 to 1004.
    let flood = std::thread::spawn(move || {
        let mut receiver = raw_logged_in(addr, "花开富贵");
        let mut sender = raw_logged_in(addr, "1003");
        let reader = std::thread::spawn(move || {
            let mut sink = vec![0; 1 << 16];
            let mut got = 0;
            while got < 20_000 * 152 {
                got += receiver.read(&mut sink).unwrap();
            }
        });
        let batch: Vec<u8> = (0..100)
            .flat_map(|_| chat_frame("1003", "花开富贵", "flood"))
            .collect();
        for _ in 0..200 {
            sender.write_all(&batch).unwrap();
            read_n(&mut sender, batch.len() / 148 * 152);
        }
        reader.join().unwrap();
    });
    let _receiver = receipts_client(addr, "1002");
    let mut sender = receipts_client(addr, "1001");
    for i in 0..20 {
        let before = message_id::now_ms();
        sender.send_chat("1002", &format!("mine {i}")).unwrap();
        let (flag, id, _, _) = next_message(&mut sender);
        let after = message_id::now_ms();
        assert_eq!(flag, 1);
        let at = message_id::sent_at_ms(id).unwrap();
        assert!(
            (before..=after).contains(&at),
            "message {i}: its id carries the millisecond it was accepted ({at}, sent in \
             {before}..={after}), whatever the flood"
        );
        let n = id & ((1 << SEQUENCE_BITS) - 1);
        assert!(
            n <= i,
            "message {i}: its low bits count 1002's messages only (n = {n})"
        );
    }
    flood.join().unwrap();
}

#[test]
fn a_receiver_is_never_held_up_by_a_sender_whose_socket_is_full() {
    let server = start();
    let mut sender = receipts_client(server.addr(), "1001");
    let mut receiver = receipts_client(server.addr(), "1002");
    sender.send_chat("1002", "hello").unwrap();
    next_message(&mut sender);
    let (_, id, _, _) = next_message(&mut receiver);
    // The sender stops reading and keeps sending to itself: its session blocks writing
    // the echoes to a full socket, holding its write lock, until the test stops
    // pipelining because the server stopped reading.
    let (mut stuffing, _reader) = sender.split();
    stuffing
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let to_myself = chat_frame("1001", "1001", "stuffing").repeat(1_000);
    while stuffing.write_all(&to_myself).is_ok() {}
    // The receiver acknowledges: a RECEIVED is owed to the stuck sender.
    receiver.send_ack(id).unwrap();
    let started = Instant::now();
    receiver.send_chat("1002", "me").unwrap();
    assert_eq!(next_message(&mut receiver).0, 1);
    let took = started.elapsed();
    eprintln!("the receiver's next echo took {took:?} while a RECEIVED waited for the sender");
    assert!(
        took < Duration::from_millis(500),
        "the receiver's next echo took {took:?}: it waited on the sender's socket"
    );
}

#[test]
fn a_second_login_on_the_same_connection_starts_its_own_acknowledgements() {
    let server = start();
    let mut sender = receipts_client(server.addr(), "1001");
    let mut connection = receipts_client(server.addr(), "1002");
    let mut last = 0;
    for i in 0..5 {
        sender.send_chat("1002", &format!("to 1002 {i}")).unwrap();
        last = next_message(&mut connection).1;
    }
    connection.send_ack(last).unwrap();
    connection.send_login("1003", PASSWORD).unwrap();
    assert_eq!(connection.read_reply().unwrap(), Reply::Login { flag: 1 });
    sender.send_chat("1003", "to 1003").unwrap();
    let (_, id, _, _) = next_message(&mut connection);
    connection.send_ack(id).unwrap();
    connection.send_users().unwrap();
    assert!(
        matches!(connection.read_reply().unwrap(), Reply::Users { .. }),
        "1003's ACK is accepted (no MALFORMED): 1002's mark did not carry over"
    );
    drop(connection);
    let (_client, stored) = collect_stored(server.addr(), "1003");
    assert!(stored.is_empty(), "acknowledged, so gone: {stored:?}");
}

#[test]
fn a_login_and_reset_loop_is_logged_within_the_flood_limit() {
    const ROUNDS: usize = 600;
    let server = run_server("", &[]);
    let mut sender = raw_logged_in(server.addr, "1001");
    let started = Instant::now();
    for _ in 0..ROUNDS {
        // A receipts login that is written a message, never acknowledges it, and is
        // reset; with a refused ACK and a message to an offline user on the way: the
        // lines a script can make the server write. (The first receipts server logged
        // the message "stored again" at every reset, unlimited.)
        let mut client = silent_receiver(server.addr, "1002");
        send(&mut sender, &chat_frame("1001", "1002", "unacknowledged"));
        read_n(&mut sender, 152);
        read_n(&mut client, 160);
        let requests = [
            [ints(&[6, 8]), vec![0xFF; 8]].concat(),
            chat_frame("1002", "1003", "for later"),
        ]
        .concat();
        client.write_all(&requests).unwrap();
        read_n(&mut client, 12);
        reset(client);
    }
    let seconds = started.elapsed().as_secs() + 1;
    // A last round trip, then count every line so far.
    send(&mut sender, &chat_frame("1001", "1001", "done"));
    read_n(&mut sender, 152);
    let lines = server.drain_log().len();
    // Each kind of line is limited to LINES_PER_WINDOW a second, and a round can
    // cause at most these kinds: connected, logged in, went offline, disconnected,
    // delivered stored messages, refused ACK, and their held-back summaries.
    const KINDS: u64 = 8;
    let bound = (seconds * KINDS * u64::from(LINES_PER_WINDOW)) as usize + 20;
    eprintln!("{ROUNDS} rounds in {seconds} s: {lines} log lines (bound {bound})");
    assert!(
        lines <= bound,
        "{lines} log lines for {ROUNDS} rounds in {seconds} s"
    );
}

#[test]
fn a_flipped_header_byte_loses_no_message() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let server = serve_on(&dir, |_| {});
    let mut sender = receipts_client(server.local_addr(), "1001");
    let mut sent = Vec::new();
    for i in 0..3 {
        sender.send_chat("1002", &format!("kept {i}")).unwrap();
        let (flag, id, _, text) = next_message(&mut sender);
        assert_eq!(flag, 0);
        sent.push((id, text));
    }
    drop(sender);
    server.stop();
    let path = dir.join("31303032.mbox");
    let whole = fs::read(&path).unwrap();
    for at in 0..24 {
        let mut damaged = whole.clone();
        damaged[at] ^= 0x04;
        fs::write(&path, &damaged).unwrap();
        let server = serve_on(&dir, |_| {});
        let mut reader = receipts_client(server.local_addr(), "1002");
        reader.send_users().unwrap();
        let mut got = Vec::new();
        while let Reply::Message { id, message, .. } = reader.read_reply().unwrap() {
            got.push((id, message.text.to_lossy()));
        }
        assert_eq!(
            got, sent,
            "header byte {at} flipped: every message, with its id"
        );
        drop(reader);
        server.stop();
        fs::write(&path, &whole).unwrap();
    }
}

/// Every entry under `dir`: its path, mode and bytes (none for a directory).
fn snapshot(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut entries = vec![(
        dir.display().to_string(),
        fs::metadata(dir).unwrap().permissions().mode(),
        Vec::new(),
    )];
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        entries.push((path.display().to_string(), mode, fs::read(&path).unwrap()));
    }
    entries.sort();
    entries
}

#[test]
fn a_start_that_fails_for_its_port_changes_nothing_in_the_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    fs::create_dir(&dir).unwrap();
    // What a start would change: a directory open to others (made private), a mailbox
    // of the first format (rewritten), a mailbox open to others (made private).
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let old = chat_body("1001", "1002", "old format");
    fs::write(dir.join("31303032.mbox"), &old).unwrap();
    fs::set_permissions(dir.join("31303032.mbox"), fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(&dir);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(SERVER)
        .args(["--bind", "127.0.0.1", "--port", &port, "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "the port is taken: exit 1");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("already in use"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(snapshot(&dir), before, "no byte and no mode changed");
    // Once it holds a port, the same start upgrades and closes them.
    let server = run_server_on(&dir, "", &[]);
    drop(server);
    assert_ne!(
        snapshot(&dir),
        before,
        "a start that holds its port does its work"
    );
}

/// A plain login that could not read its mailbox (no descriptor free) logs in without
/// it; turning receipts on afterwards makes the store the queue, and what it holds comes
/// at once, after the RECEIPTS answer, rather than waiting for an ACK of nothing.
#[test]
fn receipts_turned_on_after_a_login_bring_what_the_store_still_holds() {
    let server = run_server("", &[]);
    let pid = server.child.id();
    let mut sender = raw_logged_in(server.addr, "1001");
    for text in ["one", "two"] {
        send(&mut sender, &chat_frame("1001", "1002", text));
        assert_eq!(read_n(&mut sender, 152)[8..12], ints(&[0]), "QUEUED");
    }
    let mut late = served_before_a_login(server.addr);
    with_no_descriptor_free(pid, || {
        send(
            &mut late,
            &[login_frame("1002", PASSWORD), ints(&[3, 0])].concat(),
        );
        logged_in_without_stored_messages(&mut late);
    });
    send(&mut late, &ints(&[4, 0]));
    assert_eq!(read_n(&mut late, 12), ints(&[4, 0, 1]), "RECEIPTS OK");
    expect_messages(&mut late, "1001", "1002", &["one", "two"]);
}

/// A mailbox cut short by hand while the server runs: what is gone is gone (and said
/// in the log), and the receipts receiver is not left waiting for it: its next messages
/// come at once.
#[test]
fn a_store_cut_by_hand_never_starves_its_receipts_receiver() {
    let server = start();
    let mut sender = receipts_client(server.addr(), "1001");
    for i in 0..3 {
        sender.send_chat("1002", &format!("old {i}")).unwrap();
        assert_eq!(next_message(&mut sender).0, 0, "QUEUED");
    }
    let path = server.data.path().join("data").join("31303032.mbox");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(HEADER_BYTES as u64)
        .unwrap();
    let mut receiver = receipts_client(server.addr(), "1002");
    for i in 0..5 {
        sender.send_chat("1002", &format!("new {i}")).unwrap();
        next_message(&mut sender);
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let (_, _, _, text) = next_message(&mut receiver);
        got.push(text);
    }
    let expected: Vec<String> = (0..5).map(|i| format!("new {i}")).collect();
    assert_eq!(
        got, expected,
        "the new messages, at once, none held behind the lost ones"
    );
}

/// A receipts login that could not read its store (no descriptor free: the store's open
/// files are all in use by other mailboxes) logs in with its window open and messages
/// waiting; the next message brings them, in order, ahead of itself.
#[test]
fn waiting_messages_a_login_could_not_read_come_before_the_next_one() {
    const OTHERS: usize = 16;
    let users = tempfile::tempdir().unwrap();
    let file = users.path().join("users.txt");
    let lines: String = (0..OTHERS + 2)
        .map(|i| format!("u{i}:{PASSWORD}\n"))
        .collect();
    fs::write(&file, lines).unwrap();
    let server = run_server("", &["--users", file.to_str().unwrap()]);
    let pid = server.child.id();
    let mut sender = raw_logged_in(server.addr, "u0");
    let mut echo = |to: &str, text: &str| {
        send(&mut sender, &chat_frame("u0", to, text));
        loop {
            let frame = read_n(&mut sender, 152);
            // The room message said meanwhile (to u0 too) is not the echo.
            if frame[12..14] != *b"u2" {
                break i32::from_le_bytes(frame[8..12].try_into().unwrap());
            }
        }
    };
    // The store keeps 16 files open: those of 16 other mailboxes, written just now.
    for i in 2..OTHERS + 2 {
        assert_eq!(echo(&format!("u{i}"), "taking a place"), 0);
    }
    for text in ["old one", "old two"] {
        assert_eq!(echo("u1", text), 0, "QUEUED");
    }
    let mut late = served_before_a_login(server.addr);
    with_no_descriptor_free(pid, || {
        send(
            &mut late,
            &[ints(&[4, 0]), login_frame("u1", PASSWORD), ints(&[3, 0])].concat(),
        );
        assert_eq!(read_n(&mut late, 12), ints(&[4, 0, 1]), "RECEIPTS OK");
        logged_in_without_stored_messages(&mut late);
    });
    // A room message meanwhile: u1 has messages waiting, so it misses it, as an offline
    // user would, rather than get it ahead of them with a higher id.
    let mut talker = raw_logged_in(server.addr, "u2");
    send(&mut talker, &chat_frame("u2", "*", "room"));
    // Its stored message (from the first loop), then the room message's echo.
    read_n(&mut talker, 2 * 152);
    drop(talker);
    assert_eq!(echo("u1", "new"), 0, "kept behind the two that wait");
    expect_messages(&mut late, "u0", "u1", &["old one", "old two", "new"]);
}
