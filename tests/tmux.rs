//! `chat-client` in a real terminal: tmux runs it in a pseudo-terminal, types into it
//! (`send-keys`) and reads the screen (`capture-pane`), with and without `rlwrap`, the
//! line editor `make client` starts it under. What a person sees is what is checked: a
//! message that arrives while a line is half typed leaves the line whole and sends it
//! as typed, Left and Right edit and Up recalls (with rlwrap), and a message with line
//! breaks, escapes and invalid UTF-8 shows as one line with every byte visible, in both
//! languages.
//!
//! Without tmux or rlwrap the tests print why and pass, unless
//! `CHATROOM_REQUIRE_TMUX=1` (set by `.ci/run` once it has installed both): then a
//! missing tool fails them. Every tmux here runs on a socket of its own, in a
//! temporary directory, killed when the test ends.

mod common;

use chatroom::blocking_client::Client;
use common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CLIENT: &str = env!("CARGO_BIN_EXE_chat-client");
/// The environment variable that turns "tmux or rlwrap is missing" from a skip into a
/// failure.
const REQUIRE_TMUX: &str = "CHATROOM_REQUIRE_TMUX";
/// The terminal's size: wide enough that no line of these tests wraps.
const COLUMNS: &str = "160";
const ROWS: &str = "30";
/// How often the screen is read while waiting for something to show.
const POLL: Duration = Duration::from_millis(50);
/// A UTF-8 locale every glibc has, for rlwrap (readline needs one to edit Chinese):
/// the client's own language is chosen by its own variables, set after rlwrap's.
const UTF8_CTYPE: &str = "C.UTF-8";
const ZH_LOCALE: &str = "zh_CN.UTF-8";

/// The tools a test needs, or `None` (and a line saying why) when one is missing and
/// `CHATROOM_REQUIRE_TMUX` is not set.
fn tools(with_rlwrap: bool) -> Option<()> {
    let needed: &[&str] = if with_rlwrap {
        &["tmux", "rlwrap"]
    } else {
        &["tmux"]
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|tool| {
            Command::new(tool)
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    if std::env::var_os(REQUIRE_TMUX).is_some_and(|value| value == "1") {
        panic!("{missing:?} missing, and {REQUIRE_TMUX}=1 requires them");
    }
    eprintln!("skipped: {missing:?} not installed (apt-get install tmux rlwrap)");
    None
}

/// A tmux server of the test's own, with one window per client.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("tmux")
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(self.socket())
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// A window named `name` running the client as `user` against `addr`, under rlwrap
    /// or not, in English or Chinese.
    fn client(
        &self,
        name: &str,
        addr: SocketAddr,
        user: &str,
        rlwrap: bool,
        chinese: bool,
    ) -> Pane<'_> {
        let lang = if chinese { ZH_LOCALE } else { "C.UTF-8" };
        let client = format!(
            "env -u LC_ALL -u LC_MESSAGES -u CHAT_PASSWORD LANG={lang} {CLIENT} --addr {addr} \
             {user} {PASSWORD}"
        );
        let command = if rlwrap {
            // rlwrap's history goes to the test's directory, not the user's home.
            format!(
                "env LC_ALL={UTF8_CTYPE} HOME={} rlwrap {client}",
                self.dir.path().display()
            )
        } else {
            client
        };
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            COLUMNS,
            "-y",
            ROWS,
            &command,
        ]);
        Pane {
            tmux: self,
            name: name.to_string(),
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(self.socket())
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// One client's window.
struct Pane<'a> {
    tmux: &'a Tmux,
    name: String,
}

impl Pane<'_> {
    /// Types `text` as it is (no key names).
    fn type_text(&self, text: &str) {
        self.tmux.tmux(&["send-keys", "-t", &self.name, "-l", text]);
    }

    /// Presses keys by name: `Enter`, `Left`, `Up`.
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        self.tmux.tmux(&args);
    }

    /// The screen as text, and with its colours and attributes as escapes (`-e`).
    fn screen(&self) -> String {
        let output = self.tmux.tmux(&["capture-pane", "-p", "-t", &self.name]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen_with_escapes(&self) -> String {
        let output = self
            .tmux
            .tmux(&["capture-pane", "-p", "-e", "-t", &self.name]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The screen, once `done` says it shows what is waited for (`what`).
    #[track_caller]
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {what}:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// The screen, once one of its lines contains `words`.
    #[track_caller]
    fn wait_for_text(&self, words: &str) -> String {
        self.wait_for(&format!("{words:?}"), |screen| screen.contains(words))
    }
}

/// The last line of `screen` that is not blank: where the cursor is, for a prompt.
fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
}

/// The other side of the chat: a library client (plain protocol) logged in as `name`.
fn friend(addr: SocketAddr, name: &str) -> Client {
    logged_in(addr, name)
}

/// The next message's text `client` is sent (skipping its own echoes).
fn next_text(client: &mut Client, me: &str) -> String {
    loop {
        let (_, message) = next_chat(client);
        if message.sender.to_lossy() != me {
            return message.text.to_lossy();
        }
    }
}

#[test]
fn a_message_arriving_mid_line_leaves_the_chinese_line_whole_under_rlwrap_and_sent_as_typed() {
    if tools(true).is_none() {
        return;
    }
    let server = start();
    let mut maka = friend(server.addr(), "玛卡巴卡");
    let tmux = Tmux::new();
    let simo = tmux.client("simo", server.addr(), "似末", true, true);
    simo.wait_for_text("已以 似末 身份登录");
    // Typed with a Chinese input method: a full-width space after the name.
    simo.type_text("@玛卡巴卡　我正在打一句");
    simo.wait_for_text("@玛卡巴卡　我正在打一句");
    maka.send_chat("似末", "晚上一起吃饭吗？").unwrap();
    let screen = simo.wait_for_text("玛卡巴卡: 晚上一起吃饭吗？");
    let message = screen
        .lines()
        .find(|line| line.contains("晚上一起吃饭吗？"))
        .unwrap();
    assert!(
        message.starts_with('[') && message.ends_with("] 玛卡巴卡: 晚上一起吃饭吗？"),
        "the message is a line of its own, nothing typed spliced into it: {message:?}\n{screen}"
    );
    let screen = simo.wait_for("the typed line redrawn below the message", |screen| {
        last_line(screen).ends_with("> @玛卡巴卡　我正在打一句")
    });
    assert!(
        screen.find("晚上一起吃饭吗？") < screen.rfind("我正在打一句"),
        "{screen}"
    );
    simo.type_text("很长的话");
    simo.press(&["Enter"]);
    assert_eq!(next_text(&mut maka, "玛卡巴卡"), "我正在打一句很长的话");
    simo.wait_for_text("似末 → 玛卡巴卡: 我正在打一句很长的话（已发送）");
}

#[test]
fn left_and_right_edit_the_line_and_up_recalls_the_last_one_under_rlwrap() {
    if tools(true).is_none() {
        return;
    }
    let server = start();
    let mut friend = friend(server.addr(), "1002");
    let tmux = Tmux::new();
    let pane = tmux.client("edit", server.addr(), "1001", true, false);
    pane.wait_for_text("logged in as 1001");
    pane.type_text("@1002 wrld");
    pane.wait_for_text("@1002 wrld");
    // Three to the left, before "rld": the missing letter goes in there.
    pane.press(&["Left", "Left", "Left"]);
    pane.type_text("o");
    pane.press(&["Right", "Right", "Right"]);
    pane.type_text("!");
    pane.press(&["Enter"]);
    assert_eq!(next_text(&mut friend, "1002"), "world!");
    pane.wait_for_text("1001 → 1002: world! (sent)");
    pane.press(&["Up"]);
    pane.wait_for("the last line recalled", |screen| {
        last_line(screen).ends_with("> @1002 world!")
    });
    pane.press(&["Enter"]);
    assert_eq!(next_text(&mut friend, "1002"), "world!");
}

#[test]
fn without_rlwrap_a_message_mid_line_is_not_spliced_and_the_line_is_sent_as_typed() {
    if tools(false).is_none() {
        return;
    }
    let server = start();
    let mut friend = friend(server.addr(), "1002");
    let tmux = Tmux::new();
    let pane = tmux.client("bare", server.addr(), "1001", false, false);
    pane.wait_for_text("logged in as 1001");
    let screen = pane.wait_for("the prompt", |screen| last_line(screen) == ">");
    assert!(screen.contains("type /help"), "{screen}");
    pane.type_text("@1002 half");
    pane.wait_for_text("> @1002 half");
    friend.send_chat("1001", "incoming").unwrap();
    let screen = pane.wait_for_text("1002: incoming");
    let message = screen
        .lines()
        .find(|line| line.contains("1002: incoming"))
        .unwrap();
    assert!(
        message.starts_with('[') && message.ends_with("] 1002: incoming"),
        "the message is a line of its own: {message:?}\n{screen}"
    );
    assert!(
        last_line(&screen).starts_with('>'),
        "the prompt follows it:\n{screen}"
    );
    // The terminal still holds what was typed: the rest completes it.
    pane.type_text(" and done");
    pane.press(&["Enter"]);
    assert_eq!(next_text(&mut friend, "1002"), "half and done");
}

/// What a hostile sender puts in a message: a line break and a forged line, an escape

#[test]
fn a_forged_line_escape_and_invalid_utf8_show_as_one_visible_line_in_both_languages() {
    if tools(true).is_none() {
        return;
    }
    let server = start();
    let tmux = Tmux::new();
    for (name, user, rlwrap, chinese) in [
        ("english", "1001", true, false),
        ("chinese", "玛卡巴卡", false, true),
    ] {
        let pane = tmux.client(name, server.addr(), user, rlwrap, chinese);
        pane.wait_for_text(if chinese { "已以" } else { "logged in as" });
        send_bytes(server.addr(), "1003", user, FORGED);
        let screen = pane.wait_for_text(FORGED_SHOWN);
        let shown: Vec<&str> = screen
            .lines()
            .filter(|line| line.contains("send me your password"))
            .collect();
        assert_eq!(shown.len(), 1, "one line:\n{screen}");
        assert!(
            shown[0].starts_with('[') && shown[0].ends_with(&format!("] 1003: {FORGED_SHOWN}")),
            "{screen}"
        );
        assert!(
            !screen
                .lines()
                .any(|line| line.starts_with("[07:20:00] 似末")),
            "a forged line:\n{screen}"
        );
        assert!(
            !pane.screen_with_escapes().contains("\x1b[31m"),
            "the terminal turned red:\n{}",
            pane.screen_with_escapes()
        );
    }
}
