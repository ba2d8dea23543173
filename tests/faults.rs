//! Faults from real causes, against the `chat-server` binary: streams cut at every byte
//! (end of stream, reset, stall), a descriptor limit too low at startup or lowered
//! under a running server (`prlimit --pid`), squatters that never read, and the store
//! limit at the moment a mailbox is delivered. Each asserts what docs/PROTOCOL.md
//! promises: nothing spent (no spinning thread, no thread or descriptor beyond the
//! client limit), nothing lost (no message that was echoed 0 or 1).

mod common;

use common::child::*;
use common::*;
use socket2::{Domain, SockRef, Socket, Type};
use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// One frame of each shape the session reads, whole. Bodies the server skips (a wrong
/// length, USERS with a body, an unknown type) are where the spinning thread lived.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut wrong_login = ints(&[1, 41]);
    wrong_login.extend([7; 41]);
    let mut wrong_chat = ints(&[2, 139]);
    wrong_chat.extend([7; 139]);
    let mut users_with_body = ints(&[3, 5]);
    users_with_body.extend([7; 5]);
    let mut unknown = ints(&[9, 17]);
    unknown.extend([7; 17]);
    vec![
        ("LOGIN", login_frame("1001", PASSWORD)),
        ("LOGIN with a 41-byte body", wrong_login),
        ("CHAT", chat_frame("1001", "1002", "hi")),
        ("CHAT with a 139-byte body", wrong_chat),
        ("USERS", ints(&[3, 0])),
        ("USERS with a body", users_with_body),
        ("unknown type 9", unknown),
    ]
}

/// How a test client cuts its stream short.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// `shutdown(Write)`: the server reads the end of the stream.
    HalfClose,
    /// Close with `SO_LINGER` 0: the server's next read fails with a reset.
    Reset,
}

/// Where a cut frame is sent from.
#[derive(Clone, Copy, Debug)]
enum Context {
    BeforeLogin,
    AfterLogin,
    /// From an address whose logins are refused unchecked (its body is skipped).
    Throttled,
}

/// One cut connection: connect, log in if the context says so, send `prefix`, cut.
/// After a half-close the server must close its side at once: the read sees the end.
fn cut_once(addr: SocketAddr, user: &str, context: Context, prefix: &[u8], cut: Cut) {
    let mut stream = match context {
        Context::Throttled => connect_from(ANOTHER_MACHINE, addr),
        _ => connect(addr),
    };
    if let Context::AfterLogin = context {
        raw_login(&mut stream, user);
    }
    send(&mut stream, prefix);
    match cut {
        Cut::HalfClose => {
            stream.shutdown(Shutdown::Write).unwrap();
            assert!(
                closed_by_server(&mut stream),
                "{context:?}: {} bytes of a frame, then the end of the stream: the server \
                 did not close the connection within {READ_TIMEOUT:?}",
                prefix.len()
            );
        }
        Cut::Reset => {
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
    }
}

/// Descriptors the process holds.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Threads of a process, from its status file.
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The threads and descriptors of the server when idle: measured with one connection
/// served (an answered request means the server is fully up, its signal thread too),
/// less that connection.
fn idle_threads_and_descriptors(server: &Running) -> (usize, usize) {
    let pid = server.child.id();
    let mut probe = connect(server.addr);
    send(&mut probe, &ints(&[3, 0]));
    assert_frames!(
        read_n(&mut probe, 12),
        ints(&[3, 0, -2]),
        "USERS before a login"
    );
    (threads(pid) - 1, descriptors(pid) - 1)
}

/// Polls until `measure` gives `expected` again, for at most `READ_TIMEOUT`: sessions
/// end a moment after their sockets close.
fn settles_to(expected: usize, what: &str, measure: impl Fn() -> usize) {
    let deadline = Instant::now() + READ_TIMEOUT;
    while measure() != expected {
        assert!(
            Instant::now() < deadline,
            "{} {what}, expected {expected} again",
            measure()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Test clients that cut frames at once.
const CUTTERS: usize = 8;

/// Every frame kind, cut at every byte offset, in every context, by end of stream and
/// by reset: each connection is closed at once, the server's threads and descriptors
/// come back, and the whole run costs the server little CPU. A frame timeout of an
/// hour means that a thread spinning on a closed stream would never stop by itself.
#[test]
fn every_cut_of_every_frame_closes_at_once_and_costs_no_cpu() {
    let mut users = String::new();
    for i in 0..CUTTERS {
        users.push_str(&format!("cutter{i}:{PASSWORD}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users.txt");
    std::fs::write(&users_file, users + "1001:123456\n").unwrap();
    let server = run_server(
        "",
        &[
            "--users",
            users_file.to_str().unwrap(),
            "--frame-timeout",
            "3600",
            "--login-failures",
            "1",
        ],
    );
    let pid = server.child.id();
    let baseline = idle_threads_and_descriptors(&server);
    // One failed login from the other machine: its logins are refused unchecked now.
    let mut guesser = connect_from(ANOTHER_MACHINE, server.addr);
    send(&mut guesser, &login_frame("1001", "wrong"));
    assert_frames!(read_n(&mut guesser, 12), ints(&[1, 40, -1]), "a refusal");
    drop(guesser);

    let mut cases = Vec::new();
    for (name, frame) in frames() {
        for context in [
            Context::BeforeLogin,
            Context::AfterLogin,
            Context::Throttled,
        ] {
            if let Context::Throttled = context
                && !name.starts_with("LOGIN")
            {
                continue;
            }
            for offset in 1..frame.len() {
                for cut in [Cut::HalfClose, Cut::Reset] {
                    cases.push((context, frame[..offset].to_vec(), cut));
                }
            }
        }
    }
    let count = cases.len();
    let cpu_before = cpu_ticks(pid);
    let addr = server.addr;
    let cutters: Vec<_> = (0..CUTTERS)
        .map(|i| {
            let mine: Vec<_> = cases.iter().skip(i).step_by(CUTTERS).cloned().collect();
            thread::spawn(move || {
                let user = format!("cutter{i}");
                for (context, prefix, cut) in mine {
                    cut_once(addr, &user, context, &prefix, cut);
                }
            })
        })
        .collect();
    for cutter in cutters {
        cutter.join().expect("every cut closed");
    }
    settles_to(baseline.0, "server threads", || threads(pid));
    settles_to(baseline.1, "server descriptors", || descriptors(pid));
    let used = cpu_ticks(pid) - cpu_before;
    // A tick is 10 ms: the target is at most one per cut connection; a real run costs a
    // few hundred microseconds each.
    assert!(
        (used as usize) < count,
        "{used} ticks of server CPU for {count} cut connections"
    );
    // And nothing keeps running afterwards.
    let quiet_before = cpu_ticks(pid);
    thread::sleep(Duration::from_millis(300));
    let quiet = cpu_ticks(pid) - quiet_before;
    assert!(quiet <= 3, "{quiet} ticks of CPU in 300 ms with no client");
    let closed_mid_frame = server
        .drain_log()
        .iter()
        .any(|line| line.contains("closed in the middle of a frame"));
    assert!(closed_mid_frame, "an end inside a frame is logged as such");
}

/// A frame begun and then left: the server closes it after the frame timeout, having
/// spent nothing while it waited, and the log says it timed out.
#[test]
fn every_stalled_frame_is_closed_after_the_frame_timeout() {
    let server = run_server("", &["--frame-timeout", "1"]);
    let pid = server.child.id();
    let cpu_before = cpu_ticks(pid);
    let mut stalled = Vec::new();
    for (name, frame) in frames() {
        for offset in (1..frame.len()).step_by(7) {
            let mut stream = connect(server.addr);
            send(&mut stream, &frame[..offset]);
            stalled.push((name, offset, stream));
        }
    }
    for (name, offset, stream) in &mut stalled {
        assert!(
            closed_by_server(stream),
            "{name} cut after {offset} bytes and left: not closed by the frame timeout"
        );
    }
    let used = cpu_ticks(pid) - cpu_before;
    assert!(
        (used as usize) < stalled.len(),
        "{used} ticks of CPU for {} stalled connections",
        stalled.len()
    );
    server.wait_for_log("did not arrive within 1 s");
}

/// Squatters that pipeline requests before logging in and never read the replies: each
/// is evicted in turn, and its thread ends at once instead of waiting out its write
/// timeout. The server never holds more than the client limit plus a few threads.
#[test]
fn squatters_that_never_read_hold_no_threads_beyond_the_client_limit() {
    const MAX_CLIENTS: usize = 20;
    const SQUATTERS: usize = 120;
    // Beyond the client limit: evicted sessions still ending (`EVICTIONS_IN_FLIGHT` in
    // slots.rs, joined by the accept thread beyond that), and the newcomer itself.
    const ALLOWANCE: usize = 4 + 1;
    let server = run_server("", &["--max-clients", &MAX_CLIENTS.to_string()]);
    let pid = server.child.id();
    let (idle_threads, idle_descriptors) = idle_threads_and_descriptors(&server);
    let mut most = (0, 0);
    let mut squatters = Vec::new();
    // Replies to USERS before a login are 12 bytes each: enough requests to fill a small
    // receive buffer and the server's send buffer many times over.
    let requests: Vec<u8> = ints(&[3, 0]).repeat(16 * 1024);
    for _ in 0..SQUATTERS {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        stream.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while sent < requests.len() {
            match stream.write(&requests[sent..]) {
                Ok(n) => sent += n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) => panic!("squatter write: {error}"),
            }
        }
        squatters.push(stream);
        most = (most.0.max(threads(pid)), most.1.max(descriptors(pid)));
    }
    // The newest squatters hold the slots; a user still gets in.
    let mut user = raw_logged_in(server.addr, "1001");
    send(&mut user, &ints(&[3, 0]));
    assert_frames!(
        read_n(&mut user, 12),
        ints(&[3, 20, 1]),
        "USERS: 1001 alone"
    );
    most = (most.0.max(threads(pid)), most.1.max(descriptors(pid)));
    assert!(
        most.0 <= idle_threads + MAX_CLIENTS + ALLOWANCE,
        "{} server threads ({idle_threads} when idle) with --max-clients {MAX_CLIENTS} \
         and {SQUATTERS} squatters",
        most.0
    );
    assert!(
        most.1 <= idle_descriptors + MAX_CLIENTS + ALLOWANCE,
        "{} server descriptors ({idle_descriptors} when idle) with --max-clients \
         {MAX_CLIENTS} and {SQUATTERS} squatters",
        most.1
    );
}

/// `--store-limit` reached; a user reads their stored message, and the very next message
/// to an offline user is stored: the room was free before the client could see its
/// messages. Fifty times in a row.
#[test]
fn after_a_mailbox_is_delivered_at_the_store_limit_the_next_message_is_stored() {
    const ROUNDS: usize = 50;
    let server = start_with(numbered_users("r", ROUNDS + 2), |config| {
        config.store_limit = 1;
    });
    let mut sender = logged_in(server.addr(), "r0");
    sender.send_chat("r1", "1").unwrap();
    assert_eq!(next_chat(&mut sender).0, 0, "QUEUED for r1");
    for round in 1..=ROUNDS {
        let mut receiver = connect(server.addr());
        send(&mut receiver, &login_frame(&format!("r{round}"), PASSWORD));
        assert_frames!(read_n(&mut receiver, 12), ints(&[1, 40, 1]), "login");
        let stored = read_n(&mut receiver, 152);
        assert_eq!(stored[..12], ints(&[2, 140, 1]), "the stored message");
        let next = format!("r{}", round + 1);
        sender.send_chat(&next, &round.to_string()).unwrap();
        let (flag, _) = next_chat(&mut sender);
        assert_eq!(
            flag, 0,
            "round {round}: a message to offline {next} right after a mailbox was read \
             must be QUEUED (0), not {flag}"
        );
    }
}

/// With a descriptor limit below `--max-clients`, the client limit is lowered to fit at
/// startup (one log line): idle connections can then never take the descriptors that a
/// login and its mailbox need.
#[test]
fn a_descriptor_limit_below_the_client_limit_lowers_it_and_logins_still_get_in() {
    let server = run_server("ulimit -n 64 &&", &[]);
    let lowered = server
        .startup
        .iter()
        .any(|line| line.contains("--max-clients 10000 lowered to"));
    assert!(
        lowered,
        "no startup line about the lowered limit: {:?}",
        server.startup
    );
    let mut sender = raw_logged_in(server.addr, "1001");
    send(&mut sender, &chat_frame("1001", "1002", "kept"));
    assert_frames!(read_n(&mut sender, 152)[..12], ints(&[2, 140, 0]), "QUEUED");
    let idle: Vec<_> = (0..80).map(|_| connect(server.addr)).collect();
    let (_receiver, stored) = login_and_collect_stored(server.addr, "1002");
    assert_eq!(stored, [(1, "1001".to_string(), "kept".to_string())]);
    drop(idle);
}

/// The descriptor limit lowered under a running server: a login whose mailbox cannot be
/// opened gets in, its mailbox stays whole, and a later login gets every message; a
/// newcomer with no descriptor left gets in by evicting a connection that never logged
/// in.
#[test]
fn a_descriptor_limit_lowered_under_a_running_server_loses_no_stored_message() {
    let server = run_server("", &[]);
    let pid = server.child.id();
    let mut sender = raw_logged_in(server.addr, "1001");
    for text in ["one", "two", "three"] {
        send(&mut sender, &chat_frame("1001", "1002", text));
        assert_frames!(read_n(&mut sender, 152)[..12], ints(&[2, 140, 0]), "QUEUED");
    }
    let mut idle: Vec<_> = (0..4).map(|_| connect(server.addr)).collect();
    for stream in &mut idle {
        send(stream, &ints(&[3, 0]));
        assert_frames!(
            read_n(stream, 12),
            ints(&[3, 0, -2]),
            "served before a login"
        );
    }
    // 1002's connection is served; then no descriptor is left, and its login cannot
    // open the mailbox.
    let mut first = connect(server.addr);
    send(&mut first, &ints(&[3, 0]));
    assert_frames!(
        read_n(&mut first, 12),
        ints(&[3, 0, -2]),
        "served before a login"
    );
    let (normal, _) = descriptor_limits(pid);
    if !set_descriptor_limit(pid, &lowest_free_descriptor(pid).to_string()) {
        return;
    }
    send(&mut first, &login_frame("1002", PASSWORD));
    send(&mut first, &ints(&[3, 0]));
    assert_frames!(
        read_n(&mut first, 12),
        ints(&[1, 40, 1]),
        "the login gets in"
    );
    assert_frames!(
        read_n(&mut first, 12),
        ints(&[3, 40, 1]),
        "the USERS reply comes next: no stored message, there was no descriptor to read them"
    );
    server.wait_for_log("stay there for a later login");
    let busy = ints(&[1, 40, -5]);
    // A newcomer gets in by evicting the oldest idle connection, as at the client limit.
    let mut newcomer = raw_logged_in(server.addr, "1003");
    assert_frames!(
        read_n(&mut idle[0], 12),
        busy,
        "the oldest idle one made room: BUSY"
    );
    assert!(closed_by_server(&mut idle[0]), "and is closed");
    send(&mut newcomer, &ints(&[3, 0]));
    assert_frames!(read_n(&mut newcomer, 12)[..12], ints(&[3, 60, 1]));
    assert!(set_descriptor_limit(pid, &normal));
    drop(first);
    let (_second, stored) = login_and_collect_stored(server.addr, "1002");
    let texts: Vec<_> = stored.iter().map(|(_, _, text)| text.as_str()).collect();
    assert_eq!(
        texts,
        ["one", "two", "three"],
        "every QUEUED message, in order"
    );
}

/// Descriptors gone while everyone is logged in: `accept` fails, the server logs it once,
/// backs off instead of spinning, keeps serving its clients, and recovers when
/// descriptors come back.
#[test]
fn running_out_of_descriptors_with_everyone_logged_in_is_survived() {
    let server = run_server("", &[]);
    let pid = server.child.id();
    let mut a = raw_logged_in(server.addr, "1001");
    let mut b = raw_logged_in(server.addr, "1002");
    let (normal, _) = descriptor_limits(pid);
    if !set_descriptor_limit(pid, &lowest_free_descriptor(pid).to_string()) {
        return;
    }
    // The kernel queues these; accept fails, and there is no one to evict.
    let extra: Vec<_> = (0..10).map(|_| connect(server.addr)).collect();
    server.wait_for_log("backing off");
    let cpu_before = cpu_ticks(pid);
    for round in 0..5 {
        let text = round.to_string();
        send(&mut a, &chat_frame("1001", "1002", &text));
        let expected = chat_reply(1, &chat_body("1001", "1002", &text));
        assert_frames!(read_n(&mut b, 152), expected);
        assert_frames!(read_n(&mut a, 152), expected);
    }
    // Let the backoff run for a while: a busy loop would burn a core meanwhile.
    thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks(pid) - cpu_before;
    assert!(
        used < 20,
        "{used} ticks of CPU in half a second out of descriptors"
    );
    let log = server.drain_log();
    let repeats = log
        .iter()
        .filter(|line| line.contains("backing off"))
        .count();
    assert_eq!(repeats, 0, "logged once, not once per retry: {log:#?}");
    drop(extra);
    assert!(set_descriptor_limit(pid, &normal));
    let mut late = raw_logged_in(server.addr, "1003");
    send(&mut late, &ints(&[3, 0]));
    assert_frames!(read_n(&mut late, 12), ints(&[3, 60, 1]), "three online");
}
