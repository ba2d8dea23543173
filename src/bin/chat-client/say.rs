//! Everything the client says to its user, each sentence in English and in Chinese side
//! by side (see `chatroom::i18n`): one function per sentence, in the language of the run.
//! The Chinese puts status lines in full-width brackets, `（已送达）`, with full-width
//! punctuation inside; names, times, commands and protocol names stay as they are.
//! `--trace` and the protocol's names are not here: they stay English. Every name or text
//! that came from the network reaches these functions already made visible
//! ([`crate::visible`]).
use crate::receipts::Mark;
use crate::visible::visible_str;
use chatroom::i18n::{self, Lang};
use chatroom::protocol::{Flag, Kind, NAME_LEN};
use std::fmt::Display;
use std::sync::OnceLock;

/// The language of this run, set once by `main` from the locale; English until then,
/// so that unit tests read the same whatever the developer's locale.
static LANG: OnceLock<Lang> = OnceLock::new();

/// Sets the language of this run (once, before anything is said).
pub fn set_lang(lang: Lang) {
    let _ = LANG.set(lang);
}

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
  /quit               leave (so does end of input, Ctrl-D)
A Chinese input method's full-width ＠ ＊ ／ and space work as @ * / and a space.
A message longer than 100 bytes goes in parts, shown whole by this client.";

const USAGE_ZH: &str = "\
用法：chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME [PASSWORD]
              [--send TO TEXT | --who | --listen]

以 NAME 登录。密码取自 PASSWORD，没有则取 $CHAT_PASSWORD，再没有则在连上服务器后
询问（在终端上不回显；可试三次）。
  --addr HOST:PORT  服务器地址（默认 127.0.0.1:12345）
  --trace           在 stderr 上打印收发的每一帧：解码后的内容和字节
                （密码已遮盖）
  --no-receipts     即使服务器支持回执，也只用普通协议（不带回执）
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
  /quit               退出（输入结束、Ctrl-D 也一样）
中文输入法打出的全角 ＠ ＊ ／ 和全角空格，与 @ * / 和半角空格作用相同。
超过 100 字节的消息会分成几条发出，这个客户端会把它们合成一条显示。";

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
        format!("cannot log in as \"{}\": {error}", visible_str(name)),
        format!("无法以“{}”登录：{error}", visible_str(name)),
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
        format!("wrong name or password for \"{}\"", visible_str(name)),
        format!("“{}”的用户名或密码错误", visible_str(name)),
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

pub fn name_too_long(to: &str) -> String {
    pick(
        format!("\"{to}\" is too long to be a user name (at most {NAME_LEN} bytes)"),
        format!("“{to}”太长，不能作为用户名（最多 {NAME_LEN} 字节）"),
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
        format!("（发给 {to} 的消息 {secs} 秒内没有回显：只有你一人在线时，原版服务器会忽略消息）"),
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
        format!("（{secs} 秒内没有回答：服务器不回答 USERS（在线用户列表）；是原版服务器吗？）"),
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

pub fn no_such_user(to: impl Display) -> String {
    pick(
        format!("(not sent: there is no user {to})"),
        format!("（未发送：没有用户 {to}）"),
    )
}

pub fn mailbox_full(to: impl Display) -> String {
    pick(
        format!("(not sent: {to} is offline and their mailbox, or the server's store, is full)"),
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

// The interactive prompt and the lines of a session that goes on.

/// The prompt: who a bare line goes to, if anyone.
pub fn prompt(partner: Option<&str>) -> String {
    match partner {
        Some(partner) => format!("{partner}> "),
        None => "> ".to_string(),
    }
}

/// A line typed while the client is reconnecting.
pub fn not_connected() -> String {
    pick(
        "(not sent: not connected to the server; reconnecting, try again in a moment)",
        "（未发送：没有连上服务器，正在重连，请稍后再试）",
    )
    .to_string()
}

pub fn message_too_long(max: usize) -> String {
    pick(
        format!("(not sent: longer than {max} bytes; send it in pieces)"),
        format!("（未发送：超过 {max} 字节，请分几次发送）"),
    )
}

// Our own messages: one line each, with one mark that moves forward.

/// A line and the status in brackets after it: a space between them in English; none
/// in Chinese, whose full-width brackets carry their own.
pub fn with_status(line: &str, status: &str) -> String {
    pick(format!("{line} {status}"), format!("{line}{status}"))
}

/// Our private message: `[time] me → to: text`, its mark follows.
pub fn own_line(time: &str, me: &str, to: &str, text: &str) -> String {
    pick(
        format!("[{time}] {me} → {to}: {text}"),
        format!("[{time}] {me} → {to}: {text}"),
    )
}

/// Our room message, as others see it: `[time] [room] me: text`, its count follows.
pub fn own_room_line(time: &str, me: &str, text: &str) -> String {
    format!("[{time}] {}{me}: {text}", room_tag())
}

/// The mark of one of our messages; `parts`, how many it was sent in.
pub fn mark(mark: Mark, parts: usize) -> String {
    let words = match mark {
        Mark::Sent => pick("sent", "已发送"),
        Mark::Stored => pick("stored for later", "已保存，稍后送达"),
        Mark::Delivered => pick("delivered", "已送达"),
        Mark::Read => pick("read", "已读"),
    };
    match (lang(), parts) {
        (_, 1) => pick(format!("({words})"), format!("（{words}）")),
        (Lang::English, parts) => format!("({words}, in {parts} parts)"),
        (Lang::Chinese, parts) => format!("（{words}，分 {parts} 条发出）"),
    }
}

/// A mark that moved forward for our messages to `name`, up to the one sent at `time`.
pub fn mark_line(name: &str, mark: Mark, time: &str) -> String {
    match mark {
        Mark::Read => pick(
            format!("({name} has read your messages, up to {time})"),
            format!("（{name} 已读你的消息，截至 {time}）"),
        ),
        _ => pick(
            format!("(delivered to {name}, up to {time})"),
            format!("（已送达 {name}，截至 {time}）"),
        ),
    }
}

/// After a refusal of a message sent in parts: how many got through.
pub fn parts_accepted(accepted: usize, parts: usize) -> String {
    pick(
        format!("({accepted} of its {parts} parts were accepted)"),
        format!("（{parts} 条中有 {accepted} 条被接受）"),
    )
}

/// -1 from a server without receipts: the original and `examples/minimal.rs` refuse a
/// message to a user who is offline the same way as one to nobody.
pub fn not_online_or_unknown(to: impl Display) -> String {
    pick(
        format!(
            "(not sent: {to} is not online, or there is no such user; this server may keep no messages for later)"
        ),
        format!("（未发送：{to} 不在线，或者没有这个用户；这个服务器可能不保存离线消息）"),
    )
}

// What others send.

/// Before the first of the messages that waited for us (sent before we logged in).
pub fn while_you_were_away() -> String {
    pick("(while you were away:)", "（你不在时收到的消息：）").to_string()
}

/// After a message whose last parts never came.
pub fn incomplete() -> String {
    pick(
        "(incomplete: the rest of this message did not come)",
        "（不完整：这条消息的其余部分没有收到）",
    )
    .to_string()
}

// The connection.

/// The client sent its requests and the server closed before answering them all.
pub fn connection_ended_while_waiting() -> String {
    pick(
        "the server closed the connection before it answered",
        "服务器还没回答就断开了连接",
    )
    .to_string()
}

/// The server ended our connection and still answers: a newer login took over.
pub fn newer_login(me: &str) -> String {
    pick(
        format!(
            "{me} logged in elsewhere (another window, or a --send or --who as {me}), and the \
             server closed this older connection: this window is logged out"
        ),
        format!(
            "{me} 在别处登录了（另一个窗口，或以 {me} 运行的 --send、--who），服务器关闭了这个\
             较早的连接：这个窗口已退出登录"
        ),
    )
}

/// The server ended our connection and cannot be reached.
pub fn server_gone() -> String {
    pick(
        "the server closed the connection and no longer answers: it stopped, or the network failed",
        "服务器断开了连接，而且不再回应：服务器已停止，或者网络出了问题",
    )
    .to_string()
}

pub fn reconnecting() -> String {
    pick(
        format!("({}; reconnecting…)", server_gone()),
        format!("（{}；正在重连……）", server_gone()),
    )
}

pub fn reconnected(addr: &str) -> String {
    pick(
        format!("(reconnected to {addr}; receipts asked for again)"),
        format!("（已重新连上 {addr}，并重新请求回执）"),
    )
}

/// Our messages not yet echoed when the connection ended.
pub fn lost_before_echo(to: impl Display) -> String {
    pick(
        format!(
            "(your message to {to} got no answer before the connection ended: it may not have been sent)"
        ),
        format!("（发给 {to} 的消息在连接断开前没有得到回答：可能没有发出）"),
    )
}

/// The server refused the login for too many failures: when to try again.
pub fn locked_out() -> String {
    let until = crate::clock::Clock::local()
        .at_ms(chatroom::message_id::now_ms() + LOGIN_FAILURE_WINDOW_MS);
    pick(
        format!(
            "login refused: too many failed logins from this address or on this connection; \
             try again after {until} (the server counts the failures of the last minute)"
        ),
        format!(
            "登录被拒绝：这个地址或这个连接登录失败的次数过多；请在 {until} 之后再试\
             （服务器只计算最近一分钟内的失败）"
        ),
    )
}

/// The window over which the server counts an address's failed logins
/// (docs/PROTOCOL.md §2, "Password guessing").
const LOGIN_FAILURE_WINDOW_MS: u64 = 60_000;
