//! The first step: the article's chat server in Rust, in its plainest form, in one file.
//!
//! `cargo run --example minimal -- 23456` starts it on port 23456 (0 takes a free port);
//! any original client, or `chat-client --addr 127.0.0.1:23456 1001 123456`, logs in as
//! one of the six built-in users and chats. It follows the C++ server of the article
//! 《你还不了解QQ聊天是如何实现的吗?手把手教你实现网络聊天室》 step for step: a listener
//! that accepts in a loop, one thread per client (`pthread_create` there), a loop in
//! that thread that reads the 8-byte header and then the body its length announces, a
//! login checked against the user table, and an online map (`onlineMap`) from name to
//! socket, behind a lock, to find a message's receiver. For valid exchanges it puts the
//! same bytes on the wire as the original.
//!
//! It fixes only the original's faults that cost a line or two: a body is read whole
//! (`read_exact`; the original's `read` may return part of it, or nothing when fewer
//! than two users are online); a client that leaves ends its thread and leaves the map
//! (the original's thread spins at 100% CPU, its name stays); `length` is bounded; the
//! map has a lock; the sender field is the session's name (no impersonation); the
//! message is delivered before the echo, whose flag says whether it was (1) or not
//! (-1); a frame goes out in one `write_all`.
//!
//! Where it still differs from the full server in what a client of the article's
//! protocol sees, and which file of the full server does it properly (the list after
//! this one says what it leaves out altogether):
//!
//! - a wrong length, an unknown type, or chat before login gets no reply at all (the
//!   full server answers -3, -4, -2): `session.rs`, `request/`
//! - a message to a user who is offline is refused, -1 (the full server stores it, 0,
//!   and delivers it at the next login): `routing.rs`, `mailbox.rs`
//! - bytes after a NUL in the receiver and text fields are relayed as the client sent
//!   them, so one client's stray memory reaches another (the full server zeroes them):
//!   `protocol.rs`
//! - a second login on one connection under another name leaves the first name in the
//!   map, on this socket; a login of a name already online elsewhere takes the name
//!   over but leaves the older connection open (the full server closes it): `online.rs`
//! - the map's lock is held across the login reply, so that no message overtakes it;
//!   but a client whose socket is full (it stopped reading, and logs in again on the
//!   same connection) blocks that write, and with it every login and every message,
//!   for as long as it likes (the full server holds only that socket's own write lock:
//!   `request/login.rs`, `announce`)
//! - there is no timeout: a receiver that does not read blocks its senders' threads
//!   forever, and half a frame holds a thread forever (`online.rs`, `frame_reader.rs`)
//! - frames from two threads to one socket can interleave once the socket is full:
//!   `write_all` is one system call only while the buffer has room (`online.rs`)
//! - no client limit and no eviction of connections that never log in (`slots.rs`); no
//!   limit on failed logins (`request/login.rs`, `login_throttle.rs`)
//! - a system call per frame read and per frame written (`frame_reader.rs`, `outbox.rs`)
//! - no USERS request or room, no users file, no flags but the port, no clean exit on
//!   Ctrl-C (`request/users.rs`, `request/chat.rs`, `users.rs`, `config.rs`, `server.rs`)
//! - when no descriptor is free, `accept` fails and the connection waits in the
//!   kernel's queue: it rests `ACCEPT_BACKOFF` and tries again, so a newcomer waits
//!   for a client to leave (the full server closes the connection that has gone longest
//!   without logging in to make room, and fits its client limit to the descriptor
//!   limit at startup: `server.rs`, `slots.rs`, `descriptors.rs`)
//!
//! What it leaves out altogether, beyond the protocol of the article: the receipts
//! extension of docs/PROTOCOL.md §3 (message ids, ACK, READ, receipts: it reads the
//! request and ignores it, so a client goes on in the plain protocol; `receipts.rs`,
//! `message_id.rs`); the data directory and everything stored in it; the log (it prints
//! one line, where it listens; the full server logs logins, closes and faults, each
//! line a client can cause rate-limited: `log_limit.rs`). Neither list is every
//! difference in the code: they are the ones a client or an operator can see.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const LOGIN: i32 = 1; // businessType of a login
const CHAT: i32 = 2; // businessType of a chat message
const HEAD_LEN: usize = 8; // HEAD_T: i32 businessType, i32 businessLength
const USERINFO_LEN: usize = 40; // USERINFO_T: user_name[20], user_pwd[20]
const CHATMSG_LEN: usize = 140; // CHATMSG_T: sengName[20], receiveName[20], message[100]
const NAME_LEN: usize = 20;
const MAX_BODY_LEN: usize = 4096; // a longer `length` is not a frame we can trust
const USER_INFO: [&str; 6] = ["1001", "1002", "似末", "1003", "玛卡巴卡", "花开富贵"];
const PASSWORD: &str = "123456";
const EXIT_USAGE: u8 = 2; // a bad argument: the exit status chat-server gives it too
/// How long the listener rests after `accept` fails for want of a descriptor or of
/// memory (EMFILE, ENFILE, ENOMEM): the connection stays in the kernel's queue, so a
/// retry at once fails at once, and the loop would spin a core until a client leaves.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Name → the socket to write that user's messages to: the original's `onlineMap`.
type OnlineMap = Arc<Mutex<HashMap<String, Arc<TcpStream>>>>;

fn main() -> ExitCode {
    let port: u16 = match std::env::args().nth(1).map(|arg| arg.parse()) {
        None => 12345,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("usage: cargo run --example minimal -- [PORT]");
            return ExitCode::from(EXIT_USAGE); // so that a script sees the mistake
        }
    };
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on port {port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "listening on {}",
        listener
            .local_addr()
            .expect("a bound socket has an address")
    );
    let online_map = OnlineMap::default();
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let online_map = Arc::clone(&online_map);
                thread::spawn(move || pthread_function(stream, &online_map));
            }
            // A client that reset its connection before we took it: on to the next.
            Err(error) if error.kind() == io::ErrorKind::ConnectionAborted => {}
            // No descriptor free (EMFILE, ENFILE), no memory, or another failure: rest
            // rather than fail again at once; a client that leaves frees a descriptor.
            Err(_) => thread::sleep(ACCEPT_BACKOFF),
        }
    }
    ExitCode::SUCCESS // never reached: `incoming` waits for the next client forever
}

/// One client, from connect to disconnect.
fn pthread_function(mut stream: TcpStream, online_map: &OnlineMap) {
    let mut me: Option<(String, Arc<TcpStream>)> = None;
    // Ends at the first error: the client left (EOF), or sent a frame we cannot trust.
    let _ = serve(&mut stream, online_map, &mut me);
    if let Some((name, mine)) = me {
        let mut map = online_map.lock();
        // Only our own entry: a newer login of the same name stays online.
        if map
            .get(&name)
            .is_some_and(|entry| Arc::ptr_eq(entry, &mine))
        {
            map.remove(&name);
        }
    }
}

fn serve(
    stream: &mut TcpStream,
    online_map: &OnlineMap,
    me: &mut Option<(String, Arc<TcpStream>)>,
) -> io::Result<()> {
    loop {
        let mut head = [0; HEAD_LEN];
        stream.read_exact(&mut head)?; // first the header...
        let business_type = i32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
        let business_length = i32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let len = usize::try_from(business_length)
            .ok()
            .filter(|&len| len <= MAX_BODY_LEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad length"))?;
        let mut body = vec![0; len];
        stream.read_exact(&mut body)?; // ...then the whole body, whoever is online
        match (business_type, len) {
            (LOGIN, USERINFO_LEN) => login(stream, online_map, me, &body)?,
            (CHAT, CHATMSG_LEN) => chat(stream, online_map, me, body)?,
            _ => {} // left out: the full server answers these (session.rs, request/)
        }
    }
}

fn login(
    stream: &mut TcpStream,
    online_map: &OnlineMap,
    me: &mut Option<(String, Arc<TcpStream>)>,
    user: &[u8],
) -> io::Result<()> {
    let (user_name, user_pwd) = (text(&user[..NAME_LEN]), text(&user[NAME_LEN..]));
    let ok = USER_INFO.contains(&user_name.as_str()) && user_pwd == PASSWORD;
    // FEEDBACK_T {businessType, businessLength, flag}; no body follows it.
    let back = feedback(LOGIN, USERINFO_LEN, if ok { 1 } else { -1 });
    if !ok {
        return stream.write_all(&back);
    }
    // Into the map and the reply out under the map's lock: a sender finds the new
    // user only after the reply went out, so no message can overtake it, and once the
    // client has its reply it is online. The price: if this client's socket is full,
    // the write blocks with the lock held, and everyone waits (see the header).
    let writer = Arc::new(stream.try_clone()?);
    let mut map = online_map.lock();
    map.insert(user_name.clone(), Arc::clone(&writer));
    stream.write_all(&back)?;
    drop(map);
    *me = Some((user_name, writer));
    Ok(())
}

fn chat(
    stream: &mut TcpStream,
    online_map: &OnlineMap,
    me: &Option<(String, Arc<TcpStream>)>,
    mut message: Vec<u8>,
) -> io::Result<()> {
    let Some((sender, _)) = me else { return Ok(()) }; // left out: -2 before login
    message[..NAME_LEN].copy_from_slice(&field(sender)); // the sender is who logged in
    let receiver = text(&message[NAME_LEN..2 * NAME_LEN]);
    // The original's loop over onlineMap for `sendFd`; the lock is let go before the
    // write, so a receiver that does not read cannot stop everyone else.
    let send_fd = online_map.lock().get(&receiver).cloned();
    let mut backbuf = feedback(CHAT, CHATMSG_LEN, 1);
    backbuf.extend_from_slice(&message);
    let delivered = send_fd.is_some_and(|send_fd| (&*send_fd).write_all(&backbuf).is_ok());
    if !delivered {
        backbuf[8..12].copy_from_slice(&(-1i32).to_le_bytes());
    }
    stream.write_all(&backbuf) // the echo, after the delivery: its flag tells
}

/// A FEEDBACK_T header.
fn feedback(business_type: i32, business_length: usize, flag: i32) -> Vec<u8> {
    let length = i32::try_from(business_length).expect("bodies are small");
    [business_type, length, flag]
        .iter()
        .flat_map(|n| n.to_le_bytes())
        .collect()
}

/// A text field's value: its bytes up to the first NUL.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// `name` zero-padded into a 20-byte field (account names always fit).
fn field(name: &str) -> [u8; NAME_LEN] {
    let mut field = [0; NAME_LEN];
    field[..name.len()].copy_from_slice(name.as_bytes());
    field
}
