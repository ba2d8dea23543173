//! What every test file shares: a real server on 127.0.0.1 port 0 in this process, raw
//! sockets with read timeouts, and frames built by hand from docs/PROTOCOL.md's offsets (not
//! with the library's encoder, so that a mistake there cannot hide in both places).
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod child;
pub mod exchanges;

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

/// A server running in this process, with its own data directory; stopped on drop.
pub struct TestServer {
    pub handle: ServerHandle,
    pub data: TempDir,
}

impl TestServer {
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }
}

/// A server with the six built-in users and default limits.
pub fn start() -> TestServer {
    start_with(Accounts::built_in(), |_| {})
}

/// A server with `users` and the config changed by `adjust`.
pub fn start_with(users: Accounts, adjust: impl FnOnce(&mut Config)) -> TestServer {
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
    TestServer { handle, data }
}

/// Accounts `prefix0`, `prefix1`, … `prefix{n-1}`, password `123456`.
pub fn numbered_users(prefix: &str, n: usize) -> Accounts {
    let file: String = (0..n)
        .map(|i| format!("{prefix}{i}:{PASSWORD}\n"))
        .collect();
    Accounts::parse(file.as_bytes()).expect("generated users parse")
}

/// A raw connection that gives up on reads after `READ_TIMEOUT`.
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
pub fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    let source: std::net::IpAddr = source.parse().expect("a source address");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .unwrap_or_else(|error| panic!("bind to {source}: {error}"));
    socket
        .connect(&addr.into())
        .expect("connect to the test server");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// A library client, logged in as `name` with the usual password.
pub fn logged_in(addr: SocketAddr, name: &str) -> Client {
    let mut client = Client::connect(addr).expect("connect to the test server");
    client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(client.login(name, PASSWORD).unwrap(), 1, "login of {name}");
    client
}

/// `value` zero-padded to `len` bytes.
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
pub fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    stream
        .read_exact(&mut bytes)
        .unwrap_or_else(|error| panic!("expected {n} bytes: {error}"));
    bytes
}

/// Sends raw bytes.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("send to the test server");
}

/// Logs in on a raw stream and checks the 12-byte success reply.
pub fn raw_login(stream: &mut TcpStream, name: &str) {
    send(stream, &login_frame(name, PASSWORD));
    assert_eq!(read_n(stream, 12), ints(&[1, 40, 1]), "login of {name}");
}

/// A raw connection logged in as `name`.
pub fn raw_logged_in(addr: SocketAddr, name: &str) -> TcpStream {
    let mut stream = connect(addr);
    raw_login(&mut stream, name);
    stream
}

/// True when the server has closed the stream: a read returns EOF (or a reset).
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
