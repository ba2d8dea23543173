//! `chat-bench`: the load generator. Works against this server and the original alike
//! (its plain runs speak only docs/PROTOCOL.md §1; `relay --receipts` speaks §3 too, with
//! chat-server only), checks every byte it gets back, and ends with one machine-readable
//! `RESULT` line.
//!
//! ```text
//! chat-bench relay --addr A --pairs K --messages M --window W [--receipts [--ack-at N]] [--pid PID] [--prefix u] [--password P]
//! chat-bench conns --addr A --clients N --concurrency C [--pid PID] [--prefix u] [--password P]
//! chat-bench queue --addr A --messages M [--prefix u] [--password P]
//! ```
//! `relay`: K senders each send M messages to their own receiver, with at most W
//! unacknowledged (the echo is the acknowledgement; W = 0: no limit). Every delivery and
//! every echo is checked byte for byte: none lost, duplicated, corrupted or out of
//! order. Reports messages per second and the one-way latency (the send time travels in
//! the message text), and, given the server's PID, the server's CPU time per relayed
//! message over the run.
//!
//! `relay --receipts`: the same with receipts on for every client (docs/PROTOCOL.md §3),
//! as `chat-client` uses them: echoes and deliveries are MESSAGE frames, each receiver
//! acknowledges the highest id it has as `chat-client` does (after a burst, at most
//! every `protocol::ACK_INTERVAL`, and at once when `--ack-at` deliveries are
//! unacknowledged: by default `protocol::ACK_AT_ONCE`, 128), and each sender checks the
//! RECEIVED frames that come back and waits for the one that covers its last message, so
//! the run measures the whole round of a receipt. `--ack-at` (1 to `RECEIPTS_WINDOW`) is there
//! to measure what an ACK costs. chat-server only; a window of at least 1.
//!
//! `conns`: logs N clients in, C at a time, holds them, checks that a few pairs still
//! chat, and (given the server's PID) reports its memory, threads and idle CPU from
//! `/proc`, with the clients held and after they are gone.
//!
//! `queue`: one user sends M messages, one at a time, to a user who stays offline, and
//! reports what a QUEUED echo costs (the server appends and syncs before it answers).
//! chat-server only: the original has no mailbox.
//!
//! Logins happen one at a time in `relay`: the original server hands each new socket to
//! its thread through a racy pointer and cannot take concurrent logins.
#![forbid(unsafe_code)]

use chatroom::protocol;
use chatroom::protocol::{
    CHAT_BODY_LEN, CHAT_FRAME_LEN, ChatMessage, Credentials, FEEDBACK_LEN, Feedback, Flag,
    HEADER_LEN, ID_LEN, Kind, MESSAGE_BODY_LEN, MESSAGE_FRAME_LEN, MessageText, NAME_LEN, Name,
    Password, RECEIPT_BODY_LEN, RECEIPTS_WINDOW, read_feedback,
};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A reply that does not come within this is counted lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read buffer of each benchmark connection: many frames per system call.
const READ_BUFFER_LEN: usize = 64 * 1024;
/// Frames written per system call when the window allows.
const MAX_WRITE_BATCH: usize = 64;
/// With receipts, the most messages a sender lets go unreceived (no RECEIVED covers
/// them yet), whatever its window. Beyond `RECEIPTS_WINDOW` unacknowledged, the server
/// pauses a receiver and keeps the rest in its store (echo 0), and the echo window alone
/// does not stop a sender from outrunning its receiver's ACKs by that many: on two busy
/// cores a receiver thread that waits 5 ms for a core is 256 messages behind. What the
/// server holds unacknowledged for a receiver is at most what its one sender has sent
/// and seen no RECEIVED for, so this keeps the relay within the window, where every
/// echo says 1.
const MAX_UNRECEIVED: usize = RECEIPTS_WINDOW;
/// `conns` gives up after this many failed logins (the original leaves logins
/// unanswered under concurrency; waiting for each would take many minutes).
const MAX_LOGIN_FAILURES: usize = 100;
/// How long `conns` watches the server's CPU while the clients idle.
const IDLE_WINDOW: Duration = Duration::from_secs(2);
/// After the last client thread is gone, how long `conns` waits before it measures the
/// idle CPU again: the teardown of 10,000 sockets and thread stacks finishes in this
/// moment, and it is not idling.
const TEARDOWN_SETTLE: Duration = Duration::from_secs(1);
/// Linux reports CPU time in ticks of 1/100 s (USER_HZ) on every common platform.
const MICROS_PER_TICK: f64 = 10_000.0;

const USAGE: &str = "\
usage: chat-bench relay --addr A --pairs K --messages M --window W [--receipts [--ack-at N]] [--pid PID] [--prefix u] [--password P]
       chat-bench conns --addr A --clients N --concurrency C [--pid PID] [--prefix u] [--password P]
       chat-bench queue --addr A --messages M [--prefix u] [--password P]";

fn main() -> ExitCode {
    let args = match chatroom::config::utf8_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("chat-bench: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("relay") => Options::parse(&args[1..]).and_then(|o| relay(&o)),
        Some("conns") => Options::parse(&args[1..]).and_then(|o| conns(&o)),
        Some("queue") => Options::parse(&args[1..]).and_then(|o| queue(&o)),
        Some("--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("expected `relay` or `conns`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("chat-bench: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Every flag of both subcommands; each takes what it needs.
struct Options {
    addr: String,
    prefix: String,
    password: String,
    pairs: usize,
    messages: usize,
    window: usize,
    clients: usize,
    concurrency: usize,
    pid: Option<u32>,
    /// `relay --receipts`.
    receipts: bool,
    /// `relay --receipts --ack-at N`: unacknowledged deliveries that make a receiver
    /// acknowledge at once (`protocol::ACK_AT_ONCE` if not given).
    ack_at: Option<usize>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            addr: "127.0.0.1:12345".to_string(),
            prefix: "u".to_string(),
            password: "123456".to_string(),
            pairs: 16,
            messages: 10_000,
            window: 64,
            clients: 10_000,
            concurrency: 64,
            pid: None,
            receipts: false,
            ack_at: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == "--receipts" {
                options.receipts = true;
                continue;
            }
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{flag} takes a number, not {value:?}"))
            };
            match flag.as_str() {
                "--addr" => options.addr = value.clone(),
                "--prefix" => options.prefix = value.clone(),
                "--password" => options.password = value.clone(),
                "--pairs" => options.pairs = number()?,
                "--messages" => options.messages = number()?,
                "--window" => options.window = number()?,
                "--clients" => options.clients = number()?,
                "--concurrency" => options.concurrency = number()?.max(1),
                "--pid" => options.pid = Some(number()? as u32),
                "--ack-at" => options.ack_at = Some(number()?),
                _ => return Err(format!("unknown option {flag}\n{USAGE}")),
            }
        }
        Ok(options)
    }

    fn user(&self, index: usize) -> String {
        format!("{}{index:05}", self.prefix)
    }
}

/// Connects and logs in; `Err` says why not.
fn log_in(addr: &str, name: &str, password: &str) -> Result<TcpStream, String> {
    log_in_with(addr, name, password, false)
}

/// Connects and logs in, with receipts turned on in the same write if `receipts`.
fn log_in_with(
    addr: &str,
    name: &str,
    password: &str,
    receipts: bool,
) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let credentials = Credentials {
        name: Name::new(name).map_err(|e| e.to_string())?,
        password: Password::new(password).map_err(|e| e.to_string())?,
    };
    let mut requests = Vec::new();
    if receipts {
        requests = chatroom::protocol::request(Kind::Receipts, &[]);
    }
    requests.extend(chatroom::protocol::login_request(&credentials));
    stream
        .write_all(&requests)
        .map_err(|e| format!("{name}: {e}"))?;
    if receipts {
        let answer =
            read_feedback(&mut stream).map_err(|e| format!("{name}: no RECEIPTS reply: {e}"))?;
        if answer.kind != Kind::Receipts || answer.outcome() != Some(Flag::Ok) {
            return Err(format!(
                "{name}: the server did not turn receipts on (first reply {answer:?})"
            ));
        }
    }
    let feedback =
        read_feedback(&mut stream).map_err(|e| format!("{name}: no login reply: {e}"))?;
    if feedback.outcome() != Some(Flag::Ok) {
        return Err(format!("{name}: login refused with flag {}", feedback.flag));
    }
    Ok(stream)
}

/// The CHAT request for message `seq` of `sender` to `receiver`, stamped `sent_us`.
fn request(sender: &Name, receiver: &Name, seq: usize, sent_us: u64) -> Vec<u8> {
    chatroom::protocol::chat_request(&message(sender, receiver, seq, sent_us))
}

/// Writes the CHAT requests for messages `seqs` in one write (none if it is empty),
/// each stamped as it is made.
fn send_requests(
    writer: &mut TcpStream,
    sender: &Name,
    receiver: &Name,
    seqs: std::ops::Range<usize>,
    now_us: impl Fn() -> u64,
) -> Result<(), String> {
    if seqs.is_empty() {
        return Ok(());
    }
    let mut batch = Vec::with_capacity(seqs.len() * (HEADER_LEN + CHAT_BODY_LEN));
    for seq in seqs {
        batch.extend(request(sender, receiver, seq, now_us()));
    }
    writer
        .write_all(&batch)
        .map_err(|e| format!("{sender}: send: {e}"))
}

fn message(sender: &Name, receiver: &Name, seq: usize, sent_us: u64) -> ChatMessage {
    ChatMessage {
        sender: *sender,
        receiver: *receiver,
        text: MessageText::new(&format!("{seq} {sent_us}")).expect("short text"),
    }
}

/// Checks a received frame against what `sender` must have sent as message `seq`;
/// returns its send time.
fn check_frame(frame: &[u8], sender: &Name, receiver: &Name, seq: usize) -> Result<u64, String> {
    let body: &[u8; CHAT_BODY_LEN] = frame[FEEDBACK_LEN..].try_into().expect("152-byte frame");
    let text = ChatMessage::decode(body).text.to_lossy();
    let (got_seq, sent_us) = text
        .split_once(' ')
        .and_then(|(s, t)| Some((s.parse::<usize>().ok()?, t.parse::<u64>().ok()?)))
        .ok_or_else(|| format!("corrupted frame from {sender}: text {text:?}"))?;
    if got_seq != seq {
        return Err(format!(
            "from {sender} to {receiver}: expected message {seq}, got {got_seq} (lost, duplicated or reordered)"
        ));
    }
    if frame != message(sender, receiver, seq, sent_us).to_frame(Flag::Ok) {
        return Err(format!(
            "message {seq} from {sender}: bytes differ from what was sent"
        ));
    }
    Ok(sent_us)
}

fn relay(options: &Options) -> Result<(), String> {
    let epoch = Instant::now();
    let now_us = move || epoch.elapsed().as_micros() as u64;
    let (pairs, messages, window) = (options.pairs, options.messages, options.window);
    let receipts = options.receipts;
    if receipts && window == 0 {
        return Err("relay --receipts needs a window of at least 1".to_string());
    }
    let ack_at = match options.ack_at {
        Some(_) if !receipts => {
            return Err("--ack-at goes with --receipts: plain clients send no ACK".to_string());
        }
        given => given.unwrap_or(protocol::ACK_AT_ONCE),
    };
    if !(1..=RECEIPTS_WINDOW).contains(&ack_at) {
        return Err(format!(
            "--ack-at {ack_at}: a receiver must acknowledge at 1 to {RECEIPTS_WINDOW} \
             unacknowledged (the server pauses it at a window of {RECEIPTS_WINDOW})"
        ));
    }
    eprintln!("relay: logging in {} users", pairs * 2);
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for pair in 0..pairs {
        let sender = options.user(2 * pair);
        let receiver = options.user(2 * pair + 1);
        receivers.push((
            log_in_with(&options.addr, &receiver, &options.password, receipts)?,
            sender.clone(),
            receiver.clone(),
        ));
        senders.push((
            log_in_with(&options.addr, &sender, &options.password, receipts)?,
            sender,
            receiver,
        ));
    }
    let cpu_before = options.pid.map(|pid| server_stats(pid).cpu_ticks);
    let started = Instant::now();
    let receiving: Vec<_> = receivers
        .into_iter()
        .map(|(stream, sender, receiver)| {
            thread::spawn(move || {
                if receipts {
                    receive_acking(stream, &sender, &receiver, messages, ack_at, now_us)
                } else {
                    receive(stream, &sender, &receiver, messages, now_us)
                }
            })
        })
        .collect();
    let sending: Vec<_> = senders
        .into_iter()
        .map(|(stream, sender, receiver)| {
            thread::spawn(move || {
                if receipts {
                    send_with_receipts(stream, &sender, &receiver, messages, window, now_us)
                } else {
                    send(stream, &sender, &receiver, messages, window, now_us).map(|()| 0)
                }
            })
        })
        .collect();
    let mut errors = Vec::new();
    let mut receipts_seen = 0;
    for handle in sending {
        match handle.join().expect("sender thread") {
            Ok(seen) => receipts_seen += seen,
            Err(error) => errors.push(error),
        }
    }
    let mut latencies = Vec::with_capacity(pairs * messages);
    for handle in receiving {
        match handle.join().expect("receiver thread") {
            Ok(mut got) => latencies.append(&mut got),
            Err(error) => errors.push(error),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = latencies.len();
    // The server's CPU time (user + system, all threads) per relayed message, from
    // /proc/PID/stat over the run: what a message costs the server, whatever the
    // load generator beside it costs.
    let cpu_us_per_msg = match (options.pid, cpu_before) {
        (Some(pid), Some(before)) if delivered > 0 => {
            let ticks = server_stats(pid).cpu_ticks.saturating_sub(before);
            format!("{:.2}", ticks as f64 * MICROS_PER_TICK / delivered as f64)
        }
        _ => "-".to_string(),
    };
    latencies.sort_unstable();
    let rate = delivered as f64 / elapsed;
    let [p50, p99, p999] = [0.50, 0.99, 0.999].map(|q| percentile(&latencies, q));
    for error in errors.iter().take(5) {
        eprintln!("error: {error}");
    }
    // Only with receipts, so that the plain line stays as it always was.
    let receipts_field = if receipts {
        format!(" receipts=on received_frames={receipts_seen}")
    } else {
        String::new()
    };
    println!(
        "RESULT relay pairs={pairs} window={window} messages={} delivered={delivered} \
         seconds={elapsed:.3} msgs_per_sec={rate:.0} p50_us={p50} p99_us={p99} p999_us={p999} \
         server_cpu_us_per_msg={cpu_us_per_msg} errors={}{receipts_field}",
        pairs * messages,
        errors.len()
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} connections saw errors", errors.len()))
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A sender: keeps at most `window` messages unacknowledged (0: no limit) and checks
/// every echo.
fn send(
    stream: TcpStream,
    sender: &str,
    receiver: &str,
    messages: usize,
    window: usize,
    now_us: impl Fn() -> u64 + Send + Copy + 'static,
) -> Result<(), String> {
    let sender_name = Name::new(sender).expect("short name");
    let receiver_name = Name::new(receiver).expect("short name");
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_LEN, stream);
    let acked = Arc::new(AtomicUsize::new(0));
    if window == 0 {
        // No window: a separate thread writes everything while this one reads echoes.
        let writing = thread::spawn(move || -> Result<(), String> {
            let mut seq = 0;
            while seq < messages {
                let until = messages.min(seq + MAX_WRITE_BATCH);
                send_requests(
                    &mut writer,
                    &sender_name,
                    &receiver_name,
                    seq..until,
                    now_us,
                )?;
                seq = until;
            }
            Ok(())
        });
        let checked = read_echoes(&mut reader, &sender_name, &receiver_name, 0, messages);
        writing.join().expect("writer thread")?;
        return checked;
    }
    let mut sent = 0;
    while acked.load(Ordering::Relaxed) < messages {
        let done = acked.load(Ordering::Relaxed);
        let until = messages.min(done + window);
        send_requests(
            &mut writer,
            &sender_name,
            &receiver_name,
            sent..until,
            now_us,
        )?;
        sent = sent.max(until);
        // Read at least one echo, and every other whole one already buffered.
        let mut count = 1;
        loop {
            read_echoes(
                &mut reader,
                &sender_name,
                &receiver_name,
                done + count - 1,
                done + count,
            )?;
            if reader.buffer().len() < CHAT_FRAME_LEN {
                break;
            }
            count += 1;
        }
        acked.store(done + count, Ordering::Relaxed);
    }
    Ok(())
}

/// Reads and checks the echoes of messages `from..to`.
fn read_echoes(
    reader: &mut BufReader<TcpStream>,
    sender: &Name,
    receiver: &Name,
    from: usize,
    to: usize,
) -> Result<(), String> {
    let mut frame = [0; CHAT_FRAME_LEN];
    for seq in from..to {
        reader
            .read_exact(&mut frame)
            .map_err(|e| format!("{sender}: echo of message {seq} missing: {e}"))?;
        check_frame(&frame, sender, receiver, seq).map_err(|e| format!("echo: {e}"))?;
    }
    Ok(())
}

/// A receiver: reads and checks `messages` frames; returns their one-way latencies.
fn receive(
    stream: TcpStream,
    sender: &str,
    receiver: &str,
    messages: usize,
    now_us: impl Fn() -> u64,
) -> Result<Vec<u64>, String> {
    let sender = Name::new(sender).expect("short name");
    let receiver = Name::new(receiver).expect("short name");
    let mut reader = BufReader::with_capacity(READ_BUFFER_LEN, stream);
    let mut latencies = Vec::with_capacity(messages);
    let mut frame = [0; CHAT_FRAME_LEN];
    for seq in 0..messages {
        reader.read_exact(&mut frame).map_err(|e| {
            format!("{receiver}: got {seq} of {messages} messages, then nothing ({e})")
        })?;
        let sent = check_frame(&frame, &sender, &receiver, seq)?;
        latencies.push(now_us().saturating_sub(sent));
    }
    Ok(latencies)
}

/// One reply of a receipts connection, read whole: its feedback, and its body into
/// `body` (a MESSAGE body fills it; a RECEIVED body its first `RECEIPT_BODY_LEN` bytes).
/// No allocation: a relay reads two of these per message.
fn read_receipts_frame(
    reader: &mut BufReader<TcpStream>,
    who: &Name,
    body: &mut [u8; MESSAGE_BODY_LEN],
) -> Result<Feedback, String> {
    let feedback = read_feedback(reader).map_err(|e| format!("{who}: no reply: {e}"))?;
    let len = match feedback.kind {
        // Every message of the benchmark reaches its receiver: echoes say 1, too.
        Kind::Message if feedback.outcome() == Some(Flag::Ok) => MESSAGE_BODY_LEN,
        Kind::Received if feedback.outcome() == Some(Flag::Ok) => RECEIPT_BODY_LEN,
        _ => return Err(format!("{who}: unexpected reply {feedback:?}")),
    };
    if usize::try_from(feedback.length) != Ok(len) {
        return Err(format!("{who}: reply of the wrong length: {feedback:?}"));
    }
    reader
        .read_exact(&mut body[..len])
        .map_err(|e| format!("{who}: reply cut short: {e}"))?;
    Ok(feedback)
}

/// The id at the front of a MESSAGE, RECEIVED or READ body.
fn body_id(body: &[u8]) -> u64 {
    u64::from_le_bytes(body[..ID_LEN].try_into().expect("an id is 8 bytes"))
}

/// Checks a MESSAGE body (the id, then the CHAT body) as [`check_frame`] checks a CHAT
/// frame, and that its id is above `previous`: ids of one receiver's deliveries, and
/// so of one sender's echoes to them, only grow. Returns the id and the send time.
fn check_message(
    body: &[u8],
    previous: u64,
    sender: &Name,
    receiver: &Name,
    seq: usize,
) -> Result<(u64, u64), String> {
    let id = body_id(body);
    if id <= previous {
        return Err(format!(
            "message {seq} from {sender} to {receiver}: id {id} after {previous}"
        ));
    }
    // The CHAT frame this MESSAGE stands for, checked as the plain relay checks one
    // (one decoding and one comparison per message, as there).
    let mut frame = [0; CHAT_FRAME_LEN];
    frame[..FEEDBACK_LEN]
        .copy_from_slice(&Feedback::new(Kind::Chat, CHAT_BODY_LEN, Flag::Ok).to_bytes());
    frame[FEEDBACK_LEN..].copy_from_slice(&body[ID_LEN..]);
    Ok((id, check_frame(&frame, sender, receiver, seq)?))
}

/// A sender on a receipts connection: as [`send`] with a window, the echoes being
/// MESSAGE frames, and RECEIVED frames from its receiver among them, each checked (its
/// name, an id that grows), and at most `MAX_UNRECEIVED` messages sent that no
/// RECEIVED covers yet. A RECEIVED may come before the echo of the message it covers:
/// the receiver's ACK races the echo to us. Waits for the RECEIVED that covers the last
/// message, which must name that message's id; returns how many came.
fn send_with_receipts(
    stream: TcpStream,
    sender: &str,
    receiver: &str,
    messages: usize,
    window: usize,
    now_us: impl Fn() -> u64,
) -> Result<usize, String> {
    let sender_name = Name::new(sender).expect("short name");
    let receiver_name = Name::new(receiver).expect("short name");
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_LEN, stream);
    let (mut sent, mut echoed, mut last_echo_id) = (0, 0, 0);
    let (mut received, mut receipts) = (0, 0);
    // The ids echoed that no RECEIVED covers yet, oldest first, and how many are covered.
    let mut uncovered = std::collections::VecDeque::with_capacity(MAX_UNRECEIVED);
    let mut covered = 0;
    let mut body = [0; MESSAGE_BODY_LEN];
    while covered < messages {
        let until = messages.min(echoed + window).min(covered + MAX_UNRECEIVED);
        send_requests(
            &mut writer,
            &sender_name,
            &receiver_name,
            sent..until,
            &now_us,
        )?;
        sent = sent.max(until);
        // Read at least one frame, and every other whole one already buffered.
        loop {
            let feedback = read_receipts_frame(&mut reader, &sender_name, &mut body)?;
            if feedback.kind == Kind::Message {
                if echoed == messages {
                    return Err(format!("{sender}: an echo beyond the last message"));
                }
                (last_echo_id, _) =
                    check_message(&body, last_echo_id, &sender_name, &receiver_name, echoed)
                        .map_err(|e| format!("echo: {e}"))?;
                echoed += 1;
                if last_echo_id <= received {
                    covered += 1; // its RECEIVED came first
                } else {
                    uncovered.push_back(last_echo_id);
                }
            } else {
                let (id, name) = (body_id(&body), &body[ID_LEN..ID_LEN + NAME_LEN]);
                if name != receiver_name.field() || id <= received {
                    return Err(format!(
                        "{sender}: RECEIVED id {id} from {:?} (expected {receiver}, \
                         above {received})",
                        Name::from_field(name.try_into().expect("20 bytes")).to_lossy()
                    ));
                }
                received = id;
                receipts += 1;
                while uncovered.front().is_some_and(|&echo| echo <= received) {
                    uncovered.pop_front();
                    covered += 1;
                }
            }
            if reader.buffer().len() < FEEDBACK_LEN + RECEIPT_BODY_LEN {
                break;
            }
        }
        if echoed == messages && received > last_echo_id {
            return Err(format!(
                "{sender}: RECEIVED id {received} is above the last message's, {last_echo_id}"
            ));
        }
    }
    Ok(receipts)
}

/// A receiver on a receipts connection: as [`receive`], the messages being MESSAGE
/// frames, acknowledged as `chat-client` acknowledges them (a burst ends when no whole
/// frame is left in the buffer), and at once when `ack_at` are unacknowledged.
fn receive_acking(
    stream: TcpStream,
    sender: &str,
    receiver: &str,
    messages: usize,
    ack_at: usize,
    now_us: impl Fn() -> u64,
) -> Result<Vec<u64>, String> {
    let sender = Name::new(sender).expect("short name");
    let receiver = Name::new(receiver).expect("short name");
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_LEN, stream);
    let mut latencies = Vec::with_capacity(messages);
    let mut last_id = 0;
    // As chat-client acknowledges: after a burst, at most every ACK_INTERVAL, or at once
    // when `ack_at` (ACK_AT_ONCE unless told) are unacknowledged; and the last message,
    // at the end.
    let (mut unacked, mut last_ack) = (0, Instant::now());
    let mut body = [0; MESSAGE_BODY_LEN];
    for seq in 0..messages {
        let feedback = read_receipts_frame(&mut reader, &receiver, &mut body).map_err(|e| {
            format!("{receiver}: got {seq} of {messages} messages, then nothing ({e})")
        })?;
        if feedback.kind != Kind::Message {
            return Err(format!("{receiver}: unexpected reply {feedback:?}"));
        }
        let sent;
        (last_id, sent) = check_message(&body, last_id, &sender, &receiver, seq)?;
        latencies.push(now_us().saturating_sub(sent));
        unacked += 1;
        let burst_over = reader.buffer().len() < MESSAGE_FRAME_LEN;
        let due = unacked >= ack_at
            || (burst_over && last_ack.elapsed() >= protocol::ACK_INTERVAL)
            || seq + 1 == messages;
        if due {
            writer
                .write_all(&chatroom::protocol::request(
                    Kind::Ack,
                    &last_id.to_le_bytes(),
                ))
                .map_err(|e| format!("{receiver}: ACK: {e}"))?;
            (unacked, last_ack) = (0, Instant::now());
        }
    }
    Ok(latencies)
}

fn queue(options: &Options) -> Result<(), String> {
    // The last user of the standard set: nobody logs in as it, so it stays offline.
    let (sender, receiver) = (options.user(0), options.user(19_999));
    let mut stream = log_in(&options.addr, &sender, &options.password)?;
    let (sender, receiver) = (Name::new(&sender).unwrap(), Name::new(&receiver).unwrap());
    let mut frame = [0; CHAT_FRAME_LEN];
    let mut times = Vec::with_capacity(options.messages);
    let started = Instant::now();
    for seq in 0..options.messages {
        let sent = Instant::now();
        stream
            .write_all(&request(&sender, &receiver, seq, 0))
            .map_err(|e| format!("send: {e}"))?;
        stream
            .read_exact(&mut frame)
            .map_err(|e| format!("echo of message {seq} missing: {e}"))?;
        let echo = Feedback::decode(frame.first_chunk().expect("a frame starts with a feedback"));
        let flag = echo.flag;
        if echo.outcome() != Some(Flag::Queued) {
            return Err(format!(
                "message {seq}: echo flag {flag}, expected 0 (QUEUED)"
            ));
        }
        times.push(sent.elapsed().as_micros() as u64);
    }
    let seconds = started.elapsed().as_secs_f64();
    times.sort_unstable();
    println!(
        "RESULT queue messages={} seconds={seconds:.3} per_message_us={:.0} p50_us={} p99_us={}",
        options.messages,
        seconds * 1e6 / options.messages as f64,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    Ok(())
}

fn conns(options: &Options) -> Result<(), String> {
    let (clients, concurrency) = (options.clients, options.concurrency);
    let before = options.pid.map(server_stats);
    eprintln!("conns: logging in {clients} clients, {concurrency} at a time");
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(Mutex::new(HashMap::new()));
    let login_times = Arc::new(Mutex::new(Vec::with_capacity(clients)));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, failures, held, login_times) = (
                Arc::clone(&next),
                Arc::clone(&failures),
                Arc::clone(&held),
                Arc::clone(&login_times),
            );
            let (addr, password, prefix) = (
                options.addr.clone(),
                options.password.clone(),
                options.prefix.clone(),
            );
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= clients
                            || failures.load(Ordering::Relaxed) >= MAX_LOGIN_FAILURES
                        {
                            break;
                        }
                        let name = format!("{prefix}{index:05}");
                        let begun = Instant::now();
                        match log_in(&addr, &name, &password) {
                            Ok(stream) => {
                                login_times
                                    .lock()
                                    .unwrap()
                                    .push(begun.elapsed().as_micros() as u64);
                                held.lock().unwrap().insert(index, stream);
                            }
                            Err(error) => {
                                if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                                    eprintln!("login failed: {error}");
                                }
                            }
                        }
                    }
                })
                .expect("start a login worker")
        })
        .collect();
    for worker in workers {
        worker.join().expect("login worker");
    }
    let login_seconds = started.elapsed().as_secs_f64();
    let mut held = std::mem::take(&mut *held.lock().unwrap());
    let mut login_times = std::mem::take(&mut *login_times.lock().unwrap());
    login_times.sort_unstable();
    let logged_in = held.len();

    // A few pairs still chat while everyone is connected.
    let mut chat_errors = 0;
    for pair in 0..4.min(logged_in / 2) {
        let (a, b) = (pair * 2, pair * 2 + 1);
        if let Err(error) = chat_once(&mut held, a, b, options) {
            eprintln!("chat check failed: {error}");
            chat_errors += 1;
        }
    }
    let holding = options.pid.map(idle_stats);
    drop(held);
    let after = options.pid.map(|pid| {
        // Threads end as their sockets close; wait for the count to settle.
        let settle = Instant::now();
        let baseline = before.as_ref().map_or(0, |b| b.threads);
        while server_stats(pid).threads > baseline && settle.elapsed() < REPLY_TIMEOUT {
            thread::sleep(Duration::from_millis(20));
        }
        thread::sleep(TEARDOWN_SETTLE);
        idle_stats(pid)
    });
    let mut line = format!(
        "RESULT conns clients={clients} concurrency={concurrency} logged_in={logged_in} \
         login_seconds={login_seconds:.2} login_p50_us={} login_p99_us={} chat_errors={chat_errors}",
        percentile(&login_times, 0.5),
        percentile(&login_times, 0.99)
    );
    if let (Some(before), Some(holding), Some(after)) = (before, holding, after) {
        line.push_str(&format!(
            " threads_before={} rss_mib={:.1} threads={} idle_cpu_pct={:.1} threads_after={} rss_after_mib={:.1} idle_cpu_after_pct={:.1}",
            before.threads,
            holding.0.rss_kib as f64 / 1024.0,
            holding.0.threads,
            holding.1,
            after.0.threads,
            after.0.rss_kib as f64 / 1024.0,
            after.1
        ));
    }
    println!("{line}");
    if logged_in < clients || chat_errors > 0 {
        return Err(format!(
            "{logged_in} of {clients} logged in, {chat_errors} chat checks failed"
        ));
    }
    Ok(())
}

/// Client `a` sends one message to client `b`; both must get it back intact.
fn chat_once(
    held: &mut HashMap<usize, TcpStream>,
    a: usize,
    b: usize,
    options: &Options,
) -> Result<(), String> {
    let (sender, receiver) = (
        Name::new(&options.user(a)).unwrap(),
        Name::new(&options.user(b)).unwrap(),
    );
    let mut frame = [0; CHAT_FRAME_LEN];
    held.get_mut(&a)
        .ok_or("sender not logged in")?
        .write_all(&request(&sender, &receiver, 0, 0))
        .map_err(|e| e.to_string())?;
    held.get_mut(&b)
        .ok_or("receiver not logged in")?
        .read_exact(&mut frame)
        .map_err(|e| format!("{receiver}: {e}"))?;
    check_frame(&frame, &sender, &receiver, 0)?;
    held.get_mut(&a)
        .expect("checked above")
        .read_exact(&mut frame)
        .map_err(|e| format!("{sender}: echo: {e}"))?;
    check_frame(&frame, &sender, &receiver, 0).map(drop)
}

/// A server process's memory and threads.
struct ServerStats {
    rss_kib: u64,
    threads: u64,
    cpu_ticks: u64,
}

fn server_stats(pid: u32) -> ServerStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let cpu_ticks = stat
        .rfind(')')
        .map(|end| {
            let fields: Vec<&str> = stat[end + 2..].split_whitespace().collect();
            let parse = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            parse(11) + parse(12)
        })
        .unwrap_or(0);
    ServerStats {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        cpu_ticks,
    }
}

/// The server's stats, and its CPU use (percent of one core) over an idle window.
fn idle_stats(pid: u32) -> (ServerStats, f64) {
    let first = server_stats(pid);
    thread::sleep(IDLE_WINDOW);
    let last = server_stats(pid);
    let ticks = last.cpu_ticks.saturating_sub(first.cpu_ticks) as f64;
    // Linux reports CPU time in ticks of 1/100 s (USER_HZ) on every common platform.
    let percent = ticks / IDLE_WINDOW.as_secs_f64();
    (last, percent)
}
