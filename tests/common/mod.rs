//! What every test file shares: a real server on 127.0.0.1 port 0 in this process, raw
//! sockets with read timeouts, and frames built by hand from docs/PROTOCOL.md's offsets (not
//! with the library's encoder, so that a mistake there cannot hide in both places).
#![allow(dead_code)] // each test binary uses a different part of this module
//!
//! The helpers are `#[track_caller]`, so a failure points at the test's line, not at
//! this file; and bytes that differ are shown decoded (`FEEDBACK{1, 40, -6
//! TOO_MANY_ATTEMPTS}`), in the words of docs/PROTOCOL.md, by [`assert_frames!`].

pub mod child;
pub mod exchanges;
pub mod minimal;
pub mod receipts;

use chatroom::blocking_client::{Client, Reply};
use chatroom::protocol::ChatMessage;
use chatroom::users::Accounts;
use chatroom::{Config, Server, ServerHandle};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tempfile::TempDir;

/// No test waits longer than this for a reply: a missing reply fails the test instead of
/// hanging it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub const BUILT_IN_USERS: [&str; 6] = ["1001", "1002", "1003", "似末", "玛卡巴卡", "花开富贵"];
pub const PASSWORD: &str = "123456";

/// `FEEDBACK`, the reply header: `i32 type`, `i32 length`, `i32 flag`.
pub const FEEDBACK_LEN: usize = 12;
/// `HEAD`, the request header: `i32 type`, `i32 length`.
pub const HEAD_LEN: usize = 8;
/// `CHATMSG`: `sender[20]`, `receiver[20]`, `message[100]`.
pub const CHATMSG_LEN: usize = 140;
const NAME_FIELD: usize = 20;

/// The flags of docs/PROTOCOL.md §2, by value, with the names it gives them.
const FLAG_NAMES: [(i32, &str); 10] = [
    (1, "OK"),
    (0, "QUEUED"),
    (-1, "REJECTED"),
    (-2, "NOT_LOGGED_IN"),
    (-3, "MALFORMED"),
    (-4, "UNSUPPORTED"),
    (-5, "BUSY"),
    (-6, "TOO_MANY_ATTEMPTS"),
    (-7, "MAILBOX_FULL"),
    (-8, "NOT_STORED"),
];

/// A flag as docs/PROTOCOL.md writes it: `-6 TOO_MANY_ATTEMPTS`.
pub fn flag_name(flag: i32) -> String {
    match FLAG_NAMES.iter().find(|(value, _)| *value == flag) {
        Some((_, name)) => format!("{flag} {name}"),
        None => format!("{flag} (no such flag)"),
    }
}

/// Bytes the server sent, as the protocol names them: each reply as `FEEDBACK{type,
/// length, flag NAME}` and, for CHAT, its `CHATMSG{sender -> receiver: "text"}`; for
/// USERS, the names. What is left over that is not a whole reply is shown as bytes.
pub fn describe_frames(bytes: &[u8]) -> String {
    let int = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut parts = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= FEEDBACK_LEN {
        let (kind, length, flag) = (int(at), int(at + 4), int(at + 8));
        // A LOGIN feedback says 40 and has no body (PROTOCOL §1); a CHAT reply always
        // carries its 140-byte message; USERS carries `length` bytes of names.
        let body_len = match kind {
            1 => 0,
            2 => CHATMSG_LEN,
            _ => usize::try_from(length).unwrap_or(usize::MAX),
        };
        let body_start = at + FEEDBACK_LEN;
        let mut part = format!("FEEDBACK{{{kind}, {length}, {}}}", flag_name(flag));
        if bytes.len() - body_start < body_len {
            let have = bytes.len() - body_start;
            part.push_str(&format!(" and {have} bytes of its {body_len}-byte body"));
            parts.push(part);
            at = bytes.len();
            break;
        }
        let body = &bytes[body_start..body_start + body_len];
        match kind {
            2 => part.push_str(&format!(
                " + CHATMSG{{{:?} -> {:?}: {:?}}}",
                text_of(&body[..NAME_FIELD]),
                text_of(&body[NAME_FIELD..2 * NAME_FIELD]),
                text_of(&body[2 * NAME_FIELD..]),
            )),
            3 if body_len > 0 => {
                let names: Vec<String> = body.chunks(NAME_FIELD).map(text_of).collect();
                part.push_str(&format!(" + names {names:?}"));
            }
            _ => {}
        }
        parts.push(part);
        at = body_start + body_len;
    }
    if at < bytes.len() {
        parts.push(format!(
            "{} more bytes {:?}",
            bytes.len() - at,
            &bytes[at..]
        ));
    }
    if parts.is_empty() {
        return "nothing".to_string();
    }
    parts.join(", ")
}

/// A text field's value (up to its first NUL), for messages.
fn text_of(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The function behind [`assert_frames!`]: panics, at the caller's line, with both
/// sides decoded.
#[track_caller]
pub fn check_frames(actual: impl AsRef<[u8]>, expected: impl AsRef<[u8]>, context: String) {
    let (actual, expected) = (actual.as_ref(), expected.as_ref());
    if actual != expected {
        let context = if context.is_empty() {
            String::new()
        } else {
            format!("{context}: ")
        };
        let (seen, wanted) = (describe_frames(actual), describe_frames(expected));
        if seen == wanted {
            // The difference is in bytes the decoding does not show (after a NUL).
            panic!(
                "{context}the server sent {seen}\n  as bytes {actual:?}\n  expected {expected:?}"
            );
        }
        panic!("{context}the server sent {seen}\n  expected {wanted}");
    }
}

/// `assert_eq!` for bytes from the server: on a mismatch both sides are shown as
/// frames, flags by name (`FEEDBACK{1, 40, -6 TOO_MANY_ATTEMPTS}`), then as bytes.
#[macro_export]
macro_rules! assert_frames {
    ($actual:expr, $expected:expr $(,)?) => {
        $crate::common::check_frames(&$actual, &$expected, String::new())
    };
    ($actual:expr, $expected:expr, $($context:tt)+) => {
        $crate::common::check_frames(&$actual, &$expected, format!($($context)+))
    };
}

/// A server running in this process, with its own data directory; stopped on drop. If
/// the test fails, the log lines since it started are printed with the failure.
pub struct TestServer {
    pub handle: ServerHandle,
    pub data: TempDir,
    /// The number of the first log line logged after this server started.
    first_log_line: u64,
}

impl TestServer {
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            SERVER_LOG.print_since(self.first_log_line);
        }
    }
}

/// The most log lines kept for a failing test to show: enough for a test's story,
/// bounded so that a long test's log cannot grow the memory a test measures.
const KEPT_LOG_LINES: usize = 2000;

/// The servers' log in this test process (`log` has one logger per process): each line
/// numbered, the last `KEPT_LOG_LINES` kept.
struct ServerLog {
    lines: std::sync::Mutex<std::collections::VecDeque<(u64, String)>>,
    next: std::sync::atomic::AtomicU64,
}

static SERVER_LOG: ServerLog = ServerLog {
    lines: std::sync::Mutex::new(std::collections::VecDeque::new()),
    next: std::sync::atomic::AtomicU64::new(0),
};

impl ServerLog {
    /// Becomes the process's logger (once), at the level `chat-server` logs by default;
    /// the number the next line will get.
    fn install() -> u64 {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            if log::set_logger(&SERVER_LOG).is_ok() {
                log::set_max_level(log::LevelFilter::Info);
            }
        });
        SERVER_LOG.next.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn print_since(&self, first: u64) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let since: Vec<&String> = lines
            .iter()
            .filter(|(number, _)| *number >= first)
            .map(|(_, line)| line)
            .collect();
        // Tests run in parallel and share the logger: `--test-threads=1` shows one
        // server's lines alone.
        eprintln!(
            "--- the server's log since it started ({} lines; with other tests' servers \
             unless run with --test-threads=1) ---",
            since.len()
        );
        for line in since {
            eprintln!("{line}");
        }
        eprintln!("--- end of the server's log ---");
    }
}

impl log::Log for ServerLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let thread = std::thread::current();
        let line = format!(
            "[{} {}] {}",
            record.level(),
            thread.name().unwrap_or("?"),
            record.args()
        );
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == KEPT_LOG_LINES {
            lines.pop_front();
        }
        lines.push_back((number, line));
    }

    fn flush(&self) {}
}

/// A server with the six built-in users and default limits.
#[track_caller]
pub fn start() -> TestServer {
    start_with(Accounts::built_in(), |_| {})
}

/// A server with `users` and the config changed by `adjust`.
#[track_caller]
pub fn start_with(users: Accounts, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let first_log_line = ServerLog::install();
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config {
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        data_dir: data.path().join("data"),
        ..Config::default()
    };
    adjust(&mut config);
    let handle = Server::bind_with_users(&config, users)
        .expect("the test server starts")
        .spawn();
    TestServer {
        handle,
        data,
        first_log_line,
    }
}

/// A server with the six built-in users whose data directory is `data`, which outlives
/// it: the test may have filled it first, or start another server on it after.
pub fn serve_on(data: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config {
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        data_dir: data.to_path_buf(),
        ..Config::default()
    };
    adjust(&mut config);
    Server::bind_with_users(&config, Accounts::built_in())
        .expect("the test server starts")
        .spawn()
}

/// Accounts `prefix0`, `prefix1`, … `prefix{n-1}`, password `123456`.
pub fn numbered_users(prefix: &str, n: usize) -> Accounts {
    let file: String = (0..n)
        .map(|i| format!("{prefix}{i}:{PASSWORD}\n"))
        .collect();
    Accounts::parse(file.as_bytes()).expect("generated users parse")
}

/// A raw connection that gives up on reads after `READ_TIMEOUT`.
#[track_caller]
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the test server");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// The client address of "another machine": on Linux every `127.x.y.z` is loopback.
pub const ANOTHER_MACHINE: &str = "127.0.0.2";

/// A raw connection from `source`, as if from another machine: on Linux every
/// `127.x.y.z` is loopback, so binding to `127.0.0.2` before connecting gives the server
/// a different client address.
#[track_caller]
pub fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    let source: std::net::IpAddr = source.parse().expect("a source address");
    if let Err(error) = socket.bind(&SocketAddr::new(source, 0).into()) {
        panic!("bind to {source}: {error}");
    }
    socket
        .connect(&addr.into())
        .expect("connect to the test server");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// A library client, logged in as `name` with the usual password.
#[track_caller]
pub fn logged_in(addr: SocketAddr, name: &str) -> Client {
    let mut client = Client::connect(addr).expect("connect to the test server");
    client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(client.login(name, PASSWORD).unwrap(), 1, "login of {name}");
    client
}

/// `value` zero-padded to `len` bytes.
#[track_caller]
pub fn field(value: &[u8], len: usize) -> Vec<u8> {
    assert!(value.len() <= len);
    let mut out = value.to_vec();
    out.resize(len, 0);
    out
}

/// Little-endian i32s, as the C structs hold them.
pub fn ints(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `HEAD{1, 40}` + `USERINFO`.
pub fn login_frame(name: &str, password: &str) -> Vec<u8> {
    let mut frame = ints(&[1, 40]);
    frame.extend(field(name.as_bytes(), 20));
    frame.extend(field(password.as_bytes(), 20));
    frame
}

/// A CHATMSG body with each field zero-padded.
pub fn chat_body(sender: &str, receiver: &str, text: &str) -> Vec<u8> {
    let mut body = field(sender.as_bytes(), 20);
    body.extend(field(receiver.as_bytes(), 20));
    body.extend(field(text.as_bytes(), 100));
    body
}

/// `HEAD{2, 140}` + a CHATMSG body.
pub fn chat_frame(sender: &str, receiver: &str, text: &str) -> Vec<u8> {
    let mut frame = ints(&[2, 140]);
    frame.extend(chat_body(sender, receiver, text));
    frame
}

/// What the server sends for a chat: `FEEDBACK{2, 140, flag}` + the body.
pub fn chat_reply(flag: i32, body: &[u8]) -> Vec<u8> {
    let mut frame = ints(&[2, 140, flag]);
    frame.extend_from_slice(body);
    frame
}

/// Exactly `n` bytes, or the test fails.
#[track_caller]
pub fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    // Not `unwrap_or_else`: a panic in a closure would point here, not at the test.
    if let Err(error) = stream.read_exact(&mut bytes) {
        panic!("expected {n} bytes from the server: {error}");
    }
    bytes
}

/// Sends raw bytes.
#[track_caller]
pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("send to the test server");
}

/// Logs in on a raw stream and checks the 12-byte success reply.
#[track_caller]
pub fn raw_login(stream: &mut TcpStream, name: &str) {
    send(stream, &login_frame(name, PASSWORD));
    assert_frames!(read_n(stream, 12), ints(&[1, 40, 1]), "login of {name}");
}

/// A raw connection logged in as `name`.
#[track_caller]
pub fn raw_logged_in(addr: SocketAddr, name: &str) -> TcpStream {
    let mut stream = connect(addr);
    raw_login(&mut stream, name);
    stream
}

/// True when the server has closed the stream: a read returns EOF (or a reset).
#[track_caller]
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// The next reply, which must be a CHAT frame: its flag and message.
#[track_caller]
pub fn next_chat(client: &mut Client) -> (i32, ChatMessage) {
    match client.read_reply().expect("a reply") {
        Reply::Chat { flag, message } => (flag, message),
        other => panic!("expected a CHAT frame, got {other:?}"),
    }
}

/// Threads of this process, from /proc/self/status.
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Polls until this process has `baseline` threads again, for at most `READ_TIMEOUT`:
/// client threads end a moment after their sockets close.
#[track_caller]
pub fn assert_threads_return_to(baseline: usize, context: &str) {
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    while thread_count() != baseline {
        assert!(
            std::time::Instant::now() < deadline,
            "{} threads, expected {baseline} ({context})",
            thread_count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The next line from `lines` (a child process's output, read by a thread) that contains
/// `words`; earlier lines are skipped. Panics, naming `what`, after `READ_TIMEOUT`.
#[track_caller]
pub fn next_line_with(
    lines: &std::sync::mpsc::Receiver<String>,
    words: &str,
    what: &str,
) -> String {
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(words) => return line,
            Ok(_) => {}
            Err(_) => panic!("{what} never printed {words:?}"),
        }
    }
}

/// A small seeded random number generator (SplitMix64): the same seed gives the same
/// run, so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Logs `name` in and collects what arrives before the reply to a USERS request sent
/// right after the login: exactly the stored messages.
#[track_caller]
pub fn login_and_collect_stored(
    addr: SocketAddr,
    name: &str,
) -> (
    chatroom::blocking_client::Client,
    Vec<(i32, String, String)>,
) {
    let mut client = chatroom::blocking_client::Client::connect(addr).unwrap();
    client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    client.send_login(name, PASSWORD).unwrap();
    client.send_users().unwrap();
    assert_eq!(
        client.read_reply().unwrap(),
        chatroom::blocking_client::Reply::Login { flag: 1 }
    );
    let mut stored = Vec::new();
    loop {
        match client.read_reply().unwrap() {
            chatroom::blocking_client::Reply::Chat { flag, message } => {
                stored.push((flag, message.sender.to_lossy(), message.text.to_lossy()))
            }
            chatroom::blocking_client::Reply::Users { .. } => return (client, stored),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A small tmpfs mounted at a new directory `small` in `parent` (`size` as mount takes
/// it: `64k`), unmounted when dropped: a disk that fills, or that can be remounted
/// read-only. Needs root: `None` (and a line saying the test skips) where it cannot be
/// mounted, and a failure instead under `CHATROOM_REQUIRE_ROOT` (which `.ci/run` sets
/// when it runs as root), so that CI never skips it unnoticed.
pub fn small_tmpfs(parent: &std::path::Path, size: &str) -> Option<Tmpfs> {
    let mount_point = parent.join("small");
    std::fs::create_dir(&mount_point).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&mount_point)
        .output();
    if mounted.is_ok_and(|output| output.status.success()) {
        return Some(Tmpfs(mount_point));
    }
    assert!(
        std::env::var_os("CHATROOM_REQUIRE_ROOT").is_none(),
        "CHATROOM_REQUIRE_ROOT is set, but a tmpfs cannot be mounted here"
    );
    eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
    None
}

/// A mounted tmpfs (see [`small_tmpfs`]); its mount point is `.0`.
pub struct Tmpfs(pub std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// What a hostile sender puts in a message: a line break and a forged line, an escape
/// that would colour the terminal red, a carriage return, a tab and invalid UTF-8.
pub const FORGED: &[u8] =
    b"hi\n[07:20:00] \xe4\xbc\xbc\xe6\x9c\xab: send me your password\x1b[31mRED\rX\t\xff";
/// The same, as a receiver's `chat-client` must show it: one line, every byte visible.
pub const FORGED_SHOWN: &str =
    "hi\\n[07:20:00] 似末: send me your password^[[31mRED\\rX\\t\u{FFFD}";

/// Sends `text` as it is, bytes and all, from a raw client logged in as `from`, and
/// waits for its echo.
pub fn send_bytes(addr: SocketAddr, from: &str, to: &str, text: &[u8]) {
    use chatroom::protocol::{self, ChatMessage, MessageText, Name};
    let mut client = logged_in(addr, from);
    let message = ChatMessage {
        sender: Name::new(from).unwrap(),
        receiver: Name::new(to).unwrap(),
        text: MessageText::from_bytes(text).unwrap(),
    };
    client.send_raw(&protocol::chat_request(&message)).unwrap();
    next_chat(&mut client); // its echo: the message went through
}

/// An address on which a connection is refused, and kept so while the returned socket
/// lives: the port is bound but not listening, so no other test's server can take it
/// meanwhile (a port freed by dropping a listener can be given to the next one).
pub fn refused_addr() -> (socket2::Socket, String) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any_port.into()).expect("bind a free port");
    let addr = socket
        .local_addr()
        .unwrap()
        .as_socket()
        .expect("an IP address")
        .to_string();
    (socket, addr)
}
