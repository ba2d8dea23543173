//! `chat-client` driven through its real stdin and stdout against an in-process server.

mod common;
mod terminal;

use chatroom::blocking_client::{Client, Reply};
use chatroom::message_id::{first_of_ms, now_ms, sent_at_ms};
use chatroom::protocol::Kind;
use chatroom::users::Accounts;
use common::minimal::Minimal;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use terminal::*;

#[test]
fn interactive_commands_chat_privately_in_the_room_and_list_who_is_online() {
    let server = start();
    let mut friend = logged_in(server.addr(), "玛卡巴卡");
    let mut terminal = Terminal::logged_in(server.addr(), "似末");

    terminal.type_line("@玛卡巴卡 你好");
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "你好");
    // The friend has no receipts: written to its connection is as far as it goes.
    terminal.expect_line("似末 → 玛卡巴卡: 你好 (sent)");

    terminal.type_line("and a bare line goes to the partner");
    let (_, message) = next_chat(&mut friend);
    assert_eq!(
        message.text.to_lossy(),
        "and a bare line goes to the partner"
    );
    terminal.expect_line("似末 → 玛卡巴卡: and a bare line goes to the partner (sent)");

    friend.send_chat("似末", "hi back").unwrap();
    assert_eq!(next_chat(&mut friend).0, 1, "the friend's echo");
    terminal.expect_line("玛卡巴卡: hi back");

    terminal.type_line("* hello room");
    let (_, message) = next_chat(&mut friend);
    assert_eq!(message.receiver.to_lossy(), "*");
    terminal.expect_line("(said to the room: 1 other user is online)");
    friend.send_chat("*", "room reply").unwrap();
    terminal.expect_line("[room] 玛卡巴卡: room reply");

    terminal.type_line("/who");
    terminal.expect_line("online: 似末, 玛卡巴卡");
    terminal.type_line("@1003 are you there?");
    terminal.expect_line("似末 → 1003: are you there? (stored for later)");
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
    assert!(text(&output.stdout).contains("1001 → 1002: from a pipe (sent)"));
}

#[test]
fn send_mode_reports_delivered_queued_and_refused() {
    let server = start();
    let addr = server.addr().to_string();
    let mut friend = logged_in(server.addr(), "1002");
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", "one shot"], "");
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("1001 → 1002: one shot (sent)"));
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "one shot");

    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1003", "later"], "");
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("1001 → 1003: later (stored for later)"));

    let output = run_client(&addr, &["1001", PASSWORD, "--send", "nobody", "x"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("there is no user nobody"));
}

#[test]
fn send_mode_takes_the_password_from_the_environment() {
    let server = start();
    let output = client()
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
    // Scripts must know: the end of the connection is a failure, with a message.
    assert_eq!(listener.exit_code(), Some(1));
}

#[test]
fn listen_mode_says_why_it_ended() {
    let server = start();
    let addr = server.addr().to_string();
    let mut child = client_command(&addr, &["1001", PASSWORD, "--listen"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("listening"), "{first}");
    // A newer login of the same name takes over.
    let _newer = logged_in(server.addr(), "1001");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("1001 logged in elsewhere") && stderr.contains("logged out"),
        "the newer login is named as the cause, not a server that stopped: {stderr}"
    );
}

/// Sends `message` to 1002, who is offline, with `chat-client --send`: stored for later.
fn store_for_1002(addr: &str, message: &str) {
    let output = run_client(addr, &["1001", PASSWORD, "--send", "1002", message], "");
    assert!(text(&output.stdout).contains("(stored for later)"));
}

#[test]
fn send_mode_prints_the_senders_own_stored_messages_before_it_exits() {
    let server = start();
    let addr = server.addr().to_string();
    store_for_1002(&addr, "kept for you");
    // 1002 logs in only to send: the message stored for it must reach the user.
    let output = run_client(&addr, &["1002", PASSWORD, "--send", "1003", "x"], "");
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("1001: kept for you"), "{stdout}");
    // And --who does the same.
    run_client(&addr, &["1001", PASSWORD, "--send", "1002", "again"], "");
    let output = run_client(&addr, &["1002", PASSWORD, "--who"], "");
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("1001: again"), "{stdout}");
    assert!(stdout.contains("online: 1002"), "{stdout}");
}

#[test]
fn incoming_messages_carry_the_time_of_day() {
    let server = start();
    let listener = Terminal::open(server.addr(), &["1002", PASSWORD, "--listen"]);
    listener.expect_line("listening");
    let mut friend = logged_in(server.addr(), "1001");
    friend.send_chat("1002", "what time is it?").unwrap();
    let line = listener.expect_line("1001: what time is it?");
    let bytes = line.as_bytes();
    assert!(
        line.len() > 11
            && bytes[0] == b'['
            && bytes[3] == b':'
            && bytes[6] == b':'
            && bytes[9] == b']'
            && [1, 2, 4, 5, 7, 8]
                .iter()
                .all(|&i| bytes[i].is_ascii_digit()),
        "{line}"
    );
}

#[test]
fn a_name_with_spaces_is_addressed_in_quotes_and_the_last_sender_with_slash_r() {
    let users = Accounts::parse("alice smith:pw\nbob:pw\n".as_bytes()).unwrap();
    let server = start_with(users, |_| {});
    let mut alice = chatroom::blocking_client::Client::connect(server.addr()).unwrap();
    alice.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(alice.login("alice smith", "pw").unwrap(), 1);
    let mut terminal = Terminal::open(server.addr(), &["bob", "pw"]);
    terminal.expect_line("logged in as bob");
    terminal.type_line("@\"alice smith\" hi alice");
    assert_eq!(next_chat(&mut alice).1.text.to_lossy(), "hi alice");
    terminal.expect_line("bob → alice smith: hi alice (sent)");
    alice.send_chat("bob", "hi bob").unwrap();
    terminal.expect_line("alice smith: hi bob");
    terminal.type_line("/r and back");
    // Alice's own echo and bob's reply, in either order: bob may answer before the
    // server's thread for alice has written her echo.
    let mut texts =
        [next_chat(&mut alice), next_chat(&mut alice)].map(|(_, message)| message.text.to_lossy());
    texts.sort();
    assert_eq!(texts, ["and back", "hi bob"]);
    terminal.type_line("*to the room without a space");
    let (_, message) = next_chat(&mut alice);
    assert_eq!(message.receiver.to_lossy(), "*");
    assert_eq!(message.text.to_lossy(), "to the room without a space");
    terminal.type_line("/help");
    terminal.expect_line("@\"two words\" text");
    terminal.type_line("/quit");
    assert_eq!(terminal.exit_code(), Some(0));
}

#[test]
fn a_line_that_is_not_utf8_is_dropped_with_a_word_and_the_session_goes_on() {
    let server = start();
    let mut friend = logged_in(server.addr(), "1002");
    let mut terminal = Terminal::logged_in(server.addr(), "1001");
    // 你好 in GBK.
    let stdin = terminal.stdin.as_mut().unwrap();
    stdin.write_all(b"@1002 \xC4\xE3\xBA\xC3\n").unwrap();
    stdin.flush().unwrap();
    terminal.expect_line("not UTF-8");
    terminal.type_line("@1002 still here");
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "still here");
    terminal.type_line("/quit");
    assert_eq!(terminal.exit_code(), Some(0));
}

#[test]
fn arguments_that_are_not_utf8_are_one_line_and_status_2() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let gbk_name = OsStr::from_bytes(b"\xC4\xE3\xBA\xC3");
    for binary in [CLIENT, env!("CARGO_BIN_EXE_chat-server")] {
        let output = Command::new(binary)
            .env_remove("LC_ALL") // the English sentence, whatever the tests' locale
            .env_remove("LC_MESSAGES")
            .env_remove("LANG")
            .arg(gbk_name)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{binary}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("not valid UTF-8"), "{binary}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{binary}: {stderr}");
    }
}

#[test]
fn a_wrong_password_at_the_prompt_is_asked_again_up_to_three_times() {
    let server = start();
    let addr = server.addr().to_string();
    let mut friend = logged_in(server.addr(), "1002");
    let output = run_client(&addr, &["1001"], "wrong\n123456\n@1002 second try\n");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("try again"));
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "second try");

    let output = run_client(&addr, &["1001"], "one\ntwo\nthree\nfour\n");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.matches("password:").count(), 3, "{stderr}");
}

#[test]
fn end_of_input_at_the_password_prompt_quits_without_logging_in() {
    let server = start();
    let output = run_client(&server.addr().to_string(), &["1001"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no password given"));
}

#[test]
fn an_unreachable_server_is_reported_before_the_password_is_asked() {
    let (_bound, addr) = refused_addr(); // nothing listens there
    let output = run_client(&addr, &["1001"], "123456\n");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(!stderr.contains("password:"), "{stderr}");
}

/// On a real terminal the password is not echoed. `script` gives the client a
/// pseudo-terminal; skipped where util-linux's `script` is missing.
#[test]
fn the_password_is_not_echoed_on_a_terminal() {
    let server = start();
    let command = format!("{CLIENT} --addr {} 1001", server.addr());
    let spawned = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("CHAT_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("skipped: `script` (util-linux) is not available");
        return;
    };
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, output) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut stdout = stdout;
        let mut chunk = [0; 256];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut chunk) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        }
    });
    let wait_for = |words: &str| loop {
        match output.recv_timeout(READ_TIMEOUT) {
            Ok(seen) if seen.contains(words) => return seen,
            Ok(_) => {}
            Err(_) => panic!("the client never printed {words:?}"),
        }
    };
    wait_for("password:");
    stdin.write_all(b"123456\r").unwrap();
    let seen = wait_for("logged in as 1001");
    stdin.write_all(b"/quit\r").unwrap();
    drop(stdin);
    let _ = child.wait();
    assert!(
        !seen.contains("123456"),
        "the password was echoed: {seen:?}"
    );
}

#[test]
fn version_and_help_say_what_the_client_is_and_does() {
    let output = client().arg("--version").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).starts_with("chat-client "));
    let output = client().arg("--help").output().unwrap();
    let help = text(&output.stdout);
    // Every command's description starts in the same column.
    let commands = help
        .split("commands:")
        .nth(1)
        .expect("--help lists the commands");
    let columns: Vec<usize> = commands
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .map(|line| {
            line[2..]
                .find("  ")
                .map(|gap| 2 + gap + line[2 + gap..].len() - line[2 + gap..].trim_start().len())
                .unwrap_or(0)
        })
        .collect();
    assert!(
        columns.len() > 5 && columns.iter().all(|&column| column == columns[0]),
        "misaligned /help: {columns:?}\n{commands}"
    );
    for words in [
        "--trace",
        "--send",
        "--who",
        "--listen",
        "/who",
        "/r text",
        "@\"two words\"",
    ] {
        assert!(help.contains(words), "--help lacks {words}: {help}");
    }
}

#[test]
fn errors_are_sentences_a_person_can_act_on() {
    let server = start_with(Accounts::built_in(), |config| config.max_clients = 1);
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

    // Nothing listens there.
    let (_bound, addr) = refused_addr();
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

/// The id a traced line shows right after `prefix`, which the line must start with.
fn traced_id(line: &str, prefix: &str) -> u64 {
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}…, got {line:?}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no id in {line:?}"))
}

/// A password no other byte of a session resembles, for tests that prove it is never
/// printed; `PASSWORD`'s digits could turn up in a dump by chance.
const SECRET: &str = "s3cr3t-Pw";

/// `SECRET` as the dump's hex column would show it.
fn secret_in_hex() -> String {
    let hex: Vec<String> = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    hex[..4].join(" ")
}

fn secret_users() -> Accounts {
    Accounts::parse(format!("1001:{SECRET}\n1002:{SECRET}\n").as_bytes()).unwrap()
}

#[test]
fn trace_shows_each_frame_decoded_and_as_bytes_and_never_the_password() {
    let server = start_with(secret_users(), |_| {});
    let addr = server.addr().to_string();
    let _friend = {
        let mut friend = chatroom::blocking_client::Client::connect(server.addr()).unwrap();
        friend.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        assert_eq!(friend.login("1002", SECRET).unwrap(), 1);
        friend
    };
    // The plain protocol's frames; the receipts ones are traced below and in
    // `trace_works_while_listening_and_interactive_and_stdout_stays_clean`.
    let send = ["--no-receipts", "1001", SECRET, "--send", "1002", "traced"];
    let plain = run_client(&addr, &send, "");
    let traced = run_client(&addr, &[&["--trace"][..], &send].concat(), "");
    assert_eq!(traced.status.code(), Some(0), "{}", text(&traced.stderr));
    assert_eq!(
        untimed(&text(&traced.stdout)),
        untimed(&text(&plain.stdout)),
        "--trace leaves stdout as it is (but for the time of day)"
    );
    let stderr = text(&traced.stderr);
    for line in [
        format!(
            "→ HEAD{{type 1 LOGIN, length 40}}  USERINFO{{name \"1001\", password ({} bytes, hidden)}}",
            SECRET.len()
        ),
        "  0000  01 00 00 00 28 00 00 00  31 30 30 31 00 00 00 00  ....(...1001....".to_string(),
        "← FEEDBACK{type 1 LOGIN, length 40, flag 1 OK}  (no body: the 40 is a quirk)".to_string(),
        // The client writes its own name as the sender, as the original client does.
        "→ HEAD{type 2 CHAT, length 140}  \
         CHATMSG{sender \"1001\", receiver \"1002\", message \"traced\"}"
            .to_string(),
        "← FEEDBACK{type 2 CHAT, length 140, flag 1 OK}  \
         CHATMSG{sender \"1001\", receiver \"1002\", message \"traced\"}"
            .to_string(),
    ] {
        assert!(
            stderr.lines().any(|shown| shown == line),
            "--trace lacks {line:?}:\n{stderr}"
        );
    }
    let everything = format!("{}{stderr}", text(&traced.stdout));
    assert!(
        !everything.contains(SECRET),
        "the password shows:\n{everything}"
    );
    assert!(
        !stderr.contains(&secret_in_hex()),
        "the password's bytes show:\n{stderr}"
    );

    let who = run_client(&addr, &["--trace", "1001", SECRET, "--who"], "");
    assert_eq!(who.status.code(), Some(0));
    assert_eq!(text(&who.stdout), "online: 1001, 1002\n");
    let stderr = text(&who.stderr);
    assert!(
        stderr.contains("→ HEAD{type 3 USERS (extension), length 0}\n")
            && stderr.contains(
                "← FEEDBACK{type 3 USERS (extension), length 40, flag 1 OK}  \
                 names[2]{\"1001\", \"1002\"}\n"
            ),
        "{stderr}"
    );
    let queued = run_client(
        &addr,
        &["--trace", "1002", SECRET, "--send", "nobody", "x"],
        "",
    );
    assert_eq!(queued.status.code(), Some(1));
    // With receipts, the echo of a refused message is a MESSAGE frame with id 0.
    assert!(
        text(&queued.stderr).contains(
            "← FEEDBACK{type 5 MESSAGE (extension), length 148, flag -1 REJECTED}  \
             id 0 (none: a message not accepted)  CHATMSG{sender \"1002\", receiver \"nobody\""
        ),
        "{}",
        text(&queued.stderr)
    );
}

#[test]
fn trace_works_while_listening_and_interactive_and_stdout_stays_clean() {
    let server = start_with(secret_users(), |_| {});
    let (listener, listener_trace) =
        Terminal::open_with_stderr(server.addr(), &["--trace", "1002", SECRET, "--listen"]);
    listener.expect_line("listening");
    let (mut terminal, terminal_trace) =
        Terminal::open_with_stderr(server.addr(), &["1001", SECRET, "--trace"]);
    terminal.expect_line("logged in as 1001");
    terminal.type_line("@1002 seen on the wire");
    listener.expect_line("1001: seen on the wire");
    // Receipts are on: the delivery is a MESSAGE frame with its id, and the listener
    // acknowledges it with that id.
    let delivery = next_line_with(
        &listener_trace,
        "CHATMSG{sender \"1001\", receiver \"1002\", message \"seen on the wire\"}",
        "the listener's trace",
    );
    let id = traced_id(
        &delivery,
        "← FEEDBACK{type 5 MESSAGE (extension), length 148, flag 1 OK}  id ",
    );
    next_line_with(
        &listener_trace,
        &format!("→ HEAD{{type 6 ACK (extension), length 8}}  id {id} ("),
        "the listener's trace",
    );
    next_line_with(
        &terminal_trace,
        "→ HEAD{type 2 CHAT, length 140}  CHATMSG{sender \"1001\", receiver \"1002\"",
        "the interactive client's trace",
    );
    // The listener's ACK comes back to the sender as RECEIVED, with the same id.
    next_line_with(
        &terminal_trace,
        &format!("← FEEDBACK{{type 7 RECEIVED (extension), length 28, flag 1 OK}}  id {id} ("),
        "the interactive client's trace",
    );
    expect_delivered(&terminal, "1001 → 1002: seen on the wire", "1002", English);
    terminal.type_line("/quit");
    let Terminal {
        mut child,
        stdin,
        lines,
    } = terminal;
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // The process is gone: both channels hold everything it printed.
    let stdout: Vec<String> = lines.iter().collect();
    assert!(
        stdout
            .iter()
            .all(|line| !line.contains("HEAD{") && !line.contains("FEEDBACK{")),
        "a frame went to stdout: {stdout:?}"
    );
    let traced: Vec<String> = terminal_trace.iter().collect();
    assert!(
        !traced
            .iter()
            .any(|line| line.contains(SECRET) || line.contains(&secret_in_hex())),
        "the password shows: {traced:?}"
    );
}

#[test]
fn whoever_writes_first_becomes_the_partner_and_a_bare_reply_goes_back() {
    let server = start();
    let mut simo = Terminal::logged_in(server.addr(), "似末");
    let mut maka = Terminal::logged_in(server.addr(), "玛卡巴卡");
    simo.type_line("@玛卡巴卡 你好");
    simo.expect_line("似末 → 玛卡巴卡: 你好 (");
    maka.expect_line("似末: 你好");
    maka.expect_line("(now talking to 似末: a bare line goes to them)");
    maka.type_line("你好呀");
    maka.expect_line("玛卡巴卡 → 似末: 你好呀 (");
    simo.expect_line("玛卡巴卡: 你好呀");
    // A second writer does not take the partner's place.
    let mut other = logged_in(server.addr(), "1001");
    other.send_chat("玛卡巴卡", "me too").unwrap();
    maka.expect_line("1001: me too");
    maka.type_line("still to 似末");
    maka.expect_line("玛卡巴卡 → 似末: still to 似末 (");
    simo.expect_line("玛卡巴卡: still to 似末");
    simo.type_line("/quit");
    maka.type_line("/quit");
    assert_eq!(simo.exit_code(), Some(0));
    assert_eq!(maka.exit_code(), Some(0));
}

#[test]
fn a_room_message_says_when_nobody_else_is_online_to_hear_it() {
    let server = start();
    let mut terminal = Terminal::logged_in(server.addr(), "1001");
    terminal.type_line("*anyone?");
    terminal.expect_line("(said to the room, but nobody else is online to hear it)");
    let _friends = [
        logged_in(server.addr(), "1002"),
        logged_in(server.addr(), "1003"),
    ];
    terminal.type_line("*now?");
    terminal.expect_line("(said to the room: 2 other users are online)");
    terminal.type_line("/quit");
    assert_eq!(terminal.exit_code(), Some(0));
    let output = run_client(
        &server.addr().to_string(),
        &["1001", PASSWORD, "--send", "*", "hi all"],
        "",
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        untimed(&text(&output.stdout)),
        "[room] 1001: hi all (said to the room: 2 other users are online)\n"
    );
}

#[test]
fn who_against_a_server_without_users_gives_up_in_bounded_time_and_says_why() {
    let minimal = Minimal::start();
    let output = run_client(
        &minimal.addr().to_string(),
        &["1002", PASSWORD, "--who"],
        "",
    );
    assert_eq!(output.status.code(), Some(1), "--who must fail in a script");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("the server does not answer USERS") && stdout.contains("original"),
        "{stdout}"
    );

    let mut terminal = Terminal::logged_in(minimal.addr(), "1001");
    terminal.type_line("/who");
    terminal.expect_line("the server does not answer USERS");
    // Asked again, the client knows already, and the session goes on.
    terminal.type_line("/who");
    terminal.expect_line("the server did not answer USERS before");
    terminal.type_line("@1001 still here");
    terminal.expect_line("1001 → 1001: still here (sent)");
    terminal.type_line("/quit");
    assert_eq!(terminal.exit_code(), Some(0));
}

/// An `--addr` that is not HOST:PORT is a usage error (exit 2), like every other bad
/// argument, found before anything is sent.
#[test]
fn an_addr_that_is_not_host_and_port_is_a_usage_error() {
    for addr in ["nonsense", "host:", ":12345", "127.0.0.1:99999"] {
        let output = run_client(addr, &["1001", PASSWORD, "--who"], "");
        assert_eq!(output.status.code(), Some(2), "--addr {addr}");
        assert!(
            text(&output.stderr).contains("--addr takes HOST:PORT"),
            "--addr {addr}: {}",
            text(&output.stderr)
        );
    }
}

/// A library client with receipts on, logged in as `name`.
fn with_receipts(addr: SocketAddr, name: &str) -> Client {
    let mut client = Client::connect(addr).expect("connect to the test server");
    client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    client.send_receipts().unwrap();
    match client.read_reply().unwrap() {
        Reply::Other(feedback) if feedback.kind == Kind::Receipts && feedback.flag == 1 => {}
        other => panic!("expected FEEDBACK{{4, 0, 1}}, got {other:?}"),
    }
    assert_eq!(client.login(name, PASSWORD).unwrap(), 1, "login of {name}");
    client
}

/// The next reply, which must be a MESSAGE frame: its flag, id and message.
fn next_message(client: &mut Client) -> (i32, u64, chatroom::protocol::ChatMessage) {
    match client.read_reply().expect("a reply") {
        Reply::Message { flag, id, message } => (flag, id, message),
        other => panic!("expected a MESSAGE frame, got {other:?}"),
    }
}

/// The next reply, which must be a RECEIVED or READ receipt.
fn next_receipt(client: &mut Client) -> (Kind, u64, String) {
    match client.read_reply().expect("a reply") {
        Reply::Receipt { kind, id, name } => (kind, id, name),
        other => panic!("expected a receipt, got {other:?}"),
    }
}

/// The local time of day a message id stands for, as `date` gives it: what the client
/// must print, from the id and not from its own clock.
fn local_time_of(id: u64) -> String {
    let output = Command::new("date")
        .arg("-d")
        .arg(format!(
            "@{}",
            sent_at_ms(id).expect("not a refused id") / 1_000
        ))
        .arg("+%H:%M:%S")
        .output()
        .expect("date");
    assert!(output.status.success(), "date -d: {}", text(&output.stderr));
    text(&output.stdout).trim().to_string()
}

#[test]
fn a_stored_message_shows_its_send_time_and_leaves_the_mailbox_only_once_acknowledged() {
    let server = start();
    let mut sender = with_receipts(server.addr(), "1001");
    sender.send_chat("1002", "kept for later").unwrap();
    let (flag, id, _) = next_message(&mut sender);
    assert_eq!(flag, 0, "1002 is offline: queued");
    assert_ne!(id, 0, "the echo carries the message's id");

    // A receipts client that reads the message but never acknowledges it leaves it in
    // the mailbox.
    let mut forgetful = with_receipts(server.addr(), "1002");
    let (_, again, message) = next_message(&mut forgetful);
    assert_eq!(
        (again, message.text.to_lossy().as_str()),
        (id, "kept for later")
    );
    drop(forgetful);

    let listener = Terminal::open(server.addr(), &["1002", PASSWORD, "--listen"]);
    // The time shown is the time in the id (when the server took the message), not
    // when it arrived here.
    let line = listener.expect_line("1001: kept for later");
    assert_eq!(
        line,
        format!("[{}] 1001: kept for later", local_time_of(id))
    );
    // The listener's ACK reaches the sender as RECEIVED, with that id.
    assert_eq!(
        next_receipt(&mut sender),
        (Kind::Received, id, "1002".to_string())
    );
    let Terminal { mut child, .. } = listener;
    child.kill().unwrap();
    child.wait().unwrap();

    // Acknowledged, it is gone: the next login gets nothing before the USERS answer.
    let mut later = with_receipts(server.addr(), "1002");
    later.send_users().unwrap();
    assert!(
        matches!(later.read_reply().unwrap(), Reply::Users { .. }),
        "the mailbox was emptied by the ACK"
    );
}

#[test]
fn interactive_clients_show_one_mark_per_message_that_moves_forward() {
    let server = start();
    let mut simo = Terminal::logged_in(server.addr(), "似末");
    let mut maka = Terminal::logged_in(server.addr(), "玛卡巴卡");

    simo.type_line("@玛卡巴卡 你好");
    let shown = maka.expect_line("似末: 你好");
    let time = &shown[1..shown.find(']').unwrap()];
    // 似末's own line carries the time and one mark: delivered once 玛卡巴卡's client
    // acknowledged it (RECEIVED), on the line itself or on one line after it.
    expect_delivered(
        &simo,
        &format!("[{time}] 似末 → 玛卡巴卡: 你好"),
        "玛卡巴卡",
        English,
    );
    // A line typed (even an empty one) says that the person has seen it.
    maka.type_line("");
    let read = simo.expect_line("has read");
    assert_eq!(
        read,
        format!("(玛卡巴卡 has read your messages, up to {time})")
    );
    // Nothing new was shown since: another line sends no READ, and 似末 sees one line
    // per step forward. 玛卡巴卡's reply comes next on 似末's screen.
    maka.type_line("");
    maka.type_line("你好呀");
    expect_delivered(&maka, "玛卡巴卡 → 似末: 你好呀", "似末", English);
    let next = simo.expect_line("玛卡巴卡: 你好呀");
    assert!(next.starts_with('['), "{next}");
    simo.type_line("/quit");
    maka.expect_line("(似末 has read your messages, up to");
    maka.type_line("/quit");
    let Terminal {
        mut child, lines, ..
    } = simo;
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let rest: Vec<String> = lines.iter().collect();
    assert!(
        rest.iter().all(|line| !line.contains("has read")),
        "one READ line for one step: {rest:?}"
    );
    assert_eq!(maka.exit_code(), Some(0));
}

/// The language a test expects the client to speak.
#[derive(Clone, Copy, PartialEq)]
enum Language {
    English,
    Chinese,
}
use Language::*;

/// Waits for our message's own line (`own`, up to its mark) and for it to be marked
/// delivered: on the line itself, or on a line of its own after it (the line waits a
/// moment for RECEIVED; on a loaded machine RECEIVED may come after).
#[track_caller]
fn expect_delivered(terminal: &Terminal, own: &str, to: &str, language: Language) {
    let (delivered, sent, later) = match language {
        English => (
            "(delivered)",
            "(sent)",
            format!("(delivered to {to}, up to "),
        ),
        Chinese => ("（已送达）", "（已发送）", format!("（已送达 {to}，截至 ")),
    };
    let line = terminal.expect_line(own);
    if line.ends_with(delivered) {
        return;
    }
    assert!(line.ends_with(sent), "neither sent nor delivered: {line}");
    terminal.expect_line(&later);
}

/// `output` without the `[HH:MM:SS] ` that starts its lines.
fn untimed(output: &str) -> String {
    output
        .lines()
        .map(|line| {
            match line
                .strip_prefix('[')
                .and_then(|rest| rest.split_once("] "))
            {
                Some((time, rest)) if time.len() == "HH:MM:SS".len() => format!("{rest}\n"),
                _ => format!("{line}\n"),
            }
        })
        .collect()
}

#[test]
fn listen_send_and_who_acknowledge_but_never_send_read() {
    let server = start();
    let mut sender = with_receipts(server.addr(), "1001");
    for words in ["for --send", "for --who", "for --listen"] {
        sender.send_chat("1002", words).unwrap();
        assert_eq!(next_message(&mut sender).0, 0, "queued");
        let args: &[&str] = match words {
            "for --send" => &["--trace", "1002", PASSWORD, "--send", "1003", "x"],
            "for --who" => &["--trace", "1002", PASSWORD, "--who"],
            _ => &["--trace", "1002", PASSWORD, "--listen"],
        };
        let (listener, trace) = if words == "for --listen" {
            let (terminal, trace) = Terminal::open_with_stderr(server.addr(), args);
            terminal.expect_line(&format!("1001: {words}"));
            (Some(terminal), trace)
        } else {
            let output = run_client(&server.addr().to_string(), args, "");
            assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
            assert!(text(&output.stdout).contains(&format!("1001: {words}")));
            let (tx, trace) = mpsc::channel();
            for line in text(&output.stderr).lines() {
                tx.send(line.to_string()).unwrap();
            }
            (None, trace)
        };
        let (kind, id, _) = next_receipt(&mut sender);
        assert_eq!(kind, Kind::Received, "{words}: acknowledged");
        if let Some(Terminal { mut child, .. }) = listener {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let lines: Vec<String> = trace.iter().collect();
        assert!(
            lines.iter().any(|line| line.starts_with(&format!(
                "→ HEAD{{type 6 ACK (extension), length 8}}  id {id} ("
            ))),
            "{words}: {lines:?}"
        );
        assert!(
            !lines.iter().any(|line| line.contains("type 8 READ")),
            "{words} sent READ: {lines:?}"
        );
    }
}

#[test]
fn against_minimal_the_client_asks_for_receipts_and_speaks_the_plain_protocol() {
    let minimal = Minimal::start();
    let output = run_client(
        &minimal.addr().to_string(),
        &["--trace", "1001", PASSWORD, "--send", "1001", "plain"],
        "",
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        untimed(&text(&output.stdout)),
        "1001 → 1001: plain (sent)\n"
    );
    let decoded: Vec<String> = text(&output.stderr)
        .lines()
        .filter(|line| !line.starts_with("  "))
        .map(str::to_string)
        .collect();
    // RECEIPTS goes with the login; minimal skips it without a word, so the first
    // reply is the LOGIN reply: plain CHAT frames from then on.
    assert_eq!(
        decoded,
        [
            "→ HEAD{type 4 RECEIPTS (extension), length 0}",
            "→ HEAD{type 1 LOGIN, length 40}  USERINFO{name \"1001\", password (6 bytes, hidden)}",
            "← FEEDBACK{type 1 LOGIN, length 40, flag 1 OK}  (no body: the 40 is a quirk)",
            "→ HEAD{type 2 CHAT, length 140}  \
             CHATMSG{sender \"1001\", receiver \"1001\", message \"plain\"}",
            "← FEEDBACK{type 2 CHAT, length 140, flag 1 OK}  \
             CHATMSG{sender \"1001\", receiver \"1001\", message \"plain\"}",
        ],
        "{}",
        text(&output.stderr)
    );
}

/// A server of the receipts era that does not have them: it answers type 4 with -4,
/// then the LOGIN, then echoes one CHAT as a plain CHAT frame.
#[test]
fn a_server_that_answers_receipts_with_minus_4_gets_the_plain_protocol() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        assert_eq!(read_n(&mut stream, 8), ints(&[4, 0]), "RECEIPTS first");
        assert_eq!(read_n(&mut stream, 48)[..8], ints(&[1, 40]), "then LOGIN");
        let mut replies = ints(&[4, 0, -4]);
        replies.extend(ints(&[1, 40, 1]));
        stream.write_all(&replies).unwrap();
        let chat = read_n(&mut stream, 148);
        assert_eq!(chat[..8], ints(&[2, 140]), "a plain CHAT, no ACK or READ");
        stream.write_all(&chat_reply(1, &chat[8..])).unwrap();
        // Nothing more comes: the client leaves without an ACK.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut rest).unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    });
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", "hi"], "");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(untimed(&text(&output.stdout)), "1001 → 1002: hi (sent)\n");
    server.join().unwrap();
}

/// `FEEDBACK{5, 148, flag}` + `id` + a CHATMSG, as a receipts server writes a message.
fn message_frame(flag: i32, id: u64, sender: &str, receiver: &str, text: &str) -> Vec<u8> {
    let mut frame = ints(&[5, 148, flag]);
    frame.extend(id.to_le_bytes());
    frame.extend(chat_body(sender, receiver, text));
    frame
}

/// What the real server never does on purpose, played by a scripted one: the same
/// delivery twice (as after a lost connection), a message stored days ago, and a
/// delivery that comes after the client's last ACK. The client prints the first once,
/// the second with its date, acknowledges exactly what it printed, and leaves the third
/// to the server, saying so.
#[test]
fn duplicates_are_shown_once_old_messages_with_their_date_and_late_ones_left_to_the_server() {
    const DAY_MS: u64 = 24 * 60 * 60 * 1_000;
    let now = first_of_ms(now_ms());
    let old = first_of_ms(now_ms() - 2 * DAY_MS);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        assert_eq!(read_n(&mut stream, 8), ints(&[4, 0]), "RECEIPTS first");
        assert_eq!(read_n(&mut stream, 48)[..8], ints(&[1, 40]), "then LOGIN");
        let mut replies = ints(&[4, 0, 1]);
        replies.extend(ints(&[1, 40, 1]));
        for _ in 0..2 {
            replies.extend(message_frame(1, old, "1002", "1001", "written long ago"));
        }
        stream.write_all(&replies).unwrap();
        let chat = read_n(&mut stream, 148);
        assert_eq!(chat[..8], ints(&[2, 140]));
        stream
            .write_all(&message_frame(1, old + 1, "1001", "1002", "answer"))
            .unwrap();
        // Up to the client's end of stream: one ACK, of the message it printed.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut rest).unwrap();
        let mut ack = ints(&[6, 8]);
        ack.extend(old.to_le_bytes());
        assert_eq!(rest, ack, "exactly one ACK, for the delivery printed");
        // Too late to be acknowledged: the client must not print it.
        stream
            .write_all(&message_frame(1, now, "1002", "1001", "too late"))
            .unwrap();
    });
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", "answer"], "");
    server.join().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let date = Command::new("date")
        .arg("-d")
        .arg(format!("@{}", sent_at_ms(old).unwrap() / 1_000))
        .arg("+%Y-%m-%d %H:%M:%S")
        .output()
        .unwrap();
    assert_eq!(
        text(&output.stdout),
        format!(
            "(while you were away:)\n\
             [{date}] 1002: written long ago\n\
             [{date}] 1001 → 1002: answer (sent)\n\
             (1 more message arrived while leaving: the server keeps it for your next login)\n",
            date = text(&date.stdout).trim()
        )
    );
}

/// The client's environment for Chinese, as a reader of the article has it.
const CHINESE: &[(&str, &str)] = &[("LANG", ZH_LOCALE)];

/// The terminal columns `line` takes: CJK and full-width characters take two.
fn display_width(line: &str) -> usize {
    line.chars()
        .map(|c| if c >= '\u{1100}' { 2 } else { 1 })
        .sum()
}

#[test]
fn a_chinese_locale_gets_chinese_status_receipt_partner_and_room_lines() {
    let server = start();
    let (mut simo, _) = Terminal::open_with_env(server.addr(), &["似末", PASSWORD], CHINESE);
    simo.expect_line("已以 似末 身份登录");
    // 玛卡巴卡 keeps English: the language is each client's own.
    let mut maka = Terminal::logged_in(server.addr(), "玛卡巴卡");

    simo.type_line("@玛卡巴卡 你好");
    let shown = maka.expect_line("似末: 你好");
    let time = &shown[1..shown.find(']').unwrap()];
    expect_delivered(
        &simo,
        &format!("[{time}] 似末 → 玛卡巴卡: 你好"),
        "玛卡巴卡",
        Chinese,
    );
    maka.type_line("");
    assert_eq!(
        simo.expect_line("已读"),
        format!("（玛卡巴卡 已读你的消息，截至 {time}）")
    );

    simo.type_line("* 大家好");
    assert!(
        simo.expect_line("聊天室")
            .ends_with("] [聊天室] 似末: 大家好（已发到聊天室：另有 1 人在线）")
    );
    maka.type_line("*room reply");
    // A message's text and names are never translated; the room's tag is.
    assert!(
        simo.expect_line("room reply")
            .ends_with("] [聊天室] 玛卡巴卡: room reply")
    );
    simo.type_line("/who");
    assert_eq!(simo.expect_line("在线"), "在线：似末、玛卡巴卡");
    simo.type_line("@1003 在吗？");
    assert!(
        simo.expect_line("1003")
            .ends_with("] 似末 → 1003: 在吗？（已保存，稍后送达）")
    );
    simo.type_line("@nobody 你好");
    assert!(
        simo.expect_line("nobody")
            .ends_with("] 似末 → nobody: 你好（未发送：没有用户 nobody）")
    );
    simo.type_line("/nothing");
    assert_eq!(
        simo.expect_line("/nothing"),
        "未知命令 /nothing，输入 /help 查看命令"
    );
    simo.type_line("/help");
    simo.expect_line("命令：");
    simo.expect_line("/who                查看谁在线");
    simo.type_line("/quit");
    assert_eq!(simo.exit_code(), Some(0));
    maka.type_line("/quit");
    assert_eq!(maka.exit_code(), Some(0));
}

#[test]
fn send_mode_says_delivered_queued_and_refused_in_chinese_and_lc_all_comes_first() {
    let server = start();
    let addr = server.addr().to_string();
    let mut friend = logged_in(server.addr(), "1002");
    let send = |to: &str, env: &[(&str, &str)]| {
        run_client_with_env(
            &addr,
            &["1001", PASSWORD, "--send", to, "一条消息"],
            env,
            "",
        )
    };

    let output = send("1002", CHINESE);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        untimed(&text(&output.stdout)),
        "1001 → 1002: 一条消息（已发送）\n"
    );
    assert_eq!(next_chat(&mut friend).1.text.to_lossy(), "一条消息");
    let output = send("1003", CHINESE);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        untimed(&text(&output.stdout)),
        "1001 → 1003: 一条消息（已保存，稍后送达）\n"
    );
    let output = send("nobody", &[("LC_MESSAGES", "zh_TW.UTF-8")]);
    assert_eq!(output.status.code(), Some(1), "a refusal still exits 1");
    assert_eq!(
        untimed(&text(&output.stdout)),
        "1001 → nobody: 一条消息（未发送：没有用户 nobody）\n"
    );

    // LC_ALL overrides LANG (POSIX): C means English.
    let output = send("1002", &[("LC_ALL", "C"), ("LANG", ZH_LOCALE)]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        untimed(&text(&output.stdout)),
        "1001 → 1002: 一条消息 (sent)\n"
    );
    // No locale at all (the helper clears it) or an English one: English.
    for env in [&[][..], &[("LANG", "en_US.UTF-8")][..]] {
        let output = send("1002", env);
        assert_eq!(
            untimed(&text(&output.stdout)),
            "1001 → 1002: 一条消息 (sent)\n",
            "{env:?}"
        );
    }
}

#[test]
fn usage_errors_and_help_are_chinese_in_a_chinese_locale_and_english_by_default() {
    let output = run_client_with_env("127.0.0.1:1", &[], CHINESE, "");
    assert_eq!(
        output.status.code(),
        Some(2),
        "a usage error is still status 2"
    );
    assert_eq!(
        text(&output.stderr),
        "chat-client: 缺少 NAME（见 `chat-client --help`）\n"
    );
    let output = run_client_with_env("127.0.0.1:1", &["1001", "--bogus"], CHINESE, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("未知选项 --bogus"));

    let output = client()
        .arg("--help")
        .envs(CHINESE.iter().copied())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    assert!(
        help.starts_with("用法：chat-client [--addr HOST:PORT]"),
        "{help}"
    );
    // Every command's description starts in the same terminal column, as in English.
    let commands = help
        .split("命令：")
        .nth(1)
        .expect("--help lists the commands");
    let columns: Vec<usize> = commands
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .map(|line| {
            let gap = line[2..]
                .find("  ")
                .expect("two spaces before the description")
                + 2;
            let description = line[gap..].trim_start();
            display_width(&line[..line.len() - description.len()])
        })
        .collect();
    assert!(
        columns.len() >= 8 && columns.iter().all(|&c| c == columns[0]),
        "{columns:?}"
    );

    // Without a locale the client is the English one, byte for byte.
    let output = client().arg("--help").output().unwrap();
    assert!(text(&output.stdout).starts_with("usage: chat-client "));
    let output = run_client("127.0.0.1:1", &[], "");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        "chat-client: NAME is missing (try `chat-client --help`)\n"
    );
}

#[test]
fn a_chinese_client_says_why_it_could_not_connect_log_in_or_stay() {
    let server = start();
    let addr = server.addr().to_string();
    let output = run_client_with_env(&addr, &["1001", "wrong", "--who"], CHINESE, "");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "chat-client: “1001”的用户名或密码错误\n"
    );

    // The password prompt, and a wrong password asked again.
    let output = run_client_with_env(&addr, &["1001", "--who"], CHINESE, "wrong\n");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "密码：“1001”的用户名或密码错误，请重试\n密码：chat-client: 没有输入密码（输入已结束）\n"
    );

    let (listener, errors) =
        Terminal::open_with_env(server.addr(), &["1001", PASSWORD, "--listen"], CHINESE);
    listener.expect_line("已以 1001 身份登录，正在接收消息（Ctrl-C 停止）");
    let _newer = logged_in(server.addr(), "1001");
    assert_eq!(listener.exit_code(), Some(1));
    assert_eq!(
        errors.recv().unwrap(),
        "chat-client: 1001 在别处登录了（另一个窗口，或以 1001 运行的 --send、--who），服务器关闭了\
         这个较早的连接：这个窗口已退出登录"
    );

    drop(_newer);
    drop(server);
    let (_bound, addr) = refused_addr(); // nothing listens there
    let output = run_client_with_env(&addr, &["1001", PASSWORD, "--who"], CHINESE, "");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!("chat-client: 无法连接 {addr}：连接被拒绝。服务器在运行吗？试试 `make run`。\n")
    );
}

#[test]
fn a_forged_line_shows_as_one_visible_line_when_listening_and_chatting_in_both_languages() {
    let server = start();
    let listener = Terminal::open(server.addr(), &["1002", PASSWORD, "--listen"]);
    listener.expect_line("listening");
    let (chinese, _) = Terminal::open_with_env(server.addr(), &["1003", PASSWORD], CHINESE);
    chinese.expect_line("已以 1003 身份登录");
    for (terminal, to) in [(&listener, "1002"), (&chinese, "1003")] {
        send_bytes(server.addr(), "1001", to, FORGED);
        let line = terminal.expect_line("send me your password");
        assert!(
            line.ends_with(&format!("] 1001: {FORGED_SHOWN}")),
            "one line, every byte visible: {line:?}"
        );
        // The next line printed is the next message, not the rest of the forged one.
        send_bytes(server.addr(), "1001", to, b"next");
        let next = terminal.expect_line("1001: next");
        assert!(next.ends_with("] 1001: next"), "{next:?}");
    }
    // A name too is shown visibly: a receipt or an online list cannot break a line.
    let output = run_client(&server.addr().to_string(), &["1001", PASSWORD, "--who"], "");
    assert_eq!(
        text(&output.stdout).lines().count(),
        1,
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn a_full_width_space_or_at_sign_addresses_a_name_as_a_chinese_input_method_types_it() {
    let server = start();
    let mut maka = logged_in(server.addr(), "玛卡巴卡");
    let (mut simo, _) = Terminal::open_with_env(server.addr(), &["似末", PASSWORD], CHINESE);
    simo.expect_line("已以 似末 身份登录");
    simo.type_line("@玛卡巴卡\u{3000}你好");
    assert_eq!(next_chat(&mut maka).1.text.to_lossy(), "你好");
    simo.type_line("＠玛卡巴卡 你好");
    assert_eq!(next_chat(&mut maka).1.text.to_lossy(), "你好");
    simo.type_line("＊\u{3000}大家好");
    let (_, message) = next_chat(&mut maka);
    assert_eq!(
        (
            message.receiver.to_lossy().as_str(),
            message.text.to_lossy().as_str()
        ),
        ("*", "大家好")
    );
    simo.type_line("／who");
    simo.expect_line("在线：似末、玛卡巴卡");
    // An error quotes the name as it was typed: no `\u{3000}` escape.
    simo.type_line("@\"玛卡巴卡\u{3000}你好呀呀\" x");
    assert_eq!(
        simo.expect_line("太长"),
        "“玛卡巴卡\u{3000}你好呀呀”太长，不能作为用户名（最多 20 字节）"
    );
    simo.type_line("/quit");
    assert_eq!(simo.exit_code(), Some(0));
}

#[test]
fn a_300_byte_chinese_message_is_sent_in_parts_and_arrives_whole_and_in_order() {
    let server = start();
    let addr = server.addr().to_string();
    let listener = Terminal::open(server.addr(), &["1002", PASSWORD, "--listen"]);
    listener.expect_line("listening");
    let mut plain = logged_in(server.addr(), "1003");
    let long: String = "春眠不觉晓处处闻啼鸟夜来风雨声花落知多少".repeat(5);
    assert_eq!(long.len(), 300);
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1002", &long], "");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    // (A line may follow once 1002's client has acknowledged it: delivered.)
    assert_eq!(
        untimed(&text(&output.stdout)).lines().next(),
        Some(format!("1001 → 1002: {long} (sent, in 4 parts)").as_str()),
        "--send says what it did"
    );
    // The receiver with this client sees one message.
    let line = listener.expect_line("1001: ");
    assert!(line.ends_with(&format!("] 1001: {long}")), "{line}");
    // On the wire: four CHAT messages of at most 100 bytes, in order, each but the last
    // ending with U+2060 WORD JOINER.
    let output = run_client(&addr, &["1001", PASSWORD, "--send", "1003", &long], "");
    assert_eq!(output.status.code(), Some(0));
    let parts: Vec<String> = (0..4)
        .map(|_| next_chat(&mut plain).1.text.to_lossy())
        .collect();
    assert!(parts.iter().all(|part| part.len() <= 100), "{parts:?}");
    assert!(parts[..3].iter().all(|part| part.ends_with('\u{2060}')));
    assert_eq!(parts.concat().replace('\u{2060}', ""), long);
    // Longer than 30 parts hold: refused with a word, status 1.
    let output = run_client(
        &addr,
        &["1001", PASSWORD, "--send", "1003", &"长".repeat(1000)],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("send it in pieces"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn after_a_server_restart_the_client_reconnects_and_shows_what_was_stored_meanwhile() {
    let data = tempfile::tempdir().unwrap();
    let first = serve_on(data.path(), |_| {});
    let port = first.local_addr().port();
    let mut terminal = Terminal::logged_in(first.local_addr(), "1002");
    first.stop();
    terminal.expect_line("reconnecting");
    // Stored while 1002 is away, through another server on the same data directory.
    {
        let meanwhile = serve_on(data.path(), |_| {});
        let mut sender = with_receipts(meanwhile.local_addr(), "1001");
        sender.send_chat("1002", "while you were gone").unwrap();
        assert_eq!(next_message(&mut sender).0, 0, "QUEUED: stored for 1002");
        drop(sender);
        meanwhile.stop();
    }
    let again = serve_on(data.path(), |config| config.port = port);
    terminal.expect_line("(reconnected to");
    terminal.expect_line("(while you were away:)");
    terminal.expect_line("1001: while you were gone");
    // Receipts are on again: the message is acknowledged, and the chat goes on.
    let mut friend = with_receipts(again.local_addr(), "1001");
    terminal.type_line("@1001 back");
    let back = loop {
        match friend.read_reply().expect("a reply") {
            Reply::Message { message, .. } => break message.text.to_lossy(),
            Reply::Receipt { .. } => {} // RECEIVED for the stored message
            other => panic!("expected a MESSAGE frame, got {other:?}"),
        }
    };
    assert_eq!(back, "back");
    terminal.type_line("/quit");
    assert_eq!(terminal.exit_code(), Some(0));
}

#[test]
fn a_newer_login_of_the_same_user_ends_the_chat_with_a_line_that_says_so() {
    let server = start();
    let terminal = Terminal::logged_in(server.addr(), "1001");
    let output = run_client(&server.addr().to_string(), &["1001", PASSWORD, "--who"], "");
    assert_eq!(output.status.code(), Some(0));
    let line = terminal.expect_line("logged in elsewhere");
    assert!(
        line.contains("a --send or --who as 1001") && line.ends_with("this window is logged out"),
        "{line}"
    );
    assert_eq!(terminal.exit_code(), Some(1));
}

#[test]
fn who_piped_into_head_exits_quietly() {
    let server = start();
    let addr = server.addr().to_string();
    let mut sender = logged_in(server.addr(), "1001");
    // Enough stored lines that the pipe is closed while the client still writes.
    for n in 0..200 {
        sender.send_chat("1002", &format!("stored {n}")).unwrap();
        next_chat(&mut sender);
    }
    let output = Command::new("bash")
        .args([
            "-c",
            &format!(
                "{CLIENT} --addr {addr} 1002 {PASSWORD} --who | head -1; \
                 echo \"status ${{PIPESTATUS[0]}}\" >&2"
            ),
        ])
        .env_remove("LC_ALL")
        .env_remove("LANG")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("status 0") || stderr.contains("status 141"),
        "a closed pipe ends the client quietly: {stderr}"
    );
    assert_eq!(text(&output.stdout).lines().count(), 1);
}

#[test]
fn piped_input_that_ends_at_once_still_shows_the_stored_messages() {
    let server = start();
    let addr = server.addr().to_string();
    store_for_1002(&addr, "kept for you");
    let output = run_client(&addr, &["1002", PASSWORD], "");
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("(while you were away:)") && stdout.contains("1001: kept for you"),
        "{stdout}"
    );
    assert!(!stdout.contains("arrived while leaving"), "{stdout}");
}

#[test]
fn a_locked_out_login_says_when_to_try_again() {
    let server = start_with(Accounts::built_in(), |config| config.login_failures = 1);
    let addr = server.addr().to_string();
    let output = run_client(&addr, &["1001", "wrong", "--who"], "");
    assert!(text(&output.stderr).contains("wrong name or password"));
    let output = run_client(&addr, &["1001", PASSWORD, "--who"], "");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let until = stderr
        .split("try again after ")
        .nth(1)
        .unwrap_or_else(|| panic!("no time to try again: {stderr}"));
    let bytes = until.as_bytes();
    assert!(
        bytes.len() > 8 && bytes[2] == b':' && bytes[5] == b':',
        "HH:MM:SS: {stderr}"
    );
}

#[test]
fn against_minimal_a_message_to_an_offline_user_is_not_called_unknown() {
    let minimal = Minimal::start();
    let output = run_client(
        &minimal.addr().to_string(),
        &["1001", PASSWORD, "--send", "1002", "are you there?"],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("(not sent: 1002 is not online, or there is no such user")
            && !stdout.contains("there is no user 1002"),
        "{stdout}"
    );
}

#[test]
fn piped_input_shows_more_stored_messages_than_the_servers_window_before_it_leaves() {
    /// More than the 256 unacknowledged messages a server sends a receiver at once.
    const STORED: usize = 300;
    let server = start();
    let mut sender = logged_in(server.addr(), "1001");
    for n in 0..STORED {
        sender.send_chat("1002", &format!("stored {n}")).unwrap();
        assert_eq!(next_chat(&mut sender).0, 0, "QUEUED");
    }
    let output = run_client(&server.addr().to_string(), &["1002", PASSWORD], "");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let shown: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_once("] 1001: stored ").map(|(_, n)| n))
        .collect();
    let expected: Vec<String> = (0..STORED).map(|n| n.to_string()).collect();
    assert_eq!(shown, expected, "every stored message, in order, once");
    assert!(!stdout.contains("arrived while leaving"), "{stdout}");
}
