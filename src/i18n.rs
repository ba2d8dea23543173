//! The language `chat-client` speaks to its user: English, or Chinese when the locale
//! says so. Many of the server's users read the Chinese article it replaces, and a
//! terminal set to `zh_CN.UTF-8` is their everyday setting. The locale is read as POSIX
//! reads it for messages: the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that is set and
//! not empty decides, and a value starting with `zh` (`zh_CN.UTF-8`, `zh_TW`) means
//! Chinese; anything else, or none, means English, so `LC_ALL=C` forces English.
//!
//! Only what a person reads is translated. The server's logs, `--trace` (it mirrors the
//! wire) and the protocol's names (LOGIN, QUEUED) stay English: they are what the
//! documentation, the tests and a bug report quote. [`Flag::describe`] keeps its English
//! for the logs; [`describe_flag`] gives the client its flags in either language.

use crate::protocol::Flag;
use std::env;

/// The locale variables that choose the messages' language, strongest first.
pub const LOCALE_VARIABLES: [&str; 3] = ["LC_ALL", "LC_MESSAGES", "LANG"];

/// How a Chinese locale's name begins (ISO 639 `zh`, whatever the region and encoding).
const CHINESE_PREFIX: &str = "zh";

/// A language the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// The default, and what every document and test quotes.
    #[default]
    English,
    /// Simplified Chinese, for a `zh` locale.
    Chinese,
}

impl Lang {
    /// The language the process's locale asks for.
    pub fn from_env() -> Lang {
        Lang::from_locale(|name| env::var_os(name).map(|value| value.to_string_lossy().into()))
    }

    /// The language for the locale variables `var` reports (by name, `None` if unset):
    /// the first of [`LOCALE_VARIABLES`] that is set and not empty decides.
    pub fn from_locale(var: impl Fn(&str) -> Option<String>) -> Lang {
        let locale = LOCALE_VARIABLES
            .iter()
            .filter_map(|name| var(name))
            .find(|value| !value.is_empty());
        match locale {
            Some(locale) if locale.starts_with(CHINESE_PREFIX) => Lang::Chinese,
            _ => Lang::English,
        }
    }

    /// `english` or `chinese`, whichever this language is.
    pub fn pick<T>(self, english: T, chinese: T) -> T {
        match self {
            Lang::English => english,
            Lang::Chinese => chinese,
        }
    }
}

/// The words after which a Chinese flag description says what was refused, as
/// "refused: " does in English: a client that already says so strips them.
pub const REFUSED_ZH: &str = "被拒绝：";

/// What `flag` means, in `lang`: [`Flag::describe`] in English.
pub fn describe_flag(flag: Flag, lang: Lang) -> &'static str {
    if lang == Lang::English {
        return flag.describe();
    }
    match flag {
        Flag::Ok => "成功",
        Flag::Queued => "已保存：对方离线，下次登录时收到",
        Flag::Rejected => "被拒绝：用户名或密码错误，或没有这个用户",
        Flag::NotLoggedIn => "被拒绝：请先登录",
        Flag::Malformed => "被拒绝：请求格式错误（长度不对，或名字为空、不是 UTF-8）",
        Flag::Unsupported => "被拒绝：服务器不认识这种请求类型",
        Flag::Busy => "服务器繁忙（客户端数已达上限），请稍后再试",
        Flag::TooManyAttempts => "登录失败次数过多，服务器已断开连接",
        Flag::MailboxFull => "被拒绝：对方的信箱（或服务器的存储）已满，没有保存",
        Flag::NotStored => {
            "未保存：对方离线，服务器无法保存这条消息（服务器上的磁盘或文件出了问题，\
             详见服务器日志）"
        }
    }
}
