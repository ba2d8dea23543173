//! `chat-client`: the companion terminal client, in the spirit of the original: one
//! thread shows what the server sends, the other sends what the user types.
//!
//! ```text
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD]                  interactive
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD] --send TO TEXT   send one, exit
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD] --who            who is online, exit
//! chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD] --listen         show incoming until the end
//! ```
//!
//! This file connects, logs in and hands over to a mode; each other file has one job:
//!
//! | file | its job |
//! |---|---|
//! | `options.rs` | the command line |
//! | `terminal.rs` | the password without echo, every line printed, the prompt |
//! | `transport.rs` | connecting, logging in, frames in and out, why a connection ended |
//! | `modes.rs` | `--send`, `--who`, `--listen` |
//! | `interactive.rs` | the chat: typing, showing, reconnecting |
//! | `input.rs` | what a typed line means |
//! | `screen.rs` | what is shown and what is waited for |
//! | `receipts.rs` | acknowledgements, read receipts, the marks of our messages |
//! | `parts.rs` | long messages split into parts and joined again |
//! | `visible.rs` | text from the network made safe for a terminal |
//! | `clock.rs` | local times of day |
//! | `say.rs` | every sentence, in English and in Chinese |
//!
//! Whatever the server sends is shown, in every mode: logging in hands over the messages
//! stored while the user was offline. It speaks to the original C++ server as the
//! article's Qt client does (its own name in the sender field; its echo found by that
//! name, before or after the delivery), and waits for no answer forever. It speaks
//! Chinese when the locale says so (`chatroom::i18n`).
#![forbid(unsafe_code)]

mod clock;
mod input;
mod interactive;
mod modes;
mod options;
mod parts;
mod receipts;
mod say;
mod screen;
mod terminal;
mod transport;
mod visible;

use chatroom::i18n::Lang;
use options::{Mode, Parsed, parse_options};
use screen::Screen;
use std::io;
use std::process::ExitCode;
use transport::{Account, Refusal};

/// The status of a run that failed.
const EXIT_FAILURE: u8 = 1;
/// The status of a command line that makes no sense.
const EXIT_USAGE: u8 = 2;
/// Passwords asked for at the prompt before the client gives up.
const PASSWORD_TRIES: u32 = 3;

fn main() -> ExitCode {
    // Before anything is said: a usage error is said in the user's language too.
    say::set_lang(Lang::from_env());
    // The library's sentence is English (the server's too); the index it names is lost
    // in Chinese, where the line says what to check.
    let args = chatroom::config::utf8_args(std::env::args_os().skip(1))
        .map_err(|error| say::lang().pick(error.0, say::args_not_utf8()));
    let options = match args.and_then(parse_options) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            terminal::lines(&format!("{}{}", say::usage(), say::help()));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            terminal::line(&format!("chat-client {}", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            terminal::error_line(&say::usage_error(&problem));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(options) {
        Ok(code) => code,
        Err(problem) => {
            terminal::error_line(&format!("chat-client: {problem}"));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run(options: options::Options) -> Result<ExitCode, String> {
    let mut stdin = io::stdin().lock();
    let account = Account {
        addr: options.addr,
        name: options.name,
        trace: options.trace,
        receipts: options.receipts,
    };
    // Connect first: a server that is not there should not cost a typed password.
    let (mut outgoing, mut incoming) = account.connect()?;
    let fixed_password = options
        .password
        .clone()
        .or_else(|| std::env::var("CHAT_PASSWORD").ok());
    let mut tries = 0;
    let (password, (receipts, login_ms)) = loop {
        let password = match &fixed_password {
            Some(password) => password.clone(),
            None => terminal::read_password(&mut stdin)?,
        };
        tries += 1;
        match account.log_in(&mut outgoing, &mut incoming, &password) {
            Ok(logged_in) => break (password, logged_in),
            Err(Refusal::WrongPassword(problem))
                if fixed_password.is_none() && tries < PASSWORD_TRIES =>
            {
                terminal::error_line(&say::try_again(&problem));
            }
            Err(Refusal::WrongPassword(problem) | Refusal::Other(problem)) => return Err(problem),
        }
    };
    let mut screen = Screen::new(&account.name, clock::Clock::local());
    screen.receipts = receipts;
    screen.login_ms = login_ms;
    match options.mode {
        Mode::Send { to, text } => {
            modes::send_one(&mut outgoing, &mut incoming, &mut screen, &to, &text)
        }
        Mode::Who => modes::who(&mut outgoing, &mut incoming, &mut screen),
        Mode::Listen => modes::listen(&account, &mut outgoing, &mut incoming, &mut screen),
        Mode::Interactive => {
            interactive::interactive(account, password, (outgoing, incoming), screen, stdin)
        }
    }
}
