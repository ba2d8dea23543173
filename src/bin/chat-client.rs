//! `chat-client`: the companion terminal client, in the spirit of the original: one
//! thread prints what the server sends, the other sends what the user types.
//!
//! ```text
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD]                  interactive
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD] --send TO TEXT   send one, exit
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD] --who            who is online, exit
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD] --listen         print incoming until the end
//! ```
//! Without PASSWORD the password comes from `CHAT_PASSWORD`, or else it is asked for
//! (without echo on a terminal, up to three tries) once the server has been reached.
//! `--trace` prints every frame sent and received on stderr, decoded and as bytes
//! (`chatroom::trace`), the password masked.
//!
//! Whatever the server sends is shown, in every mode: logging in hands over the
//! messages stored while the user was offline, and the server forgets them once they
//! are written, so a client that ignored them would lose them.
//!
//! It speaks to the original C++ server as the article's Qt client does: it writes its
//! own name into the sender field (`chat-server` overwrites it anyway; the original
//! relays it as written), and it finds its echo by that name, whether the echo comes
//! before the delivery (the original) or after it (`chat-server`). Every answer it
//! waits for has a bound, because the original leaves some requests unanswered: USERS
//! and the room are unknown to it, and it ignores a message while its sender is the only
//! one online. The client then says why in one line (and a script mode exits 1).
//!
//! Receipts (docs/PROTOCOL.md §3) are asked for with the login, in the same write, and
//! never waited for: a first reply `FEEDBACK{4, 0, 1}` turns them on; a LOGIN reply
//! first (the original, `examples/minimal.rs`) or `-4` (an older `chat-server`) means
//! the plain protocol, spoken as before. With receipts on, every message shows the time
//! the server accepted it (from its id), not the time it arrived; what was printed is
//! acknowledged (ACK) in batches, so that the server lets go of it only once it is on
//! the screen; a line typed in the interactive mode tells each sender whose messages
//! were printed before it that the person has seen them (READ), since a line typed is
//! the one sign that someone is at the terminal (nothing else sends READ: not
//! `--listen`, `--send` or `--who`); and what the server says about our own messages
//! shows as one quiet line each time it moves forward. A delivery whose id was printed
//! already in this run (the server delivers at least once) is not printed again.
//!
//! It speaks Chinese when the locale says so (`chatroom::i18n`: `LANG=zh_CN.UTF-8`, say,
//! unless `LC_ALL` or `LC_MESSAGES` says otherwise), and English by default; module
//! `say` holds every sentence in both. `--trace`, protocol names, names, texts and
//! commands are the same in both.
#![forbid(unsafe_code)]

use chatroom::blocking_client::{Reply, parse_reply};
use chatroom::i18n::Lang;
use chatroom::protocol::{
    self, ChatMessage, Credentials, Flag, Kind, MessageText, NAME_LEN, Name, Password, ROOM,
    TEXT_LEN,
};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_ADDR: &str = "127.0.0.1:12345";
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// The conventional status of a program stopped by Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;
/// Passwords asked for at the prompt before the client gives up.
const PASSWORD_TRIES: u32 = 3;
const SECONDS_PER_DAY: i64 = 24 * 60 * 60;
/// How long a USERS request may go unanswered before the client concludes that the
/// server has no USERS (the original server ignores it): `chat-server` answers at once.
const USERS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the client waits for the echo of a message (or for the answer to a login)
/// before it gives up: longer than `chat-server`'s default write timeout, since a
/// receiver that has stopped reading can hold the echo back that long, after which the
/// message is stored and echoed. The original server never echoes a message sent
/// while its sender is the only one online.
const ECHO_TIMEOUT: Duration =
    Duration::from_secs(chatroom::config::DEFAULT_WRITE_TIMEOUT_SECS + 2);
/// How often the interactive printer wakes to look at its deadlines while no frame
/// arrives: the typist may have started a wait since the printer last looked.
const TICK: Duration = Duration::from_millis(200);
/// After /quit or end of input, how long the client waits for the server to hang up
/// once nothing it asked is outstanding: `chat-server` closes at once, the original
/// never does.
const QUIT_LINGER: Duration = Duration::from_secs(1);
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;
/// When ACKs go out (see `chatroom::receipts`): after a burst, at most this often, or
/// at once when this many printed deliveries are unacknowledged.
const ACK_INTERVAL: Duration = protocol::ACK_INTERVAL;
const ACK_AT_ONCE: usize = protocol::ACK_AT_ONCE;
/// Milliseconds in a second.
const MILLIS_PER_SEC: u64 = 1_000;

/// What the user asked for on the command line.
struct Options {
    addr: String,
    name: String,
    password: Option<String>,
    mode: Mode,
    trace: bool,
    /// Whether to ask for receipts (`--no-receipts` says no).
    receipts: bool,
}

enum Mode {
    Interactive,
    Send { to: String, text: String },
    Who,
    Listen,
}

/// What the command line asks for.
enum Parsed {
    Run(Options),
    Help,
    Version,
}

fn parse_options(args: Vec<String>) -> Result<Parsed, String> {
    let mut addr = DEFAULT_ADDR.to_string();
    let mut mode = Mode::Interactive;
    let mut trace = false;
    let mut receipts = true;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--version" | "-V" => return Ok(Parsed::Version),
            "--addr" => {
                addr = args.next().ok_or_else(say::addr_needed)?;
                // A mistake in the address is a usage error (exit 2), found before
                // connecting; a name that does not resolve is found by connecting.
                if addr
                    .rsplit_once(':')
                    .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                {
                    return Err(say::addr_malformed(&addr));
                }
            }
            "--trace" => trace = true,
            "--no-receipts" => receipts = false,
            "--send" => {
                let to = args.next().ok_or_else(say::send_needs)?;
                let text = args.next().ok_or_else(say::send_needs)?;
                mode = Mode::Send { to, text };
            }
            "--who" => mode = Mode::Who,
            "--listen" => mode = Mode::Listen,
            _ if arg.starts_with("--") => return Err(say::unknown_option(&arg)),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let name = positional.next().ok_or_else(say::name_missing)?;
    let password = positional.next();
    if let Some(extra) = positional.next() {
        return Err(say::unexpected_argument(&extra));
    }
    Ok(Parsed::Run(Options {
        addr,
        name,
        password,
        mode,
        trace,
        receipts,
    }))
}

fn main() -> ExitCode {
    // Before anything is said: a usage error is said in the user's language too.
    let _ = LANG.set(Lang::from_env());
    // The library's sentence is English (the server's too); the index it names is lost
    // in Chinese, where the line says what to check.
    let args = chatroom::config::utf8_args(std::env::args_os().skip(1))
        .map_err(|error| say::lang().pick(error.0, say::args_not_utf8()));
    let options = match args.and_then(parse_options) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            println!("{}{}", say::usage(), say::help());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("chat-client {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("{}", say::usage_error(&problem));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(options) {
        Ok(code) => code,
        Err(problem) => {
            eprintln!("chat-client: {problem}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run(options: Options) -> Result<ExitCode, String> {
    let mut stdin = io::stdin().lock();
    // Connect first: a server that is not there should not cost a typed password.
    let (mut outgoing, mut incoming) = connect(&options.addr, options.trace)?;
    let fixed_password = options
        .password
        .clone()
        .or_else(|| std::env::var("CHAT_PASSWORD").ok());
    let mut tries = 0;
    // Asked once, with the first login: the answer holds for the connection, whatever
    // becomes of that login.
    let mut receipts = if options.receipts {
        Receipts::Ask
    } else {
        Receipts::Off
    };
    loop {
        let password = match &fixed_password {
            Some(password) => password.clone(),
            None => read_password(&mut stdin)?,
        };
        tries += 1;
        match log_in(
            &mut outgoing,
            &mut incoming,
            &options.name,
            &password,
            &mut receipts,
        ) {
            Ok(()) => break,
            Err(Refusal::WrongPassword(problem))
                if fixed_password.is_none() && tries < PASSWORD_TRIES =>
            {
                eprintln!("{}", say::try_again(&problem));
            }
            Err(Refusal::WrongPassword(problem) | Refusal::Other(problem)) => return Err(problem),
        }
    }
    let me = options.name.as_str();
    let mut screen = Screen::new(me, Clock::local());
    screen.receipts = receipts == Receipts::On;
    match options.mode {
        Mode::Send { to, text } => send_one(&mut outgoing, &mut incoming, &mut screen, &to, &text),
        Mode::Who => who(&mut outgoing, &mut incoming, &mut screen),
        Mode::Listen => {
            println!("{}", say::logged_in_listening(me));
            loop {
                match incoming.next(screen.ack_deadline()) {
                    Event::Reply(reply) => screen.show(&reply),
                    Event::Quiet => {}
                    Event::Ended(_) => return Err(say::connection_ended(me)),
                }
                acknowledge(&mut outgoing, &incoming, &mut screen);
            }
        }
        Mode::Interactive => {
            println!("{}", say::logged_in_interactive(me, &options.addr));
            screen.adopt_partner = true;
            screen.sends_reads = true;
            interactive(outgoing, incoming, screen, stdin)
        }
    }
}

/// Sends the ACK that is due, if one is: after a burst of frames (nothing whole is
/// left to read), at most every `ACK_INTERVAL`, or at once when many are unacknowledged.
/// A failed write is left to the reading side, which sees the connection end.
fn acknowledge(outgoing: &mut Outgoing, incoming: &Incoming, screen: &mut Screen) {
    if let Some(id) = screen.take_ack(Instant::now(), !incoming.has_whole_reply()) {
        let _ = outgoing.send(&ack_request(id));
    }
}

/// `HEAD{4, 0}`: receipts on, please.
fn receipts_request() -> Vec<u8> {
    protocol::request(Kind::Receipts, &[])
}

/// `HEAD{6, 8}` + `id`: every delivery up to `id` is here.
fn ack_request(id: u64) -> Vec<u8> {
    protocol::request(Kind::Ack, &id.to_le_bytes())
}

/// `HEAD{8, 28}` + `id` + `sender`: the person here has seen `sender`'s messages up to `id`.
fn read_request(id: u64, sender: &Name) -> Vec<u8> {
    let mut body = id.to_le_bytes().to_vec();
    body.extend_from_slice(sender.field());
    protocol::request(Kind::Read, &body)
}

/// Where the connection stands on receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receipts {
    /// To be asked for with the next login.
    Ask,
    /// The server said `FEEDBACK{4, 0, 1}`.
    On,
    /// Not asked for, or the server has none.
    Off,
}

/// Reads a password from the terminal without echo (or a line of piped input).
/// End of input (Ctrl-D) means the user would rather not: an error, not an empty
/// password.
fn read_password(stdin: &mut impl BufRead) -> Result<String, String> {
    // Echo goes off before the prompt appears, so nothing typed after it is shown.
    let echo_off = io::stdin().is_terminal() && set_echo(false);
    eprint!("{}", say::password_prompt());
    let _ = io::stderr().flush();
    let mut line = Vec::new();
    let read = stdin.read_until(b'\n', &mut line);
    if echo_off {
        set_echo(true);
        eprintln!(); // the newline the user typed was not echoed either
    }
    match read {
        Ok(0) => Err(say::no_password()),
        Ok(_) => {
            let line = String::from_utf8(line).map_err(|_| say::password_not_utf8())?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        }
        Err(error) => Err(say::cannot_read_password(error)),
    }
}

/// Turns the terminal's echo on or off with `stty` (the design allows no libc crate for
/// termios). Returns whether it worked. While echo is off, Ctrl-C must turn it back on,
/// or the user's shell is left typing blind.
fn set_echo(on: bool) -> bool {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    if !on {
        HANDLER.call_once(|| {
            let _ = ctrlc::set_handler(|| {
                set_echo(true);
                eprintln!();
                std::process::exit(EXIT_INTERRUPTED);
            });
        });
    }
    Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Connects to `addr`: the sending half, and the receiving half that reads from the
/// same socket.
fn connect(addr: &str, trace: bool) -> Result<(Outgoing, Incoming), String> {
    let stream = TcpStream::connect(addr).map_err(|error| {
        if error.kind() == io::ErrorKind::ConnectionRefused {
            say::connection_refused(addr)
        } else {
            say::cannot_connect(addr, error)
        }
    })?;
    // Requests are whole frames already: Nagle's algorithm would only delay them.
    let _ = stream.set_nodelay(true);
    let reading = stream
        .try_clone()
        .map_err(|error| say::cannot_use_connection(addr, error))?;
    Ok((
        Outgoing { stream, trace },
        Incoming {
            stream: reading,
            buffer: Vec::new(),
            trace,
        },
    ))
}

/// The sending half: one whole request per write, shown first under `--trace`.
struct Outgoing {
    stream: TcpStream,
    trace: bool,
}

impl Outgoing {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_all(&[frame])
    }

    /// Several requests in one write, each traced on its own.
    fn send_all(&mut self, frames: &[&[u8]]) -> io::Result<()> {
        if self.trace {
            // One call per frame, so that a frame's lines never mix with the other
            // thread's.
            for frame in frames {
                eprint!("{}", chatroom::trace::request(frame));
            }
        }
        self.stream.write_all(&frames.concat())
    }
}

/// The receiving half. Its bytes go through a buffer, so that a read that times out
/// in the middle of a frame loses nothing, and `--trace` can show each frame's bytes.
struct Incoming {
    stream: TcpStream,
    buffer: Vec<u8>,
    trace: bool,
}

/// What [`Incoming::next`] found.
enum Event {
    Reply(Reply),
    /// Nothing whole arrived before the deadline.
    Quiet,
    /// The connection is over: closed, reset, or no longer in step (the reason).
    Ended(Option<String>),
}

impl Incoming {
    /// Whether a whole reply is buffered already: while one is, a burst of frames is
    /// still being shown.
    fn has_whole_reply(&self) -> bool {
        matches!(parse_reply(&self.buffer), Ok(Some(_)))
    }

    /// The next whole reply, waiting until `until` at most (forever for `None`).
    fn next(&mut self, until: Option<Instant>) -> Event {
        loop {
            match parse_reply(&self.buffer) {
                Ok(Some((reply, len))) => {
                    if self.trace {
                        eprint!("{}", chatroom::trace::reply(&self.buffer[..len]));
                    }
                    self.buffer.drain(..len);
                    return Event::Reply(reply);
                }
                Ok(None) => {}
                Err(error) => {
                    if self.trace {
                        eprint!("{}", chatroom::trace::reply(&self.buffer));
                    }
                    return Event::Ended(Some(say::not_a_reply(error)));
                }
            }
            let timeout = match until {
                None => None,
                Some(until) => match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Event::Quiet,
                },
            };
            if let Err(error) = self.stream.set_read_timeout(timeout) {
                return Event::Ended(Some(error.to_string()));
            }
            let mut chunk = [0; READ_CHUNK];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Event::Ended(None),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Event::Quiet;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                    return Event::Ended(None);
                }
                Err(error) => return Event::Ended(Some(error.to_string())),
            }
        }
    }
}

/// Why a login did not go through.
enum Refusal {
    /// Worth asking for the password again.
    WrongPassword(String),
    Other(String),
}

/// Logs in, turning every way that can fail into a sentence. With `Receipts::Ask`,
/// RECEIPTS goes out in the same write, and the first reply says whether the server has
/// them (docs/PROTOCOL.md §3): its answer, then the LOGIN reply; or the LOGIN reply
/// alone, from a server that skips type 4 without a word (the original, `minimal`).
fn log_in(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    name: &str,
    password: &str,
    receipts: &mut Receipts,
) -> Result<(), Refusal> {
    let cannot = |error: protocol::TooLong| Refusal::Other(say::cannot_log_in(name, error));
    let credentials = Credentials {
        name: Name::new(name).map_err(cannot)?,
        password: Password::new(password).map_err(cannot)?,
    };
    let login = protocol::login_request(&credentials);
    let asking = *receipts == Receipts::Ask;
    let sent = if asking {
        outgoing.send_all(&[&receipts_request(), &login])
    } else {
        outgoing.send(&login)
    };
    sent.map_err(|error| Refusal::Other(say::cannot_log_in(name, error)))?;
    if asking {
        // Whatever comes first, the question is answered: no server answers it later.
        *receipts = Receipts::Off;
    }
    let deadline = Instant::now() + ECHO_TIMEOUT;
    let flag = loop {
        match incoming.next(Some(deadline)) {
            Event::Reply(Reply::Login { flag }) => break flag,
            // 1: receipts on; -4: an older chat-server without them. The LOGIN reply
            // follows either way.
            Event::Reply(Reply::Other(feedback)) if asking && feedback.kind == Kind::Receipts => {
                if feedback.outcome() == Some(Flag::Ok) {
                    *receipts = Receipts::On;
                }
            }
            event => return Err(Refusal::from(event)),
        }
    };
    login_outcome(name, flag)
}

/// Why the LOGIN reply did not come, in a sentence.
impl From<Event> for Refusal {
    fn from(event: Event) -> Refusal {
        match event {
            Event::Reply(other) => Refusal::Other(say::unexpected_login_reply(other)),
            Event::Quiet => Refusal::Other(say::no_login_answer(ECHO_TIMEOUT.as_secs())),
            Event::Ended(None) => Refusal::Other(say::closed_while_logging_in()),
            Event::Ended(Some(problem)) => Refusal::Other(say::lost_while_logging_in(&problem)),
        }
    }
}

/// What the LOGIN reply's flag means for the user.
fn login_outcome(name: &str, flag: i32) -> Result<(), Refusal> {
    match Flag::from_wire(flag) {
        Some(Flag::Ok) => Ok(()),
        Some(Flag::Rejected) => Err(Refusal::WrongPassword(say::wrong_password(name))),
        Some(other) => Err(Refusal::Other(say::login_refused(other))),
        None => Err(Refusal::Other(say::login_refused_unknown(flag))),
    }
}

/// `--send`: one message, its outcome, and an exit status to match. Everything else
/// that arrives first (stored or live messages) is printed as `--listen` would.
fn send_one(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    screen: &mut Screen,
    to: &str,
    text: &str,
) -> Result<ExitCode, String> {
    warn_if_cut(text);
    let message = screen.message(to, text)?;
    let probe = screen.sending(&message);
    let cannot = |error: io::Error| say::cannot_send(error);
    outgoing
        .send(&protocol::chat_request(&message))
        .map_err(cannot)?;
    if probe {
        outgoing.send(&protocol::users_request()).map_err(cannot)?;
    }
    wait_for_answers(outgoing, incoming, screen)
}

/// `--who`: the online users, after whatever arrived first.
fn who(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    screen: &mut Screen,
) -> Result<ExitCode, String> {
    screen.asking(Purpose::Who);
    outgoing
        .send(&protocol::users_request())
        .map_err(say::cannot_ask_who)?;
    wait_for_answers(outgoing, incoming, screen)
}

/// Shows what arrives until every answer the screen waits for has come or timed out;
/// the exit status says whether they all went well. With receipts, what was printed is
/// acknowledged before the client leaves.
fn wait_for_answers(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    screen: &mut Screen,
) -> Result<ExitCode, String> {
    while screen.waiting() {
        let until = [screen.next_deadline(), screen.ack_deadline()]
            .into_iter()
            .flatten()
            .min();
        match incoming.next(until) {
            Event::Reply(reply) => screen.show(&reply),
            Event::Quiet => screen.expire(Instant::now()),
            Event::Ended(_) => return Err(say::connection_ended(&screen.me)),
        }
        acknowledge(outgoing, incoming, screen);
    }
    if screen.receipts {
        leave(outgoing, incoming, screen);
    }
    Ok(if screen.failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

/// Leaves a receipts connection so that nothing printed comes again and nothing
/// unprinted is lost: the last ACK, then our end of the stream, then whatever the
/// server still sends until it hangs up (at once, on our end of stream), shown but for
/// deliveries: those are not acknowledged, so the server keeps them for the next login,
/// and the client says how many. The server's hanging up says it has read the ACK.
fn leave(outgoing: &mut Outgoing, incoming: &mut Incoming, screen: &mut Screen) {
    if let Some(id) = screen.close_acks() {
        let _ = outgoing.send(&ack_request(id));
    }
    let _ = outgoing.stream.shutdown(Shutdown::Write);
    let until = Instant::now() + QUIT_LINGER;
    while let Event::Reply(reply) = incoming.next(Some(until)) {
        screen.show(&reply);
    }
    screen.say_held_back();
}

/// The interactive loop: a thread prints what arrives, this one sends what is typed.
/// Both write to the server (the printer its ACKs), through one lock, always taken
/// before the screen's, so that requests leave whole and in the order their ids were
/// chosen.
fn interactive(
    outgoing: Outgoing,
    mut incoming: Incoming,
    screen: Screen,
    mut stdin: impl BufRead,
) -> Result<ExitCode, String> {
    let screen = Arc::new(Mutex::new(screen));
    let outgoing = Arc::new(Mutex::new(outgoing));
    let leaving = Arc::new(AtomicBool::new(false));
    let printer = {
        let (screen, outgoing) = (Arc::clone(&screen), Arc::clone(&outgoing));
        let leaving = Arc::clone(&leaving);
        thread::spawn(move || print_until_the_end(&mut incoming, &outgoing, &screen, &leaving))
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // Someone typed: what is on the screen has been seen.
        if send_reads(&outgoing, &screen).is_err() {
            break;
        }
        let Ok(line) = std::str::from_utf8(&line) else {
            // A GBK terminal, say: the server's names and texts are UTF-8.
            println!("{}", say::line_not_utf8());
            continue;
        };
        let line = line.trim_end_matches(['\r', '\n']);
        let input = {
            let mut screen = lock(&screen);
            let screen = &mut *screen;
            parse_line(line, &mut screen.partner, screen.last_sender.as_deref())
        };
        // What the printer must wait for is noted before the request goes out, so that
        // no answer can arrive first; the screen's lock is not held across the write.
        let frames = match input {
            Input::Quit => break,
            Input::Nothing => continue,
            Input::Say(text) => {
                println!("{text}");
                continue;
            }
            Input::Who => {
                let mut screen = lock(&screen);
                if screen.users_unanswered {
                    println!("{}", say::users_unanswered_before());
                    continue;
                }
                screen.asking(Purpose::Who);
                vec![protocol::users_request()]
            }
            Input::Chat { to, text } => {
                warn_if_cut(&text);
                let mut screen = lock(&screen);
                match screen.message(&to, &text) {
                    Err(problem) => {
                        println!("{problem}");
                        continue;
                    }
                    Ok(message) => {
                        let mut frames = vec![protocol::chat_request(&message)];
                        if screen.sending(&message) {
                            frames.push(protocol::users_request());
                        }
                        frames
                    }
                }
            }
        };
        let mut link = lock(&outgoing);
        if frames.iter().any(|frame| link.send(frame).is_err()) {
            break;
        }
    }
    // Stop sending but keep reading: the server answers what is in flight, sees our
    // EOF and hangs up, and the printer shows every last outcome before we exit. The
    // last ACK goes first; deliveries after it are left to the server for next time.
    leaving.store(true, Ordering::Release);
    {
        let mut outgoing = lock(&outgoing);
        let last_ack = lock(&screen).close_acks();
        if let Some(id) = last_ack {
            let _ = outgoing.send(&ack_request(id));
        }
        let _ = outgoing.stream.shutdown(Shutdown::Write);
    }
    let _ = printer.join();
    lock(&screen).say_held_back();
    Ok(ExitCode::SUCCESS)
}

/// Sends READ to every sender whose messages were printed since the last READ to them.
fn send_reads(outgoing: &Mutex<Outgoing>, screen: &Mutex<Screen>) -> io::Result<()> {
    let mut outgoing = lock(outgoing);
    let reads = lock(screen).take_reads();
    reads
        .iter()
        .try_for_each(|(sender, id)| outgoing.send(&read_request(*id, sender)))
}

/// The printer thread: shows what arrives and what timed out until the connection
/// ends, or, once the user is leaving, until nothing is outstanding and the server has
/// had `QUIT_LINGER` to hang up. A connection the server ends while the user is still
/// typing ends the process here, since the typist is blocked reading the terminal.
fn print_until_the_end(
    incoming: &mut Incoming,
    outgoing: &Mutex<Outgoing>,
    screen: &Mutex<Screen>,
    leaving: &AtomicBool,
) {
    let mut linger_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let until = {
            let screen = lock(screen);
            if leaving.load(Ordering::Acquire) && !screen.waiting() {
                let until = *linger_until.get_or_insert(now + QUIT_LINGER);
                if now >= until {
                    return;
                }
            }
            [
                screen.next_deadline(),
                screen.ack_deadline(),
                linger_until,
                Some(now + TICK),
            ]
            .into_iter()
            .flatten()
            .min()
        };
        match incoming.next(until) {
            Event::Reply(reply) => lock(screen).show(&reply),
            Event::Quiet => lock(screen).expire(Instant::now()),
            Event::Ended(_) => break,
        }
        if lock(screen).ack_pending() {
            let mut outgoing = lock(outgoing);
            acknowledge(&mut outgoing, incoming, &mut lock(screen));
        }
    }
    if !leaving.load(Ordering::Acquire) {
        println!("{}", say::connection_ended(&lock(screen).me));
        std::process::exit(i32::from(EXIT_FAILURE));
    }
}

/// A lock (the screen's, the connection's). Nothing panics while holding one; if
/// something did, what it guards is still fit to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one typed line means.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    Quit,
    Nothing,
    Who,
    /// Something to tell the user without asking the server.
    Say(String),
    Chat {
        to: String,
        text: String,
    },
}

fn parse_line(line: &str, partner: &mut Option<String>, last_sender: Option<&str>) -> Input {
    if line.trim().is_empty() {
        return Input::Nothing;
    }
    if let Some(command) = line.strip_prefix('/') {
        let (command, text) = command.split_once(' ').unwrap_or((command, ""));
        return match command {
            "quit" | "exit" => Input::Quit,
            "who" => Input::Who,
            "help" => Input::Say(say::help().to_string()),
            "r" | "reply" => match last_sender {
                None => Input::Say(say::nobody_wrote_yet()),
                Some(to) => address(to, text, partner),
            },
            other => Input::Say(say::unknown_command(other)),
        };
    }
    if let Some(rest) = line.strip_prefix('@') {
        let (to, text) = match rest.strip_prefix('"') {
            // @"alice smith" text: a name with spaces.
            Some(quoted) => match quoted.split_once('"') {
                Some((to, text)) => (to, text.strip_prefix(' ').unwrap_or(text)),
                None => return Input::Say(say::usage_quoted_name()),
            },
            None => rest.split_once(' ').unwrap_or((rest, "")),
        };
        if to.is_empty() {
            return Input::Say(say::usage_at_name());
        }
        return address(to, text, partner);
    }
    if let Some(text) = line.strip_prefix('*') {
        let text = text.strip_prefix(' ').unwrap_or(text);
        if text.is_empty() {
            return Input::Say(say::usage_room());
        }
        return Input::Chat {
            to: ROOM.to_string(),
            text: text.to_string(),
        };
    }
    match partner {
        Some(to) => Input::Chat {
            to: to.clone(),
            text: line.to_string(),
        },
        None => Input::Say(say::to_whom()),
    }
}

/// `to` becomes the partner; `text`, if any, goes to them.
fn address(to: &str, text: &str, partner: &mut Option<String>) -> Input {
    *partner = Some(to.to_string());
    if text.is_empty() {
        return Input::Say(say::now_talking_to(to));
    }
    Input::Chat {
        to: to.to_string(),
        text: text.to_string(),
    }
}

fn warn_if_cut(text: &str) {
    if text.len() > TEXT_LEN {
        println!("{}", say::message_cut());
    }
}

/// What a USERS request was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `--who` or `/who`: the list is shown.
    Who,
    /// Sent right after a room message, to say how many others it reached: the room's
    /// echo says 1 even when nobody else is online. `echoed` once its echo is in.
    RoomCount { echoed: bool },
}

/// A message sent and waiting for its echo.
struct Sent {
    receiver: Name,
    text: MessageText,
    deadline: Instant,
}

/// A USERS request waiting for its answer.
struct Ask {
    purpose: Purpose,
    deadline: Instant,
}

/// What the client shows and what it waits for, in every mode: incoming messages,
/// echoes matched to the messages sent, answers to USERS, and answers that never came.
struct Screen {
    me: String,
    clock: Clock,
    /// Where a bare line goes: the last `@name`, or else the first to write to us.
    partner: Option<String>,
    /// Who wrote to us last, for `/r`.
    last_sender: Option<String>,
    /// Whether whoever writes first becomes the partner (interactive only).
    adopt_partner: bool,
    /// Echoes due, oldest first: a server answers one connection's requests in order.
    echoes: VecDeque<Sent>,
    /// USERS answers due, oldest first.
    asks: VecDeque<Ask>,
    /// A USERS request went unanswered: this server has none (an original?), and is
    /// not asked again.
    users_unanswered: bool,
    /// Something asked did not go through: a script mode exits 1.
    failed: bool,
    /// The server said yes to RECEIPTS: messages come as MESSAGE frames, with ids.
    receipts: bool,
    /// Whether READ is sent for what was printed (interactive only).
    sends_reads: bool,
    /// The ids of the deliveries printed in this run: one that comes again is not shown.
    printed: HashSet<u64>,
    /// The highest id printed, and the highest acknowledged.
    printed_up_to: u64,
    acked_up_to: u64,
    /// Deliveries printed since the last ACK, and when it went.
    unacked: usize,
    last_ack: Option<Instant>,
    /// The client is leaving and sends no more ACKs: deliveries are not printed now
    /// (the server keeps them for the next login), only counted.
    acks_closed: bool,
    held_back: usize,
    /// For each sender (by their name's field), the highest id of theirs printed since
    /// the last READ to them.
    unread: BTreeMap<[u8; NAME_LEN], u64>,
    /// For each of our correspondents, how far RECEIVED and READ have gone, as shown.
    progress: HashMap<String, Progress>,
    /// Receipts from someone whose echo is still due: the receiver's ACK can overtake
    /// the echo on its way to us, and a receipt line before the message's own outcome
    /// would read backwards. Shown once the echo is in (or given up).
    deferred: Vec<(Kind, u64, String)>,
}

/// How far our messages to one person have got, as far as the screen has said.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    received: u64,
    read: u64,
}

impl Screen {
    fn new(me: &str, clock: Clock) -> Screen {
        Screen {
            me: me.to_string(),
            clock,
            partner: None,
            last_sender: None,
            adopt_partner: false,
            echoes: VecDeque::new(),
            asks: VecDeque::new(),
            users_unanswered: false,
            failed: false,
            receipts: false,
            sends_reads: false,
            printed: HashSet::new(),
            printed_up_to: 0,
            acked_up_to: 0,
            unacked: 0,
            last_ack: None,
            acks_closed: false,
            held_back: 0,
            unread: BTreeMap::new(),
            progress: HashMap::new(),
            deferred: Vec::new(),
        }
    }

    /// Whether something printed is not acknowledged yet.
    fn ack_pending(&self) -> bool {
        self.printed_up_to > self.acked_up_to && !self.acks_closed
    }

    /// When the pending ACK may go out, if one is pending and nothing else comes.
    fn ack_deadline(&self) -> Option<Instant> {
        self.ack_pending().then(|| {
            self.last_ack
                .map_or_else(Instant::now, |last| last + ACK_INTERVAL)
        })
    }

    /// The id to acknowledge now, if an ACK is due: at the end of a burst once
    /// `ACK_INTERVAL` has passed since the last one, or at once when `ACK_AT_ONCE` are
    /// waiting.
    fn take_ack(&mut self, now: Instant, burst_over: bool) -> Option<u64> {
        let interval_over = self
            .last_ack
            .is_none_or(|last| now.duration_since(last) >= ACK_INTERVAL);
        let due = self.unacked >= ACK_AT_ONCE || (burst_over && interval_over);
        if !self.ack_pending() || !due {
            return None;
        }
        self.acked_up_to = self.printed_up_to;
        self.unacked = 0;
        self.last_ack = Some(now);
        Some(self.acked_up_to)
    }

    /// The last ACK, if anything is unacknowledged; no more after it.
    fn close_acks(&mut self) -> Option<u64> {
        let last = self.ack_pending().then_some(self.printed_up_to);
        self.acks_closed = true;
        self.acked_up_to = self.printed_up_to;
        last
    }

    /// The READs due, one per sender: what was printed from them since the last.
    fn take_reads(&mut self) -> Vec<(Name, u64)> {
        std::mem::take(&mut self.unread)
            .into_iter()
            .map(|(sender, id)| (Name::from_field(&sender), id))
            .collect()
    }

    /// Says how many deliveries came while the client was leaving, if any.
    fn say_held_back(&mut self) {
        match std::mem::take(&mut self.held_back) {
            0 => {}
            count => println!("{}", say::held_back(count)),
        }
    }

    /// A message from us to `to`. The sender field holds our name, as the original
    /// client writes it: the original server relays the field as written.
    fn message(&self, to: &str, text: &str) -> Result<ChatMessage, String> {
        Ok(ChatMessage {
            sender: Name::new(&self.me).expect("the name was accepted at login"),
            receiver: Name::new(to).map_err(|_| say::name_too_long(to))?,
            text: MessageText::truncated(text),
        })
    }

    /// Notes that `message` is about to go out. Returns whether a USERS request should
    /// follow it, to count who a room message reached.
    fn sending(&mut self, message: &ChatMessage) -> bool {
        self.echoes.push_back(Sent {
            receiver: message.receiver,
            text: message.text,
            deadline: Instant::now() + ECHO_TIMEOUT,
        });
        let probe = message.receiver.as_bytes() == ROOM.as_bytes() && !self.users_unanswered;
        if probe {
            self.asking(Purpose::RoomCount { echoed: false });
        }
        probe
    }

    /// Notes that a USERS request is about to go out.
    fn asking(&mut self, purpose: Purpose) {
        self.asks.push_back(Ask {
            purpose,
            deadline: Instant::now() + USERS_TIMEOUT,
        });
    }

    /// Whether an answer is still due.
    fn waiting(&self) -> bool {
        !self.echoes.is_empty() || !self.asks.is_empty()
    }

    /// When the next answer due runs out of time.
    fn next_deadline(&self) -> Option<Instant> {
        let echo = self.echoes.front().map(|sent| sent.deadline);
        let ask = self.asks.front().map(|ask| ask.deadline);
        echo.into_iter().chain(ask).min()
    }

    /// Says which answers did not come by `now`, and stops waiting for them.
    fn expire(&mut self, now: Instant) {
        while let Some(sent) = self.echoes.front() {
            if sent.deadline > now {
                break;
            }
            println!("{}", say::no_echo(sent.receiver, ECHO_TIMEOUT.as_secs()));
            self.echoes.pop_front();
            self.failed = true;
        }
        while let Some(ask) = self.asks.front() {
            if ask.deadline > now {
                break;
            }
            match ask.purpose {
                Purpose::Who => println!("{}", say::no_users_answer(USERS_TIMEOUT.as_secs())),
                Purpose::RoomCount { echoed: true } => println!("{}", say::room_without_count()),
                // The echo has not come either: its own wait says so.
                Purpose::RoomCount { echoed: false } => {}
            }
            self.asks.pop_front();
            self.users_unanswered = true;
            self.failed = true;
        }
        self.show_receipts();
    }

    /// Shows one reply: our own messages' outcomes, others' messages with the time
    /// they were sent or arrived, who is online, receipts.
    fn show(&mut self, reply: &Reply) {
        self.show_reply(reply);
        self.show_receipts();
    }

    /// Shows the receipts held back whose echoes are no longer due, in their order.
    fn show_receipts(&mut self) {
        let due = |name: &str, echoes: &VecDeque<Sent>| {
            echoes
                .iter()
                .any(|sent| sent.receiver.as_bytes() == name.as_bytes())
        };
        let (ready, waiting) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition::<Vec<_>, _>(|(_, _, name)| !due(name, &self.echoes));
        self.deferred = waiting;
        for (kind, id, name) in ready {
            self.receipt(kind, id, &name);
        }
    }

    fn show_reply(&mut self, reply: &Reply) {
        match reply {
            Reply::Chat { flag, message } if message.sender.as_bytes() == self.me.as_bytes() => {
                let due = self.echoes.iter().position(|sent| {
                    sent.receiver == message.receiver && sent.text == message.text
                });
                match due {
                    Some(index) => {
                        self.echoes.remove(index);
                        self.echoed(*flag, message);
                    }
                    // The original server writes a message to yourself twice, the echo
                    // and the delivery: the second is a message like any other.
                    None if message.receiver.as_bytes() == self.me.as_bytes() => {
                        self.incoming(message, None)
                    }
                    // An echo that came after its wait ran out.
                    None => self.echoed(*flag, message),
                }
            }
            Reply::Chat { message, .. } => self.incoming(message, None),
            // On a receipts connection a message with our name is our echo, always:
            // chat-server sends a message to yourself once.
            Reply::Message { flag, message, .. }
                if message.sender.as_bytes() == self.me.as_bytes() =>
            {
                if let Some(index) = self
                    .echoes
                    .iter()
                    .position(|sent| sent.receiver == message.receiver && sent.text == message.text)
                {
                    self.echoes.remove(index);
                }
                self.echoed(*flag, message);
            }
            Reply::Message { id, message, .. } => self.delivered(*id, message),
            Reply::Receipt { kind, id, name } => {
                self.deferred.push((*kind, *id, name.clone()));
            }
            Reply::Users { flag, names } => {
                let purpose = self.asks.pop_front().map(|ask| ask.purpose);
                if *flag != Flag::Ok.to_wire() {
                    println!("{}", say::who_refused(&reason(*flag)));
                    self.failed = true;
                    return;
                }
                match purpose {
                    Some(Purpose::RoomCount { echoed: true }) => {
                        println!("{}", room_count(names, &self.me));
                    }
                    Some(Purpose::RoomCount { echoed: false }) => {}
                    Some(Purpose::Who) | None => println!("{}", say::online(names)),
                }
            }
            Reply::Login { flag } => println!("{}", say::login_reply(&describe(*flag))),
            Reply::Other(feedback) => {
                println!(
                    "{}",
                    say::request_refused(feedback.kind, &reason(feedback.flag))
                );
                self.failed = true;
            }
        }
    }

    /// The echo of one of our messages.
    fn echoed(&mut self, flag: i32, message: &ChatMessage) {
        let ok = Flag::from_wire(flag) == Some(Flag::Ok);
        if ok && message.receiver.as_bytes() == ROOM.as_bytes() {
            // Its count comes with the USERS answer that follows it.
            let probe = self.asks.iter_mut().find_map(|ask| match &mut ask.purpose {
                Purpose::RoomCount { echoed } if !*echoed => Some(echoed),
                _ => None,
            });
            if let Some(echoed) = probe {
                *echoed = true;
                return;
            }
            if self.users_unanswered {
                println!("{}", say::room_without_count());
                self.failed = true;
                return;
            }
        }
        println!("{}", outcome(flag, message));
        if !matches!(Flag::from_wire(flag), Some(Flag::Ok | Flag::Queued)) {
            self.failed = true;
        }
    }

    /// A delivery on a receipts connection: shown once, with the time it was sent, then
    /// acknowledged, and (interactive) marked read once the person types.
    fn delivered(&mut self, id: u64, message: &ChatMessage) {
        if self.acks_closed {
            self.held_back += 1;
            return;
        }
        if !self.printed.insert(id) {
            return; // delivered again after a lost connection: shown already
        }
        self.incoming(message, Some(id));
        self.printed_up_to = self.printed_up_to.max(id);
        self.unacked += 1;
        let private = message.receiver.as_bytes() != ROOM.as_bytes();
        if self.sends_reads && private && !message.sender.is_empty() {
            let unread = self.unread.entry(*message.sender.field()).or_default();
            *unread = (*unread).max(id);
        }
    }

    /// A RECEIVED or READ receipt: one line when it moves the state of our messages to
    /// that person forward (a read message has been received too).
    fn receipt(&mut self, kind: Kind, id: u64, name: &str) {
        let progress = self.progress.entry(name.to_string()).or_default();
        let line = match kind {
            Kind::Read if id > progress.read => {
                progress.read = id;
                progress.received = progress.received.max(id);
                say::has_read(name, &self.clock.at(id))
            }
            Kind::Received if id > progress.received => {
                progress.received = id;
                say::received_by_client(name, &self.clock.at(id))
            }
            _ => return,
        };
        println!("{line}");
    }

    /// Someone's message to us (or to the room), shown with the time it was sent
    /// (`id`, on a receipts connection) or else the time it arrived.
    fn incoming(&mut self, message: &ChatMessage, id: Option<u64>) {
        let room = message.receiver.as_bytes() == ROOM.as_bytes();
        let sender = if message.sender.is_empty() {
            // A client that leaves the field to the server, through the original.
            say::sender_not_given()
        } else {
            message.sender.to_lossy()
        };
        let time = match id {
            Some(id) => self.clock.at(id),
            None => self.clock.now(),
        };
        println!(
            "[{time}] {}{sender}: {}",
            if room { say::room_tag() } else { "" },
            message.text
        );
        if message.sender.is_empty() {
            return;
        }
        self.last_sender = Some(sender.clone());
        if self.adopt_partner && self.partner.is_none() && !room && sender != self.me {
            println!("{}", say::partner_adopted(&sender));
            self.partner = Some(sender);
        }
    }
}

/// The line for a room message, from the USERS answer that followed it.
fn room_count(names: &[String], me: &str) -> String {
    say::room_count(names.iter().filter(|name| *name != me).count())
}

/// The local time of day, for incoming messages. std has no time zones and the design
/// allows no crate for them, so the offset from UTC is asked of `date +%z` once; where
/// that fails the times are UTC.
struct Clock {
    offset_secs: i64,
}

impl Clock {
    fn local() -> Clock {
        let offset = Command::new("date")
            .arg("+%z")
            .stderr(Stdio::null())
            .output()
            .ok()
            .and_then(|output| parse_utc_offset(&String::from_utf8_lossy(&output.stdout)));
        Clock {
            offset_secs: offset.unwrap_or(0),
        }
    }

    /// `HH:MM:SS` now.
    fn now(&self) -> String {
        self.format(unix_now_secs(), unix_now_secs())
    }

    /// The time a message id stands for (`message_id::sent_at_ms`): `HH:MM:SS` if it is
    /// today here, else `YYYY-MM-DD HH:MM:SS`, since a stored message may be days old.
    fn at(&self, id: u64) -> String {
        let ms = chatroom::message_id::sent_at_ms(id).unwrap_or(0);
        let secs = i64::try_from(ms / MILLIS_PER_SEC).unwrap_or(i64::MAX / 2);
        self.format(secs, unix_now_secs())
    }

    /// `utc` (seconds since 1970) as local time, with the date unless it falls on the
    /// same local day as `today`.
    fn format(&self, utc: i64, today: i64) -> String {
        let local = utc + self.offset_secs;
        let (day, of_day) = (
            local.div_euclid(SECONDS_PER_DAY),
            local.rem_euclid(SECONDS_PER_DAY),
        );
        let time = format!(
            "{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        );
        if day == (today + self.offset_secs).div_euclid(SECONDS_PER_DAY) {
            return time;
        }
        let (year, month, day_of_month) = chatroom::trace::civil_from_days(day);
        format!("{year:04}-{month:02}-{day_of_month:02} {time}")
    }
}

fn unix_now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// `+0800` → 28800 seconds, `-0530` → -19800.
fn parse_utc_offset(text: &str) -> Option<i64> {
    let text = text.trim();
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// What became of one of our messages, in words.
fn outcome(flag: i32, message: &ChatMessage) -> String {
    let to = &message.receiver;
    match Flag::from_wire(flag) {
        Some(Flag::Ok) if to.as_bytes() == ROOM.as_bytes() => say::said_to_room(),
        Some(Flag::Ok) => say::delivered(to),
        Some(Flag::Queued) => say::queued(to),
        Some(Flag::Rejected) => say::no_such_user(to),
        Some(Flag::MailboxFull) => say::mailbox_full(to),
        Some(Flag::NotStored) => say::not_stored(to),
        Some(_) => say::not_sent(&reason(flag)),
        None => say::not_sent_unknown(flag),
    }
}

use say::{describe, reason};

/// The language of this run, set once by `main` from the locale; English until then,
/// so that unit tests read the same whatever the developer's locale.
static LANG: OnceLock<Lang> = OnceLock::new();

/// Everything the client says to its user, each message in both languages side by side
/// (see `chatroom::i18n`): one function per message, in the language of the run. The
/// Chinese puts status lines in full-width brackets, `（已送达 玛卡巴卡）`, with
/// full-width punctuation inside; names, times, commands and protocol names stay as
/// they are. `--trace` and the protocol's names are not here: they stay English.
mod say {
    use super::{LANG, TEXT_LEN};
    use chatroom::i18n::{self, Lang};
    use chatroom::protocol::{Flag, Kind};
    use std::fmt::Display;

    /// The language of this run.
    pub fn lang() -> Lang {
        LANG.get().copied().unwrap_or_default()
    }

    /// `english` or `chinese`, in the language of this run.
    fn pick<T>(english: T, chinese: T) -> T {
        lang().pick(english, chinese)
    }

    pub fn usage() -> &'static str {
        pick(USAGE, USAGE_ZH)
    }

    pub fn help() -> &'static str {
        pick(HELP, HELP_ZH)
    }

    const USAGE: &str = "\
usage: chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD]
                   [--send TO TEXT | --who | --listen]

Logs in as NAME. The password is PASSWORD, else $CHAT_PASSWORD, else it is asked for
once the server is reached (not echoed on a terminal; three tries).
  --addr HOST:PORT  the server (default 127.0.0.1:12345)
  --trace           print every frame sent and received on stderr, decoded and
                    as bytes (the password masked)
  --no-receipts     speak the plain protocol even to a server with receipts
                    (by default they are asked for, and used where the server has
                    them: send times, delivered and read lines)
  --send TO TEXT    send one message, print what became of it, exit
                    (status 0 if delivered or queued)
  --who             print who is online, exit
  --listen          print incoming messages until the connection ends
                    (status 1 when the server goes away)
  --version         show the version and exit
Every mode also prints the messages stored for NAME while they were offline.
An answer that does not come (the original server has no USERS and no room, and
ignores a message while you are alone online) is waited for a few seconds, then
reported; --send and --who then exit with status 1.

Without --send, --who or --listen the client is interactive:
";

    const HELP: &str = "\
commands:
  @name text          send text to name; name becomes your partner
  @\"two words\" text   the same, for a name with spaces in it
  text                send text to your partner (until you pick one with @name,
                      the first to write to you is your partner)
  *text or * text     say text to the room (everyone online)
  /r text             reply to whoever wrote to you last (also /reply)
  /who                who is online
  (any line)          even an empty one: with receipts, tells those whose
                      messages were shown to you that you have read them
  /help               this help
  /quit               leave (so does end of input, Ctrl-D)";

    const USAGE_ZH: &str = "\
用法：chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD]
                  [--send TO TEXT | --who | --listen]

以 NAME 登录。密码取自 PASSWORD，没有则取 $CHAT_PASSWORD，再没有则在连上服务器后
询问（在终端上不回显；可试三次）。
  --addr HOST:PORT  服务器地址（默认 127.0.0.1:12345）
  --trace           在 stderr 上打印收发的每一帧：解码后的内容和字节
                    （密码已遮盖）
  --no-receipts     即使服务器支持回执，也只用基本协议
                    （默认会请求回执，服务器支持就用：发送时间、
                    已送达和已读提示）
  --send TO TEXT    发送一条消息，打印结果后退出
                    （已送达或已保存时退出码为 0）
  --who             打印在线用户后退出
  --listen          打印收到的消息，直到连接结束
                    （服务器断开时退出码为 1）
  --version         显示版本后退出
每种模式都会打印 NAME 离线期间为其保存的消息。
等不到的回答（原版服务器没有 USERS，也没有聊天室，只有你一人在线时还会忽略消息）
会等几秒，然后报告；这时 --send 和 --who 以退出码 1 退出。

不带 --send、--who 或 --listen 时，客户端进入交互模式：
";

    const HELP_ZH: &str = "\
命令：
  @名字 消息          把消息发给该用户，对方成为你的聊天对象
  @\"名 字\" 消息       同上，用于带空格的名字
  消息                发给聊天对象（在你用 @名字 选定之前，
                      第一个给你发消息的人就是聊天对象）
  *消息 或 * 消息     发到聊天室（所有在线的人）
  /r 消息             回复最后给你发消息的人（也可用 /reply）
  /who                查看谁在线
  （任意一行）        空行也算：有回执时，告诉给你发过消息的人
                      你已读过
  /help               显示本帮助
  /quit               退出（输入结束、Ctrl-D 也一样）";

    // Usage errors (exit 2) and the lines around them.

    pub fn usage_error(problem: &str) -> String {
        pick(
            format!("chat-client: {problem} (try `chat-client --help`)"),
            format!("chat-client: {problem}（见 `chat-client --help`）"),
        )
    }

    /// Chinese only: the English is the library's, with the argument's index.
    pub fn args_not_utf8() -> String {
        "有参数不是有效的 UTF-8；终端的编码是 UTF-8 吗？".to_string()
    }

    pub fn addr_needed() -> String {
        pick("--addr needs HOST:PORT", "--addr 后面要跟 HOST:PORT").to_string()
    }

    pub fn addr_malformed(addr: &str) -> String {
        pick(
            format!("--addr takes HOST:PORT, not {addr:?}"),
            format!("--addr 要的是 HOST:PORT，不是 {addr:?}"),
        )
    }

    pub fn send_needs() -> String {
        pick("--send needs TO and TEXT", "--send 后面要跟 TO 和 TEXT").to_string()
    }

    pub fn unknown_option(arg: &str) -> String {
        pick(format!("unknown option {arg}"), format!("未知选项 {arg}"))
    }

    pub fn name_missing() -> String {
        pick("NAME is missing", "缺少 NAME").to_string()
    }

    pub fn unexpected_argument(extra: &str) -> String {
        pick(
            format!("unexpected argument {extra:?}"),
            format!("多余的参数 {extra:?}"),
        )
    }

    // Connecting and logging in.

    pub fn password_prompt() -> &'static str {
        pick("password: ", "密码：")
    }

    pub fn no_password() -> String {
        pick(
            "no password given (end of input)",
            "没有输入密码（输入已结束）",
        )
        .to_string()
    }

    pub fn password_not_utf8() -> String {
        pick("the password is not valid UTF-8", "密码不是有效的 UTF-8").to_string()
    }

    pub fn cannot_read_password(error: impl Display) -> String {
        pick(
            format!("cannot read the password: {error}"),
            format!("无法读取密码：{error}"),
        )
    }

    pub fn try_again(problem: &str) -> String {
        pick(
            format!("{problem}; try again"),
            format!("{problem}，请重试"),
        )
    }

    pub fn connection_refused(addr: &str) -> String {
        pick(
            format!(
                "cannot connect to {addr}: connection refused. Is the server running? Try `make run`."
            ),
            format!("无法连接 {addr}：连接被拒绝。服务器在运行吗？试试 `make run`。"),
        )
    }

    pub fn cannot_connect(addr: &str, error: impl Display) -> String {
        pick(
            format!("cannot connect to {addr}: {error}"),
            format!("无法连接 {addr}：{error}"),
        )
    }

    pub fn cannot_use_connection(addr: &str, error: impl Display) -> String {
        pick(
            format!("cannot use the connection to {addr}: {error}"),
            format!("无法使用到 {addr} 的连接：{error}"),
        )
    }

    pub fn not_a_reply(error: impl Display) -> String {
        pick(
            format!("the server sent something that is not a reply ({error})"),
            format!("服务器发来的不是回复（{error}）"),
        )
    }

    pub fn cannot_log_in(name: &str, error: impl Display) -> String {
        pick(
            format!("cannot log in as {name:?}: {error}"),
            format!("无法以 {name:?} 登录：{error}"),
        )
    }

    pub fn unexpected_login_reply(other: impl std::fmt::Debug) -> String {
        pick(
            format!("unexpected reply to the login: {other:?}"),
            format!("登录收到意外的回复：{other:?}"),
        )
    }

    pub fn no_login_answer(secs: u64) -> String {
        pick(
            format!("no answer to the login within {secs} s: is this a chat server?"),
            format!("{secs} 秒内登录没有回应：这是聊天服务器吗？"),
        )
    }

    pub fn closed_while_logging_in() -> String {
        pick("the server closed the connection", "服务器断开了连接").to_string()
    }

    pub fn lost_while_logging_in(problem: &str) -> String {
        pick(
            format!("lost the connection while logging in: {problem}"),
            format!("登录时连接中断：{problem}"),
        )
    }

    pub fn wrong_password(name: &str) -> String {
        pick(
            format!("wrong name or password for {name:?}"),
            format!("{name:?} 的用户名或密码错误"),
        )
    }

    pub fn login_refused(flag: Flag) -> String {
        pick(
            format!("login refused: {}", flag.describe()),
            format!("登录被拒绝：{}", i18n::describe_flag(flag, Lang::Chinese)),
        )
    }

    pub fn login_refused_unknown(flag: i32) -> String {
        pick(
            format!("login refused with unknown flag {flag}"),
            format!("登录被拒绝，未知标志 {flag}"),
        )
    }

    pub fn logged_in_listening(me: &str) -> String {
        pick(
            format!("logged in as {me}; listening (Ctrl-C to stop)"),
            format!("已以 {me} 身份登录，正在接收消息（Ctrl-C 停止）"),
        )
    }

    pub fn logged_in_interactive(me: &str, addr: &str) -> String {
        pick(
            format!("logged in as {me} on {addr}; type /help for commands"),
            format!("已以 {me} 身份登录 {addr}，输入 /help 查看命令"),
        )
    }

    /// A connection the server ended while we were logged in.
    pub fn connection_ended(me: &str) -> String {
        pick(
            format!(
                "the server closed the connection: {me} may have logged in elsewhere, \
                 or the server stopped"
            ),
            format!("服务器断开了连接：{me} 可能在别处登录了，或者服务器已停止"),
        )
    }

    pub fn cannot_send(error: impl Display) -> String {
        pick(
            format!("cannot send: {error}"),
            format!("无法发送：{error}"),
        )
    }

    pub fn cannot_ask_who(error: impl Display) -> String {
        pick(
            format!("cannot ask who is online: {error}"),
            format!("无法查询在线用户：{error}"),
        )
    }

    // The interactive mode's answers to what was typed.

    pub fn line_not_utf8() -> &'static str {
        pick(
            "(that line is not UTF-8 and was not sent; is your terminal set to UTF-8?)",
            "（这一行不是 UTF-8，没有发送；终端的编码是 UTF-8 吗？）",
        )
    }

    pub fn users_unanswered_before() -> &'static str {
        pick(
            "(the server did not answer USERS before, so it cannot list who is \
             online; an original server?)",
            "（服务器之前没有回答 USERS，无法列出在线用户；是原版服务器吗？）",
        )
    }

    pub fn nobody_wrote_yet() -> String {
        pick("nobody has written to you yet", "还没有人给你发过消息").to_string()
    }

    pub fn unknown_command(command: &str) -> String {
        pick(
            format!("unknown command /{command}; type /help"),
            format!("未知命令 /{command}，输入 /help 查看命令"),
        )
    }

    pub fn usage_quoted_name() -> String {
        pick(
            "usage: @\"name with spaces\" text",
            "用法：@\"带空格的名字\" 消息",
        )
        .to_string()
    }

    pub fn usage_at_name() -> String {
        pick("usage: @name text", "用法：@名字 消息").to_string()
    }

    pub fn usage_room() -> String {
        pick("usage: *text (to the room)", "用法：*消息（发到聊天室）").to_string()
    }

    pub fn to_whom() -> String {
        pick(
            "to whom? start with @name text (or *text for the room)",
            "发给谁？请用 @名字 消息 开头（发到聊天室用 *消息）",
        )
        .to_string()
    }

    pub fn now_talking_to(to: &str) -> String {
        pick(format!("now talking to {to}"), format!("现在和 {to} 聊天"))
    }

    pub fn message_cut() -> String {
        pick(
            format!("(message cut to {TEXT_LEN} bytes, the protocol's limit)"),
            format!("（消息已截断为 {TEXT_LEN} 字节，这是协议的上限）"),
        )
    }

    pub fn name_too_long(to: &str) -> String {
        pick(
            format!("{to:?} is too long to be a user name"),
            format!("{to:?} 太长，不能作为用户名"),
        )
    }

    // What the screen shows: outcomes, receipts, partner and room lines.

    pub fn held_back(count: usize) -> String {
        match (lang(), count) {
            (Lang::English, 1) => {
                "(1 more message arrived while leaving: the server keeps it for your next login)"
                    .to_string()
            }
            (Lang::English, more) => format!(
                "({more} more messages arrived while leaving: the server keeps them for your \
                 next login)"
            ),
            (Lang::Chinese, count) => {
                format!("（退出时又到了 {count} 条消息：服务器会保留，下次登录时收到）")
            }
        }
    }

    pub fn no_echo(to: impl Display, secs: u64) -> String {
        pick(
            format!(
                "(no echo for your message to {to} within {secs} s: the original server ignores \
                 a message while you are the only one online)"
            ),
            format!(
                "（发给 {to} 的消息 {secs} 秒内没有回显：只有你一人在线时，原版服务器会忽略消息）"
            ),
        )
    }

    pub fn who_refused(reason: &str) -> String {
        pick(
            format!("(who is online: not answered: {reason})"),
            format!("（查询在线用户没有得到回答：{reason}）"),
        )
    }

    pub fn online(names: &[String]) -> String {
        pick(
            format!("online: {}", names.join(", ")),
            format!("在线：{}", names.join("、")),
        )
    }

    pub fn login_reply(description: &str) -> String {
        pick(
            format!("(login: {description})"),
            format!("（登录：{description}）"),
        )
    }

    /// A request of ours the server refused; the receipts' own (ACK, READ) are named.
    pub fn request_refused(kind: Kind, reason: &str) -> String {
        let what = match kind {
            Kind::Ack => pick(" (an acknowledgement)", "（确认）"),
            Kind::Read => pick(" (a read receipt)", "（已读回执）"),
            _ => "",
        };
        let kind = kind.to_wire();
        pick(
            format!("(the server refused a request of type {kind}{what}: {reason})"),
            format!("（服务器拒绝了类型为 {kind} 的请求{what}：{reason}）"),
        )
    }

    pub fn has_read(name: &str, time: &str) -> String {
        pick(
            format!("({name} has read your messages up to {time})"),
            format!("（{name} 已读你的消息，截至 {time}）"),
        )
    }

    pub fn received_by_client(name: &str, time: &str) -> String {
        pick(
            format!("(delivered to {name}'s client up to {time})"),
            format!("（已送达 {name} 的客户端，截至 {time}）"),
        )
    }

    pub fn sender_not_given() -> String {
        pick("(sender not given)", "（未填发送者）").to_string()
    }

    /// The tag before a room message's sender.
    pub fn room_tag() -> &'static str {
        pick("[room] ", "[聊天室] ")
    }

    pub fn partner_adopted(sender: &str) -> String {
        pick(
            format!("(now talking to {sender}: a bare line goes to them)"),
            format!("（现在和 {sender} 聊天：不带前缀的一行会发给对方）"),
        )
    }

    /// A USERS request that got no answer.
    pub fn no_users_answer(secs: u64) -> String {
        pick(
            format!(
                "(no answer within {secs} s: the server does not answer USERS, the list of who is \
                 online; an original server?)"
            ),
            format!(
                "（{secs} 秒内没有回答：服务器不回答 USERS（在线用户列表）；是原版服务器吗？）"
            ),
        )
    }

    /// A room message whose reach the client cannot count.
    pub fn room_without_count() -> &'static str {
        pick(
            "(said to the room, but the server does not answer USERS: if it is the original \
             server, it has no room and nobody heard it)",
            "（已发到聊天室，但服务器不回答 USERS：如果是原版服务器，它没有聊天室，没人收到）",
        )
    }

    pub fn room_count(others: usize) -> String {
        match (lang(), others) {
            (Lang::English, 0) => {
                "(said to the room, but nobody else is online to hear it)".to_string()
            }
            (Lang::English, 1) => "(said to the room: 1 other user is online)".to_string(),
            (Lang::English, others) => {
                format!("(said to the room: {others} other users are online)")
            }
            (Lang::Chinese, 0) => "（已发到聊天室，但没有其他人在线）".to_string(),
            (Lang::Chinese, others) => format!("（已发到聊天室：另有 {others} 人在线）"),
        }
    }

    // The outcome of one of our messages.

    pub fn said_to_room() -> String {
        pick("(said to the room)", "（已发到聊天室）").to_string()
    }

    pub fn delivered(to: impl Display) -> String {
        pick(format!("(delivered to {to})"), format!("（已送达 {to}）"))
    }

    pub fn queued(to: impl Display) -> String {
        pick(
            format!("(queued: {to} is offline and gets it at their next login)"),
            format!("（已保存：{to} 离线，下次登录时收到）"),
        )
    }

    pub fn no_such_user(to: impl Display) -> String {
        pick(
            format!("(not sent: there is no user {to})"),
            format!("（未发送：没有用户 {to}）"),
        )
    }

    pub fn mailbox_full(to: impl Display) -> String {
        pick(
            format!(
                "(not sent: {to} is offline and their mailbox, or the server's store, is full)"
            ),
            format!("（未发送：{to} 离线，其信箱或服务器的存储已满）"),
        )
    }

    pub fn not_stored(to: impl Display) -> String {
        pick(
            format!(
                "(not sent: {to} is offline and the server could not store it: a disk or file \
                 problem on the server, such as a full disk; its log says which)"
            ),
            format!(
                "（未发送：{to} 离线，服务器无法保存这条消息：服务器上的磁盘或文件出了问题，\
                 比如磁盘已满；详见服务器日志）"
            ),
        )
    }

    pub fn not_sent(reason: &str) -> String {
        pick(
            format!("(not sent: {reason})"),
            format!("（未发送：{reason}）"),
        )
    }

    pub fn not_sent_unknown(flag: i32) -> String {
        pick(
            format!("(not sent: unknown flag {flag})"),
            format!("（未发送：未知标志 {flag}）"),
        )
    }

    /// A flag in words; one this client does not know, by its number.
    pub fn describe(flag: i32) -> String {
        match Flag::from_wire(flag) {
            Some(flag) => i18n::describe_flag(flag, lang()).to_string(),
            None => pick(format!("unknown flag {flag}"), format!("未知标志 {flag}")),
        }
    }

    /// A flag's description after words that already say it was refused: "not sent:
    /// refused: …" would say it twice.
    pub fn reason(flag: i32) -> String {
        describe(flag)
            .trim_start_matches(pick("refused: ", i18n::REFUSED_ZH))
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(to: &str, text: &str) -> Input {
        Input::Chat {
            to: to.to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn a_quoted_name_may_hold_spaces() {
        let mut partner = None;
        assert_eq!(
            parse_line("@\"alice smith\" hi there", &mut partner, None),
            chat("alice smith", "hi there")
        );
        assert_eq!(partner.as_deref(), Some("alice smith"));
        assert_eq!(
            parse_line("again", &mut partner, None),
            chat("alice smith", "again")
        );
        assert_eq!(parse_line("@bob hi", &mut partner, None), chat("bob", "hi"));
    }

    #[test]
    fn the_room_takes_star_with_or_without_a_space() {
        let mut partner = None;
        assert_eq!(parse_line("*hello", &mut partner, None), chat("*", "hello"));
        assert_eq!(
            parse_line("* hello", &mut partner, None),
            chat("*", "hello")
        );
    }

    #[test]
    fn reply_goes_to_the_last_sender() {
        let mut partner = None;
        assert_eq!(
            parse_line("/r yes", &mut partner, Some("似末")),
            chat("似末", "yes")
        );
        assert!(matches!(
            parse_line("/r yes", &mut partner, None),
            Input::Say(_)
        ));
    }

    fn screen(me: &str) -> Screen {
        let mut screen = Screen::new(me, Clock { offset_secs: 0 });
        screen.adopt_partner = true;
        screen
    }

    fn chat_reply(from: &str, to: &str, text: &str) -> Reply {
        Reply::Chat {
            flag: Flag::Ok.to_wire(),
            message: ChatMessage {
                sender: Name::new(from).unwrap(),
                receiver: Name::new(to).unwrap(),
                text: MessageText::new(text).unwrap(),
            },
        }
    }

    #[test]
    fn an_echo_is_found_by_its_sender_whether_it_comes_before_or_after_others() {
        let mut screen = screen("1001");
        let message = screen.message("1002", "hi").unwrap();
        assert_eq!(
            message.sender.as_str(),
            Some("1001"),
            "the sender is filled in"
        );
        screen.sending(&message);
        screen.show(&chat_reply("1002", "1001", "crossing"));
        assert!(screen.waiting(), "another's message is not the echo");
        screen.show(&chat_reply("1001", "1002", "hi"));
        assert!(!screen.waiting() && !screen.failed);
    }

    #[test]
    fn the_first_to_write_becomes_the_partner_and_only_the_first() {
        let mut screen = screen("玛卡巴卡");
        screen.show(&chat_reply("1001", ROOM, "in the room"));
        assert_eq!(screen.partner, None, "a room message picks no partner");
        screen.show(&chat_reply("似末", "玛卡巴卡", "你好"));
        assert_eq!(screen.partner.as_deref(), Some("似末"));
        screen.show(&chat_reply("1002", "玛卡巴卡", "me too"));
        assert_eq!(screen.partner.as_deref(), Some("似末"));
        assert_eq!(
            screen.last_sender.as_deref(),
            Some("1002"),
            "/r answers 1002"
        );
    }

    #[test]
    fn answers_that_never_come_are_given_up_at_their_deadline() {
        let mut screen = screen("1001");
        let message = screen.message(ROOM, "anyone?").unwrap();
        assert!(screen.sending(&message), "a room message asks who heard it");
        screen.asking(Purpose::Who);
        screen.expire(Instant::now());
        assert!(screen.waiting(), "nothing is due yet");
        screen.expire(Instant::now() + ECHO_TIMEOUT);
        assert!(!screen.waiting() && screen.failed && screen.users_unanswered);
        let again = screen.message(ROOM, "anyone?").unwrap();
        assert!(!screen.sending(&again), "USERS is not asked again");
    }

    #[test]
    fn room_counts_are_plural_where_they_should_be() {
        let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        assert!(room_count(&names(&["1001"]), "1001").contains("nobody else"));
        assert!(room_count(&names(&["1001", "1002"]), "1001").contains(": 1 other user is"));
        assert!(
            room_count(&names(&["1001", "1002", "1003"]), "1001").contains(": 2 other users are")
        );
    }

    #[test]
    fn a_refusal_is_said_once() {
        let message = ChatMessage {
            sender: Name::EMPTY,
            receiver: Name::new("1002").unwrap(),
            text: MessageText::EMPTY,
        };
        assert_eq!(
            outcome(Flag::NotLoggedIn.to_wire(), &message),
            "(not sent: log in first)"
        );
    }

    fn message_reply(id: u64, from: &str, to: &str, text: &str) -> Reply {
        Reply::Message {
            flag: Flag::Ok.to_wire(),
            id,
            message: ChatMessage {
                sender: Name::new(from).unwrap(),
                receiver: Name::new(to).unwrap(),
                text: MessageText::new(text).unwrap(),
            },
        }
    }

    fn receipts_screen(me: &str) -> Screen {
        let mut screen = screen(me);
        screen.receipts = true;
        screen.sends_reads = true;
        screen
    }

    /// An id of today, `secs_ago` seconds back: ids are microseconds since 1970.
    fn id_ago(secs_ago: u64) -> u64 {
        ((unix_now_secs() as u64 - secs_ago) * 1_000) << chatroom::message_id::SEQUENCE_BITS | 3
    }

    #[test]
    fn a_delivery_is_printed_once_acknowledged_in_batches_and_read_per_sender() {
        let mut screen = receipts_screen("1001");
        let start = Instant::now();
        let (first, second, third) = (id_ago(30), id_ago(20), id_ago(10));
        screen.show(&message_reply(first, "1002", "1001", "one"));
        screen.show(&message_reply(first, "1002", "1001", "one again"));
        assert_eq!(screen.printed.len(), 1, "the same id is shown once");
        assert_eq!(
            screen.take_ack(start, false),
            None,
            "not while a burst goes on"
        );
        assert_eq!(screen.take_ack(start, true), Some(first));
        screen.show(&message_reply(second, "1003", "1001", "two"));
        screen.show(&message_reply(third, "1003", ROOM, "to the room"));
        assert_eq!(
            screen.take_ack(start + ACK_INTERVAL / 2, true),
            None,
            "at most one ACK per interval"
        );
        assert_eq!(screen.ack_deadline(), Some(start + ACK_INTERVAL));
        assert_eq!(screen.take_ack(start + ACK_INTERVAL, true), Some(third));
        assert_eq!(screen.ack_deadline(), None);
        // READ names each sender once, with the highest of their private messages.
        let reads = screen.take_reads();
        let reads: Vec<(String, u64)> = reads
            .into_iter()
            .map(|(name, id)| (name.to_lossy(), id))
            .collect();
        assert_eq!(
            reads,
            [("1002".to_string(), first), ("1003".to_string(), second)]
        );
        assert!(screen.take_reads().is_empty());
    }

    #[test]
    fn many_unacknowledged_deliveries_are_acknowledged_at_once() {
        let mut screen = receipts_screen("1001");
        let now = Instant::now();
        screen.show(&message_reply(1, "1002", "1001", "x"));
        assert_eq!(screen.take_ack(now, true), Some(1));
        for id in 2..=ACK_AT_ONCE as u64 + 1 {
            screen.show(&message_reply(id, "1002", "1001", "x"));
        }
        assert_eq!(
            screen.take_ack(now, false),
            Some(ACK_AT_ONCE as u64 + 1),
            "mid-burst and within the interval"
        );
    }

    #[test]
    fn leaving_takes_the_last_ack_and_holds_back_what_comes_after() {
        let mut screen = receipts_screen("1001");
        screen.show(&message_reply(5, "1002", "1001", "x"));
        assert_eq!(screen.close_acks(), Some(5));
        screen.show(&message_reply(6, "1002", "1001", "y"));
        assert_eq!(screen.held_back, 1);
        assert!(!screen.printed.contains(&6) && screen.take_ack(Instant::now(), true).is_none());
        assert_eq!(screen.close_acks(), None);
    }

    #[test]
    fn our_echo_on_a_receipts_connection_is_no_delivery() {
        let mut screen = receipts_screen("1001");
        let message = screen.message("1001", "to myself").unwrap();
        screen.sending(&message);
        screen.show(&message_reply(7, "1001", "1001", "to myself"));
        assert!(!screen.waiting() && screen.printed.is_empty() && !screen.ack_pending());
    }

    #[test]
    fn receipts_show_only_when_they_move_forward() {
        let mut screen = receipts_screen("1001");
        let shown = |screen: &Screen, name: &str| {
            let progress = screen.progress[name];
            (progress.received, progress.read)
        };
        screen.show(&Reply::Receipt {
            kind: Kind::Received,
            id: 10,
            name: "1002".to_string(),
        });
        assert_eq!(shown(&screen, "1002"), (10, 0));
        screen.receipt(Kind::Read, 20, "1002");
        assert_eq!(shown(&screen, "1002"), (20, 20), "read means received too");
        screen.receipt(Kind::Received, 15, "1002");
        screen.receipt(Kind::Read, 20, "1002");
        assert_eq!(shown(&screen, "1002"), (20, 20), "nothing goes back");
    }

    #[test]
    fn a_receipt_that_overtakes_its_echo_waits_for_it() {
        let mut screen = receipts_screen("1001");
        let message = screen.message("1002", "hi").unwrap();
        screen.sending(&message);
        let receipt = |id| Reply::Receipt {
            kind: Kind::Received,
            id,
            name: "1002".to_string(),
        };
        screen.show(&receipt(9));
        assert!(
            !screen.progress.contains_key("1002"),
            "the echo is still due"
        );
        screen.show(&message_reply(9, "1001", "1002", "hi"));
        assert_eq!(screen.progress["1002"].received, 9, "shown after the echo");
        // Given up, an echo holds nothing back either.
        let message = screen.message("1002", "again").unwrap();
        screen.sending(&message);
        screen.show(&receipt(10));
        screen.expire(Instant::now() + ECHO_TIMEOUT);
        assert_eq!(screen.progress["1002"].received, 10);
    }

    #[test]
    fn times_from_other_days_carry_the_date() {
        let clock = Clock { offset_secs: 0 };
        // 2026-12-01 08:25:09 UTC.
        let then = 1_796_113_509;
        assert_eq!(clock.format(then, then + 60), "08:25:09");
        assert_eq!(
            clock.format(then, then + SECONDS_PER_DAY),
            "2026-12-01 08:25:09"
        );
        // 08:25 UTC is 00:25 the same day at -0800, and the day before at -0900.
        let pacific = Clock {
            offset_secs: -8 * 3600,
        };
        assert_eq!(pacific.format(then, then + 12 * 3600), "00:25:09");
        let alaska = Clock {
            offset_secs: -9 * 3600,
        };
        assert_eq!(alaska.format(then, then + 30 * 60), "23:25:09");
        assert_eq!(alaska.format(then, then + 60 * 60), "2026-11-30 23:25:09");
        assert_eq!(clock.at(id_ago(0)).len(), "HH:MM:SS".len());
    }

    #[test]
    fn utc_offsets_parse() {
        assert_eq!(parse_utc_offset("+0800\n"), Some(8 * 3600));
        assert_eq!(parse_utc_offset("-0530"), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_utc_offset("UTC"), None);
    }

    // The locale choice (`chatroom::i18n`), tested here, where it is used.

    /// The language chosen for a locale of these variables (name, value).
    fn locale(vars: &[(&str, &str)]) -> Lang {
        Lang::from_locale(|name| {
            vars.iter()
                .find(|(set, _)| *set == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn a_zh_locale_means_chinese() {
        assert_eq!(locale(&[("LANG", "zh_CN.UTF-8")]), Lang::Chinese);
        assert_eq!(locale(&[("LANG", "zh_TW")]), Lang::Chinese);
        assert_eq!(locale(&[("LC_MESSAGES", "zh_CN.GB18030")]), Lang::Chinese);
        assert_eq!(locale(&[("LANG", "en_US.UTF-8")]), Lang::English);
        assert_eq!(locale(&[("LANG", "C")]), Lang::English);
        assert_eq!(locale(&[]), Lang::English, "no locale: English");
    }

    #[test]
    fn the_first_set_and_non_empty_variable_decides() {
        let zh = "zh_CN.UTF-8";
        assert_eq!(locale(&[("LC_ALL", "C"), ("LANG", zh)]), Lang::English);
        assert_eq!(locale(&[("LC_ALL", zh), ("LANG", "C")]), Lang::Chinese);
        assert_eq!(
            locale(&[("LC_MESSAGES", "en_GB.UTF-8"), ("LANG", zh)]),
            Lang::English
        );
        assert_eq!(locale(&[("LC_ALL", ""), ("LANG", zh)]), Lang::Chinese);
        assert_eq!(
            locale(&[("LC_ALL", ""), ("LC_MESSAGES", ""), ("LANG", "")]),
            Lang::English
        );
    }

    #[test]
    fn every_flag_has_chinese_and_english_is_unchanged() {
        for flag in Flag::ALL {
            assert_eq!(
                chatroom::i18n::describe_flag(flag, Lang::English),
                flag.describe()
            );
            let chinese = chatroom::i18n::describe_flag(flag, Lang::Chinese);
            assert!(!chinese.is_empty() && !chinese.is_ascii(), "{flag:?}");
        }
        assert!(
            chatroom::i18n::describe_flag(Flag::NotLoggedIn, Lang::Chinese)
                .starts_with(chatroom::i18n::REFUSED_ZH)
        );
    }
}
