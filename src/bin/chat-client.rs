//! `chat-client`: the companion terminal client, in the spirit of the original: one
//! thread prints what the server sends, the other sends what the user types.
//!
//! ```text
//! chat-client [--addr HOST:PORT] NAME [PASSWORD]            interactive
//! chat-client [--addr HOST:PORT] NAME [PASSWORD] --send TO TEXT   send one, exit
//! chat-client [--addr HOST:PORT] NAME [PASSWORD] --listen   print incoming until the end
//! ```
//! Without PASSWORD the password comes from `CHAT_PASSWORD`, or else one line of stdin.
#![forbid(unsafe_code)]

use chatroom::client::{Client, Reply};
use chatroom::protocol::{ChatMessage, Flag, ROOM, TEXT_LEN};
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

const DEFAULT_ADDR: &str = "127.0.0.1:12345";
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

const USAGE: &str = "\
usage: chat-client [--addr HOST:PORT] NAME [PASSWORD] [--send TO TEXT | --listen]

Logs in as NAME (password: PASSWORD, else $CHAT_PASSWORD, else one line of stdin).
  --addr HOST:PORT  the server (default 127.0.0.1:12345)
  --send TO TEXT    send one message, print what became of it, exit
                    (status 0 if delivered or queued)
  --listen          print incoming messages until the connection ends";

const HELP: &str = "\
commands:
  @name text   send text to name; name becomes your partner
  text         send text to your current partner
  * text       say text to the room (everyone online)
  /who         who is online
  /help        this help
  /quit        leave (so does end of input, Ctrl-D)";

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
    Listen,
}

fn parse_options(args: Vec<String>) -> Result<Option<Options>, String> {
    let mut addr = DEFAULT_ADDR.to_string();
    let mut mode = Mode::Interactive;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--addr" => addr = args.next().ok_or("--addr needs HOST:PORT")?,
            "--send" => {
                let to = args.next().ok_or("--send needs TO and TEXT")?;
                let text = args.next().ok_or("--send needs TO and TEXT")?;
                mode = Mode::Send { to, text };
            }
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
    Ok(Some(Options {
        addr,
        name,
        password,
        mode,
    }))
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1).collect()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
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
    let password = match options.password.clone() {
        Some(password) => password,
        None => match std::env::var("CHAT_PASSWORD") {
            Ok(password) => password,
            Err(_) => read_password(&mut stdin)?,
        },
    };
    let mut client = log_in(&options, &password)?;
    match options.mode {
        Mode::Send { to, text } => send_one(&mut client, &options.name, &to, &text),
        Mode::Listen => {
            println!("logged in as {}; listening (Ctrl-C to stop)", options.name);
            print_incoming(client.reader(), &options.name);
            Ok(ExitCode::SUCCESS)
        }
        Mode::Interactive => {
            println!(
                "logged in as {} on {}; type /help for commands",
                options.name, options.addr
            );
            interactive(client, &options.name, stdin);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_password(stdin: &mut impl BufRead) -> Result<String, String> {
    eprint!("password: ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|error| format!("cannot read the password: {error}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Connects and logs in, turning every way that can fail into a sentence.
fn log_in(options: &Options, password: &str) -> Result<Client, String> {
    let mut client = Client::connect(&options.addr).map_err(|error| {
        if error.kind() == io::ErrorKind::ConnectionRefused {
            format!(
                "cannot connect to {}: connection refused. Is the server running? Try `make run`.",
                options.addr
            )
        } else {
            format!("cannot connect to {}: {error}", options.addr)
        }
    })?;
    client
        .send_login(&options.name, password)
        .map_err(|error| format!("cannot log in as {:?}: {error}", options.name))?;
    let flag = match client.read_reply() {
        Ok(Reply::Login { flag }) => flag,
        Ok(other) => return Err(format!("unexpected reply to the login: {other:?}")),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            return Err("the server closed the connection".to_string());
        }
        Err(error) => return Err(format!("lost the connection while logging in: {error}")),
    };
    match Flag::from_wire(flag) {
        Some(Flag::Ok) => Ok(client),
        Some(Flag::Rejected) => Err(format!("wrong name or password for {:?}", options.name)),
        Some(Flag::Busy) => {
            Err("the server is busy (at its client limit); try again later".to_string())
        }
        Some(other) => Err(format!("login refused: {}", other.describe())),
        None => Err(format!("login refused with unknown flag {flag}")),
    }
}

/// `--send`: one message, its outcome, and an exit status to match.
fn send_one(client: &mut Client, me: &str, to: &str, text: &str) -> Result<ExitCode, String> {
    warn_if_cut(text);
    client
        .send_chat(to, text)
        .map_err(|error| format!("cannot send: {error}"))?;
    loop {
        match client.read_reply() {
            Ok(Reply::Chat { flag, message }) if is_echo(&message, me) => {
                println!("{}", outcome(flag, &message));
                let sent = matches!(Flag::from_wire(flag), Some(Flag::Ok | Flag::Queued));
                return Ok(if sent {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(EXIT_FAILURE)
                });
            }
            Ok(_) => {} // someone else's message arrived first
            Err(_) => return Err("the server closed the connection".to_string()),
        }
    }
}

/// The interactive loop: a thread prints what arrives, this one sends what is typed.
fn interactive(client: Client, me: &str, stdin: impl BufRead) {
    let (mut writer, mut reader) = client.split();
    let me_in_reader = me.to_string();
    let leaving = Arc::new(AtomicBool::new(false));
    let leaving_in_reader = Arc::clone(&leaving);
    let printer = thread::spawn(move || {
        print_incoming(&mut reader, &me_in_reader);
        if !leaving_in_reader.load(Ordering::Acquire) {
            // The main thread is blocked reading the terminal: end the process here.
            println!("the server closed the connection");
            std::process::exit(i32::from(EXIT_FAILURE));
        }
    });
    let mut partner: Option<String> = None;
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let line = line.trim_end_matches('\r');
        let request = match parse_line(line, &mut partner) {
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
}

/// What one typed line means.
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

fn parse_line(line: &str, partner: &mut Option<String>) -> Input {
    if line.trim().is_empty() {
        return Input::Nothing;
    }
    if let Some(command) = line.strip_prefix('/') {
        return match command.trim() {
            "quit" | "exit" => Input::Quit,
            "who" => Input::Who,
            "help" => Input::Say(HELP.to_string()),
            other => Input::Say(format!("unknown command /{other}; type /help")),
        };
    }
    if let Some(rest) = line.strip_prefix('@') {
        let (to, text) = rest.split_once(' ').unwrap_or((rest, ""));
        if to.is_empty() {
            return Input::Say("usage: @name text".to_string());
        }
        *partner = Some(to.to_string());
        if text.is_empty() {
            return Input::Say(format!("now talking to {to}"));
        }
        return Input::Chat {
            to: to.to_string(),
            text: text.to_string(),
        };
    }
    if let Some(text) = line.strip_prefix("* ") {
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
        None => Input::Say("to whom? start with @name text (or * text for the room)".to_string()),
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
fn print_incoming(reader: &mut impl io::Read, me: &str) {
    while let Ok(reply) = chatroom::client::read_reply(reader) {
        match reply {
            Reply::Chat { flag, message } if is_echo(&message, me) => {
                println!("{}", outcome(flag, &message));
            }
            Reply::Chat { message, .. } if message.receiver.as_bytes() == ROOM.as_bytes() => {
                println!("[room] {}: {}", message.sender, message.text);
            }
            Reply::Chat { message, .. } => println!("{}: {}", message.sender, message.text),
            Reply::Users { flag, names } if flag == Flag::Ok.to_wire() => {
                println!("online: {}", names.join(", "))
            }
            Reply::Users { flag, .. } => println!("(who is online: {})", describe(flag)),
            Reply::Login { flag } => println!("(login: {})", describe(flag)),
            Reply::Other(feedback) => println!("(server: {})", describe(feedback.flag)),
        }
    }
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
