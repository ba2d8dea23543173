//! `chat-client`: the companion terminal client, in the spirit of the original: one
//! thread prints what the server sends, the other sends what the user types.
//!
//! ```text
//! chat-client [--addr HOST:PORT] NAME [PASSWORD]                  interactive
//! chat-client [--addr HOST:PORT] NAME [PASSWORD] --send TO TEXT   send one, exit
//! chat-client [--addr HOST:PORT] NAME [PASSWORD] --who            who is online, exit
//! chat-client [--addr HOST:PORT] NAME [PASSWORD] --listen         print incoming until the end
//! ```
//! Without PASSWORD the password comes from `CHAT_PASSWORD`, or else it is asked for
//! (without echo on a terminal, up to three tries) once the server has been reached.
//!
//! Whatever the server sends is shown, in every mode: logging in hands over the
//! messages stored while the user was offline, and the server forgets them once they
//! are written, so a client that ignored them would lose them.
#![forbid(unsafe_code)]

use chatroom::blocking_client::{Client, Reply};
use chatroom::protocol::{ChatMessage, Flag, ROOM, TEXT_LEN};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

const DEFAULT_ADDR: &str = "127.0.0.1:12345";
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// The conventional status of a program stopped by Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;
/// Passwords asked for at the prompt before the client gives up.
const PASSWORD_TRIES: u32 = 3;
const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

const USAGE: &str = "\
usage: chat-client [--addr HOST:PORT] NAME [PASSWORD] [--send TO TEXT | --who | --listen]

Logs in as NAME. The password is PASSWORD, else $CHAT_PASSWORD, else it is asked for
once the server is reached (not echoed on a terminal; three tries).
  --addr HOST:PORT  the server (default 127.0.0.1:12345)
  --send TO TEXT    send one message, print what became of it, exit
                    (status 0 if delivered or queued)
  --who             print who is online, exit
  --listen          print incoming messages until the connection ends
                    (status 1 when the server goes away)
  --version         show the version and exit
Every mode also prints the messages stored for NAME while they were offline.

Without --send, --who or --listen the client is interactive:
";

const HELP: &str = "\
commands:
  @name text          send text to name; name becomes your partner
  @\"two words\" text  the same, for a name with spaces in it
  text                send text to your current partner
  *text or * text     say text to the room (everyone online)
  /r text             reply to whoever wrote to you last (also /reply)
  /who                who is online
  /help               this help
  /quit               leave (so does end of input, Ctrl-D)";

/// What the user asked for on the command line.
struct Options {
    addr: String,
    name: String,
    password: Option<String>,
    mode: Mode,
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
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--version" | "-V" => return Ok(Parsed::Version),
            "--addr" => addr = args.next().ok_or("--addr needs HOST:PORT")?,
            "--send" => {
                let to = args.next().ok_or("--send needs TO and TEXT")?;
                let text = args.next().ok_or("--send needs TO and TEXT")?;
                mode = Mode::Send { to, text };
            }
            "--who" => mode = Mode::Who,
            "--listen" => mode = Mode::Listen,
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let name = positional.next().ok_or("NAME is missing")?;
    let password = positional.next();
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    Ok(Parsed::Run(Options {
        addr,
        name,
        password,
        mode,
    }))
}

fn main() -> ExitCode {
    let args = chatroom::config::utf8_args(std::env::args_os().skip(1)).map_err(|e| e.0);
    let options = match args.and_then(parse_options) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            println!("{USAGE}{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("chat-client {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("chat-client: {problem} (try `chat-client --help`)");
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
    let mut client = connect(&options.addr)?;
    let fixed_password = options
        .password
        .clone()
        .or_else(|| std::env::var("CHAT_PASSWORD").ok());
    let mut tries = 0;
    loop {
        let password = match &fixed_password {
            Some(password) => password.clone(),
            None => read_password(&mut stdin)?,
        };
        tries += 1;
        match log_in(&mut client, &options.name, &password) {
            Ok(()) => break,
            Err(Refusal::WrongPassword(problem))
                if fixed_password.is_none() && tries < PASSWORD_TRIES =>
            {
                eprintln!("{problem}; try again");
            }
            Err(Refusal::WrongPassword(problem) | Refusal::Other(problem)) => return Err(problem),
        }
    }
    let clock = Clock::local();
    let me = options.name.as_str();
    match options.mode {
        Mode::Send { to, text } => send_one(&mut client, me, &to, &text, &clock),
        Mode::Who => who(&mut client, me, &clock),
        Mode::Listen => {
            println!("logged in as {me}; listening (Ctrl-C to stop)");
            let last_sender = Mutex::new(None);
            print_incoming(client.reader(), me, &clock, &last_sender);
            Err(connection_ended(me))
        }
        Mode::Interactive => {
            println!(
                "logged in as {me} on {}; type /help for commands",
                options.addr
            );
            interactive(client, me, stdin, clock)
        }
    }
}

/// The sentence for a connection the server ended while we were logged in.
fn connection_ended(me: &str) -> String {
    format!(
        "the server closed the connection: {me} may have logged in elsewhere, \
         or the server stopped"
    )
}

/// Reads a password from the terminal without echo (or a line of piped input).
/// End of input (Ctrl-D) means the user would rather not: an error, not an empty
/// password.
fn read_password(stdin: &mut impl BufRead) -> Result<String, String> {
    // Echo goes off before the prompt appears, so nothing typed after it is shown.
    let echo_off = io::stdin().is_terminal() && set_echo(false);
    eprint!("password: ");
    let _ = io::stderr().flush();
    let mut line = Vec::new();
    let read = stdin.read_until(b'\n', &mut line);
    if echo_off {
        set_echo(true);
        eprintln!(); // the newline the user typed was not echoed either
    }
    match read {
        Ok(0) => Err("no password given (end of input)".to_string()),
        Ok(_) => {
            let line = String::from_utf8(line)
                .map_err(|_| "the password is not valid UTF-8".to_string())?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        }
        Err(error) => Err(format!("cannot read the password: {error}")),
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

fn connect(addr: &str) -> Result<Client, String> {
    Client::connect(addr).map_err(|error| {
        if error.kind() == io::ErrorKind::ConnectionRefused {
            format!(
                "cannot connect to {addr}: connection refused. Is the server running? Try `make run`."
            )
        } else {
            format!("cannot connect to {addr}: {error}")
        }
    })
}

/// Why a login did not go through.
enum Refusal {
    /// Worth asking for the password again.
    WrongPassword(String),
    Other(String),
}

/// Logs in on `client`, turning every way that can fail into a sentence.
fn log_in(client: &mut Client, name: &str, password: &str) -> Result<(), Refusal> {
    client
        .send_login(name, password)
        .map_err(|error| Refusal::Other(format!("cannot log in as {name:?}: {error}")))?;
    let flag = match client.read_reply() {
        Ok(Reply::Login { flag }) => flag,
        Ok(other) => {
            return Err(Refusal::Other(format!(
                "unexpected reply to the login: {other:?}"
            )));
        }
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            return Err(Refusal::Other(
                "the server closed the connection".to_string(),
            ));
        }
        Err(error) => {
            return Err(Refusal::Other(format!(
                "lost the connection while logging in: {error}"
            )));
        }
    };
    match Flag::from_wire(flag) {
        Some(Flag::Ok) => Ok(()),
        Some(Flag::Rejected) => Err(Refusal::WrongPassword(format!(
            "wrong name or password for {name:?}"
        ))),
        Some(Flag::Busy) => Err(Refusal::Other(
            "the server is busy (at its client limit); try again later".to_string(),
        )),
        Some(other) => Err(Refusal::Other(format!(
            "login refused: {}",
            other.describe()
        ))),
        None => Err(Refusal::Other(format!(
            "login refused with unknown flag {flag}"
        ))),
    }
}

/// `--send`: one message, its outcome, and an exit status to match. Everything else
/// that arrives first (stored or live messages) is printed as `--listen` would.
fn send_one(
    client: &mut Client,
    me: &str,
    to: &str,
    text: &str,
    clock: &Clock,
) -> Result<ExitCode, String> {
    warn_if_cut(text);
    client
        .send_chat(to, text)
        .map_err(|error| format!("cannot send: {error}"))?;
    let (flag, message) = show_until(client, me, clock, |reply| match reply {
        Reply::Chat { flag, message } if is_echo(message, me) => Some((*flag, *message)),
        _ => None,
    })?;
    println!("{}", outcome(flag, &message));
    let sent = matches!(Flag::from_wire(flag), Some(Flag::Ok | Flag::Queued));
    Ok(if sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}

/// `--who`: the online users, after whatever arrived first.
fn who(client: &mut Client, me: &str, clock: &Clock) -> Result<ExitCode, String> {
    client
        .send_users()
        .map_err(|error| format!("cannot ask who is online: {error}"))?;
    let users = show_until(client, me, clock, |reply| match reply {
        Reply::Users { .. } => Some(reply.clone()),
        _ => None,
    })?;
    show(&users, me, clock, &Mutex::new(None));
    Ok(ExitCode::SUCCESS)
}

/// Reads replies until `wanted` finds what it waits for in one, and returns that;
/// every reply before it (stored or live messages) is shown as `--listen` shows it, so
/// that none is lost.
fn show_until<T>(
    client: &mut Client,
    me: &str,
    clock: &Clock,
    wanted: impl Fn(&Reply) -> Option<T>,
) -> Result<T, String> {
    let last_sender = Mutex::new(None);
    loop {
        let reply = client.read_reply().map_err(|_| connection_ended(me))?;
        match wanted(&reply) {
            Some(found) => return Ok(found),
            None => show(&reply, me, clock, &last_sender),
        }
    }
}

/// The interactive loop: a thread prints what arrives, this one sends what is typed.
fn interactive(
    client: Client,
    me: &str,
    mut stdin: impl BufRead,
    clock: Clock,
) -> Result<ExitCode, String> {
    let (mut writer, mut reader) = client.split();
    let me_in_reader = me.to_string();
    let leaving = Arc::new(AtomicBool::new(false));
    let leaving_in_reader = Arc::clone(&leaving);
    // Who wrote to us last, for /r: the printer sets it, the typist reads it.
    let last_sender = Arc::new(Mutex::new(None));
    let last_sender_in_reader = Arc::clone(&last_sender);
    let printer = thread::spawn(move || {
        print_incoming(&mut reader, &me_in_reader, &clock, &last_sender_in_reader);
        if !leaving_in_reader.load(Ordering::Acquire) {
            // The main thread is blocked reading the terminal: end the process here.
            println!("{}", connection_ended(&me_in_reader));
            std::process::exit(i32::from(EXIT_FAILURE));
        }
    });
    let mut partner: Option<String> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(line) = std::str::from_utf8(&line) else {
            // A GBK terminal, say: the server's names and texts are UTF-8.
            println!("(that line is not UTF-8 and was not sent; is your terminal set to UTF-8?)");
            continue;
        };
        let line = line.trim_end_matches(['\r', '\n']);
        let last = last_sender
            .lock()
            .expect("the printer never panics holding it")
            .clone();
        let request = match parse_line(line, &mut partner, last.as_deref()) {
            Input::Quit => break,
            Input::Nothing => continue,
            Input::Say(text) => {
                println!("{text}");
                continue;
            }
            Input::Chat { to, text } => {
                warn_if_cut(&text);
                chat_bytes(&to, &text)
            }
            Input::Who => Ok(chatroom::protocol::users_request()),
        };
        match request {
            Ok(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    break;
                }
            }
            Err(problem) => println!("{problem}"),
        }
    }
    // Stop sending but keep reading: the server answers what is in flight, sees our
    // EOF and hangs up, and the printer shows every last outcome before we exit.
    leaving.store(true, Ordering::Release);
    let _ = writer.shutdown(std::net::Shutdown::Write);
    let _ = printer.join();
    Ok(ExitCode::SUCCESS)
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
            "help" => Input::Say(HELP.to_string()),
            "r" | "reply" => match last_sender {
                None => Input::Say("nobody has written to you yet".to_string()),
                Some(to) => address(to, text, partner),
            },
            other => Input::Say(format!("unknown command /{other}; type /help")),
        };
    }
    if let Some(rest) = line.strip_prefix('@') {
        let (to, text) = match rest.strip_prefix('"') {
            // @"alice smith" text: a name with spaces.
            Some(quoted) => match quoted.split_once('"') {
                Some((to, text)) => (to, text.strip_prefix(' ').unwrap_or(text)),
                None => return Input::Say("usage: @\"name with spaces\" text".to_string()),
            },
            None => rest.split_once(' ').unwrap_or((rest, "")),
        };
        if to.is_empty() {
            return Input::Say("usage: @name text".to_string());
        }
        return address(to, text, partner);
    }
    if let Some(text) = line.strip_prefix('*') {
        let text = text.strip_prefix(' ').unwrap_or(text);
        if text.is_empty() {
            return Input::Say("usage: *text (to the room)".to_string());
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
        None => Input::Say("to whom? start with @name text (or *text for the room)".to_string()),
    }
}

/// `to` becomes the partner; `text`, if any, goes to them.
fn address(to: &str, text: &str, partner: &mut Option<String>) -> Input {
    *partner = Some(to.to_string());
    if text.is_empty() {
        return Input::Say(format!("now talking to {to}"));
    }
    Input::Chat {
        to: to.to_string(),
        text: text.to_string(),
    }
}

fn chat_bytes(to: &str, text: &str) -> Result<Vec<u8>, String> {
    let receiver = chatroom::protocol::Name::new(to)
        .map_err(|_| format!("{to:?} is too long to be a user name"))?;
    let message = ChatMessage {
        sender: chatroom::protocol::Name::EMPTY,
        receiver,
        text: chatroom::protocol::MessageText::truncated(text),
    };
    Ok(chatroom::protocol::chat_request(&message))
}

fn warn_if_cut(text: &str) {
    if text.len() > TEXT_LEN {
        println!("(message cut to {TEXT_LEN} bytes, the protocol's limit)");
    }
}

/// Prints every reply until the connection ends.
fn print_incoming(
    reader: &mut impl Read,
    me: &str,
    clock: &Clock,
    last_sender: &Mutex<Option<String>>,
) {
    while let Ok(reply) = chatroom::blocking_client::read_reply(reader) {
        show(&reply, me, clock, last_sender);
    }
}

/// Prints one reply: our own messages' outcomes, others' messages with the time they
/// arrived, who is online.
fn show(reply: &Reply, me: &str, clock: &Clock, last_sender: &Mutex<Option<String>>) {
    match reply {
        Reply::Chat { flag, message } if is_echo(message, me) => {
            println!("{}", outcome(*flag, message));
        }
        Reply::Chat { message, .. } => {
            let room = if message.receiver.as_bytes() == ROOM.as_bytes() {
                "[room] "
            } else {
                ""
            };
            // Remembered before it is shown: whoever reads it on screen and types /r
            // must find it.
            if let Ok(mut last) = last_sender.lock() {
                *last = Some(message.sender.to_lossy());
            }
            println!(
                "[{}] {room}{}: {}",
                clock.now(),
                message.sender,
                message.text
            );
        }
        Reply::Users { flag, names } if *flag == Flag::Ok.to_wire() => {
            println!("online: {}", names.join(", "))
        }
        Reply::Users { flag, .. } => println!("(who is online: {})", describe(*flag)),
        Reply::Login { flag } => println!("(login: {})", describe(*flag)),
        Reply::Other(feedback) => println!("(server: {})", describe(feedback.flag)),
    }
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
        let utc = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64);
        let of_day = (utc + self.offset_secs).rem_euclid(SECONDS_PER_DAY);
        format!(
            "{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        )
    }
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

/// An echo of our own message (the server always writes our name as its sender).
fn is_echo(message: &ChatMessage, me: &str) -> bool {
    message.sender.as_bytes() == me.as_bytes()
}

/// What became of one of our messages, in words.
fn outcome(flag: i32, message: &ChatMessage) -> String {
    let to = &message.receiver;
    match Flag::from_wire(flag) {
        Some(Flag::Ok) if to.as_bytes() == ROOM.as_bytes() => "(said to the room)".to_string(),
        Some(Flag::Ok) => format!("(delivered to {to})"),
        Some(Flag::Queued) => format!("(queued: {to} is offline and gets it at their next login)"),
        Some(Flag::Rejected) => format!("(not sent: there is no user {to})"),
        Some(Flag::MailboxFull) => {
            format!("(not sent: {to} is offline and their mailbox, or the server's store, is full)")
        }
        Some(Flag::NotStored) => format!(
            "(not sent: {to} is offline and the server could not store it: a disk or file \
             problem on the server, such as a full disk; its log says which)"
        ),
        Some(other) => format!("(not sent: {})", other.describe()),
        None => format!("(not sent: unknown flag {flag})"),
    }
}

fn describe(flag: i32) -> String {
    match Flag::from_wire(flag) {
        Some(flag) => flag.describe().to_string(),
        None => format!("unknown flag {flag}"),
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

    #[test]
    fn utc_offsets_parse() {
        assert_eq!(parse_utc_offset("+0800\n"), Some(8 * 3600));
        assert_eq!(parse_utc_offset("-0530"), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_utc_offset("UTC"), None);
    }
}
