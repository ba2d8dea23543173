//! `chat-client` driven through its real stdin and stdout against an in-process server.

mod common;
mod terminal;

use chatroom::users::Accounts;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use terminal::*;

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
        stderr.contains("may have logged in elsewhere") && stderr.contains("server stopped"),
        "{stderr}"
    );
}

#[test]
fn send_mode_prints_the_senders_own_stored_messages_before_it_exits() {
    let server = start();
    let addr = server.addr().to_string();
    let output = run_client(
        &addr,
        &["1001", PASSWORD, "--send", "1002", "kept for you"],
        "",
    );
    assert!(text(&output.stdout).contains("queued"));
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
    terminal.expect_line("(delivered to alice smith)");
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
    let mut terminal = Terminal::open(server.addr(), &["1001", PASSWORD]);
    terminal.expect_line("logged in as 1001");
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
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free); // nothing listens there now
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
    let output = Command::new(CLIENT).arg("--version").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).starts_with("chat-client "));
    let output = Command::new(CLIENT).arg("--help").output().unwrap();
    let help = text(&output.stdout);
    for words in [
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
