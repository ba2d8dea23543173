//! `chat-client` run as a user runs it, for tests/client.rs and tests/original.rs: a
//! running interactive client to type into and read lines from, or a whole run with
//! its output.
#![allow(dead_code)] // each test binary uses a different part of this module

use crate::common::next_line_with;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

pub const CLIENT: &str = env!("CARGO_BIN_EXE_chat-client");

/// A running interactive client: type into it, read its lines.
pub struct Terminal {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: mpsc::Receiver<String>,
}

impl Terminal {
    pub fn open(addr: SocketAddr, args: &[&str]) -> Terminal {
        Terminal::open_with_stderr(addr, args).0
    }

    /// An interactive client logged in as `name` with the test password: it has said so.
    pub fn logged_in(addr: SocketAddr, name: &str) -> Terminal {
        let terminal = Terminal::open(addr, &[name, crate::common::PASSWORD]);
        terminal.expect_line(&format!("logged in as {name}"));
        terminal
    }

    /// Like [`Terminal::open`], with the client's stderr as lines too.
    pub fn open_with_stderr(addr: SocketAddr, args: &[&str]) -> (Terminal, mpsc::Receiver<String>) {
        Terminal::open_with_env(addr, args, &[])
    }

    /// Like [`Terminal::open_with_stderr`], with the variables `env` (name, value) set
    /// for the client: a locale, say.
    pub fn open_with_env(
        addr: SocketAddr,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Terminal, mpsc::Receiver<String>) {
        let mut child = client_command(&addr.to_string(), args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-client");
        let lines = lines_of(child.stdout.take().unwrap());
        let errors = lines_of(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        let terminal = Terminal {
            child,
            stdin,
            lines,
        };
        (terminal, errors)
    }

    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next printed line containing `words` (earlier lines are skipped).
    pub fn expect_line(&self, words: &str) -> String {
        next_line_with(&self.lines, words, "chat-client")
    }

    pub fn exit_code(mut self) -> Option<i32> {
        drop(self.stdin.take());
        self.child.wait().unwrap().code()
    }
}

/// The lines `output` prints, as a thread reads them.
pub fn lines_of(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The locale variables that choose the client's language (`chatroom::i18n`).
pub const LOCALE_VARIABLES: [&str; 3] = chatroom::i18n::LOCALE_VARIABLES;

/// A Chinese locale, as a reader of the article has it.
pub const ZH_LOCALE: &str = "zh_CN.UTF-8";

/// `chat-client --addr ADDR ARGS…` with piped stdin and stdout, no password in its
/// environment and no locale ([`client`]): a test that wants Chinese sets one.
pub fn client_command(addr: &str, args: &[&str]) -> Command {
    let mut command = client();
    command
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env_remove("CHAT_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    command
}

/// `chat-client` with no locale in its environment: it speaks English, whatever the
/// tests' own locale.
pub fn client() -> Command {
    let mut command = Command::new(CLIENT);
    for name in LOCALE_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Runs the client to completion with `stdin` as its input.
pub fn run_client(addr: &str, args: &[&str], stdin: &str) -> Output {
    run_client_with_env(addr, args, &[], stdin)
}

/// Like [`run_client`], with the variables `env` (name, value) set for the client.
pub fn run_client_with_env(addr: &str, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = client_command(addr, args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-client");
    // The client may be gone before it reads its input (it could not connect, say):
    // a broken pipe here is its business, and its output says what happened.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
