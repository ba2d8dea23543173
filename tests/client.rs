//! `chat-client` driven through its real stdin and stdout against an in-process server.

mod common;

use chatroom::users::Directory;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

const CLIENT: &str = env!("CARGO_BIN_EXE_chat-client");

/// A running interactive client: type into it, read its lines.
struct Terminal {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Terminal {
    fn open(addr: SocketAddr, args: &[&str]) -> Terminal {
        let mut child = client_command(&addr.to_string(), args)
            .stderr(Stdio::null())
            .spawn()
            .expect("start chat-client");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Terminal {
            child,
            stdin,
            lines,
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next printed line containing `words` (earlier lines are skipped).
    fn expect_line(&self, words: &str) -> String {
        next_line_with(&self.lines, words, "chat-client")
    }

    fn exit_code(mut self) -> Option<i32> {
        drop(self.stdin.take());
        self.child.wait().unwrap().code()
    }
}

/// `chat-client --addr ADDR ARGS…` with piped stdin and stdout and no password in its
/// environment.
fn client_command(addr: &str, args: &[&str]) -> Command {
    let mut command = Command::new(CLIENT);
    command
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env_remove("CHAT_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    command
}

/// Runs the client to completion with `stdin` as its input.
fn run_client(addr: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = client_command(addr, args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn interactive_commands_chat_privately_in_the_room_and_list_who_is_online() {
    let server = start();
    let mut friend = logged_in(server.addr(), "玛卡巴卡");
    let mut terminal = Terminal::open(server.addr(), &["似末", PASSWORD]);
    terminal.expect_line("logged in as 似末");

    terminal.type_line("@玛卡巴卡 你好");
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "你好");
    terminal.expect_line("(delivered to 玛卡巴卡)");

    terminal.type_line("and a bare line goes to the partner");
    let (_, message) = next_chat(&mut friend);
    assert_eq!(
        message.text.to_lossy(),
        "and a bare line goes to the partner"
    );
    terminal.expect_line("(delivered to 玛卡巴卡)");

    friend.send_chat("似末", "hi back").unwrap();
    assert_eq!(next_chat(&mut friend).0, 1, "the friend's echo");
    terminal.expect_line("玛卡巴卡: hi back");

    terminal.type_line("* hello room");
    let (_, message) = next_chat(&mut friend);
    assert_eq!(message.receiver.to_lossy(), "*");
    terminal.expect_line("(said to the room)");
    friend.send_chat("*", "room reply").unwrap();
    terminal.expect_line("[room] 玛卡巴卡: room reply");

    terminal.type_line("/who");
    terminal.expect_line("online: 似末, 玛卡巴卡");
    terminal.type_line("@1003 are you there?");
    terminal.expect_line("queued: 1003 is offline");
    terminal.type_line("@nobody hello");
    terminal.expect_line("there is no user nobody");
    terminal.type_line("/help");
    terminal.expect_line("/who");
    terminal.type_line("/quit");
    assert_eq!(terminal.exit_code(), Some(0));
}

#[test]
fn interactive_reads_the_password_from_stdin_and_leaves_at_eof() {
    let server = start();
    let mut friend = logged_in(server.addr(), "1002");
    let output = run_client(
        &server.addr().to_string(),
        &["1001"],
        "123456\n@1002 from a pipe\n",
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "from a pipe");
    assert!(text(&output.stdout).contains("(delivered to 1002)"));
}

#[test]
fn send_mode_reports_delivered_queued_and_refused() {
    let server = start();
    let addr = server.addr().to_string();
    let mut friend = logged_in(server.addr(), "1002");
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", "one shot"], "");
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("delivered to 1002"));
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "one shot");

    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1003", "later"], "");
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("queued"));

    let output = run_client(&addr, &["1001", PASSWORD, "--send", "nobody", "x"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("there is no user nobody"));
}

#[test]
fn send_mode_takes_the_password_from_the_environment() {
    let server = start();
    let output = Command::new(CLIENT)
        .args([
            "--addr",
            &server.addr().to_string(),
            "1001",
            "--send",
            "1001",
            "me",
        ])
        .env("CHAT_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn listen_mode_prints_incoming_until_the_connection_ends() {
    let server = start();
    let listener = Terminal::open(server.addr(), &["花开富贵", PASSWORD, "--listen"]);
    listener.expect_line("listening");
    let mut friend = logged_in(server.addr(), "1001");
    friend.send_chat("花开富贵", "are you listening?").unwrap();
    listener.expect_line("1001: are you listening?");
    drop(server); // the server stops: the connection ends
    assert_eq!(listener.exit_code(), Some(0));
}

#[test]
fn errors_are_sentences_a_person_can_act_on() {
    let server = start_with(Directory::built_in(), |config| config.max_clients = 1);
    let addr = server.addr().to_string();

    let output = run_client(&addr, &["1001", "wrong", "--send", "1002", "x"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("wrong name or password"),
        "{}",
        text(&output.stderr)
    );

    let _held = logged_in(server.addr(), "1002");
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", "x"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("busy"),
        "{}",
        text(&output.stderr)
    );
    drop(_held);
    drop(server);

    // Nothing listens on the port now.
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", "x"], "");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("connection refused") && stderr.contains("make run"),
        "{stderr}"
    );

    let output = run_client(&addr, &["--bogus"], "");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_server_that_closes_the_connection_is_reported() {
    // A "server" that accepts and hangs up at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hang_up = thread::spawn(move || drop(listener.accept().unwrap()));
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", "x"], "");
    hang_up.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("closed the connection"),
        "{}",
        text(&output.stderr)
    );
}
