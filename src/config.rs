//! The server's command line (docs/PROTOCOL.md §5), parsed by hand: the project keeps to
//! five small runtime crates (see the README), none for arguments, and a dozen flags do
//! not need one.
//!
//! Every flag takes `--flag VALUE` or `--flag=VALUE`. A mistake is a [`UsageError`]
//! whose message names the flag; `main` prints it with a hint and exits with status 2.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The original's port.
pub const DEFAULT_PORT: u16 = 12345;
/// The original listens on every interface.
pub const DEFAULT_BIND: &str = "0.0.0.0";
/// Where offline messages are kept, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Open connections allowed at once.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// How long one whole write to a client may take.
pub const DEFAULT_WRITE_TIMEOUT_SECS: u64 = 10;
/// How long the rest of a frame may take once its first byte is in.
pub const DEFAULT_FRAME_TIMEOUT_SECS: u64 = 10;
/// The longest `--write-timeout` or `--frame-timeout`: one day. A longer wait protects
/// nothing, and a value near `u64::MAX` seconds cannot be added to the clock at all.
pub const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;
/// Failed logins one client address may make within [`LOGIN_FAILURE_WINDOW`].
pub const DEFAULT_LOGIN_FAILURES: usize = 20;
/// The window `--login-failures` counts in.
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Stored messages per user.
pub const DEFAULT_MAILBOX_LIMIT: usize = 10_000;
/// Messages in all mailboxes together.
pub const DEFAULT_STORE_LIMIT: usize = 1_000_000;

/// The text of `--help`.
pub const USAGE: &str = "\
usage: chat-server [--bind ADDR] [--port N] [--users FILE] [--data-dir DIR]
                   [--max-clients N] [--write-timeout SECS] [--frame-timeout SECS]
                   [--login-failures N] [--mailbox-limit N] [--store-limit N]
                   [--sync always|every-second]
                   [--help] [--version]

A wire-compatible Rust replacement for the original C++ QQ-style chat server.

  --bind ADDR           address to listen on (default 0.0.0.0)
  --port N              port to listen on; 0 takes a free one (default 12345)
  --users FILE          accounts, one `name:password` a line (default: the six
                        built-in users 1001 1002 1003 似末 玛卡巴卡 花开富贵, password 123456)
  --data-dir DIR        where offline messages are kept (default ./data)
  --max-clients N       open connections allowed at once; when full, the oldest
                        connection that has not logged in makes room (default 10000)
  --write-timeout SECS  how long one write to a client may take, first byte to
                        last, before that client is disconnected (default 10)
  --frame-timeout SECS  how long the rest of a frame may take once its first
                        byte is in; idle connections are never closed (default 10)
                        (both timeouts: 1 to 86400 seconds)
  --login-failures N    failed logins one client address may make in a minute;
                        past that its logins get -6 (default 20)
  --mailbox-limit N     stored messages per offline user (default 10000)
  --store-limit N       stored messages in all mailboxes together (default 1000000)
  --sync WHEN           when stored messages reach the disk: `always` (before the
                        sender hears of them) or `every-second` (default); either
                        way a server killed by SIGKILL loses none, and with
                        every-second a power cut can lose the last second
  --help                show this and exit
  --version             show the version and exit

Every N is a whole number above 0 (only --port takes 0), every SECS one from 1 to 86400.

Logging: RUST_LOG=debug (or trace, warn, ...) changes what is logged; the default is info.";

/// Everything the server needs to know to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The address to listen on.
    pub bind: IpAddr,
    /// The port to listen on; 0 takes a free one.
    pub port: u16,
    /// `None`: the six built-in users.
    pub users: Option<PathBuf>,
    /// Where offline messages are kept.
    pub data_dir: PathBuf,
    /// Open connections allowed at once, logged in or not.
    pub max_clients: usize,
    /// Bounds each whole write to a client, not each system call.
    pub write_timeout: Duration,
    /// Bounds the time from a frame's first byte to its last.
    pub frame_timeout: Duration,
    /// Failed logins per client address within [`LOGIN_FAILURE_WINDOW`].
    pub login_failures: usize,
    /// Stored messages per user.
    pub mailbox_limit: usize,
    /// Stored messages in all mailboxes together.
    pub store_limit: usize,
    /// When stored messages reach the disk.
    pub sync: SyncPolicy,
}

/// When what the store writes reaches the disk (`--sync`), as Redis's `appendfsync`
/// asks. Either way a message is written to its file (the kernel has it) before its
/// sender hears 0 or 1, so a server killed by SIGKILL loses nothing it promised; the
/// policy decides what a power cut or a kernel crash can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// `always`: every write is synced before the sender hears of it: a power cut loses
    /// nothing promised, at the cost of a disk flush per batch of messages.
    Always,
    /// `every-second`: files written are synced once a second (and at a clean stop): a
    /// power cut can lose what was promised in the last second or so.
    #[default]
    EverySecond,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: DEFAULT_BIND.parse().expect("the default address parses"),
            port: DEFAULT_PORT,
            users: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            max_clients: DEFAULT_MAX_CLIENTS,
            write_timeout: Duration::from_secs(DEFAULT_WRITE_TIMEOUT_SECS),
            frame_timeout: Duration::from_secs(DEFAULT_FRAME_TIMEOUT_SECS),
            login_failures: DEFAULT_LOGIN_FAILURES,
            mailbox_limit: DEFAULT_MAILBOX_LIMIT,
            store_limit: DEFAULT_STORE_LIMIT,
            sync: SyncPolicy::default(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start the server with this configuration.
    Run(Config),
    /// Print the usage and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// A command line that cannot be used, and why, naming the flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The command line as strings, or an error naming the first argument that is not
/// UTF-8 (a name typed in a GBK terminal, say): `std::env::args` would panic on it.
pub fn utf8_args(args: impl IntoIterator<Item = OsString>) -> Result<Vec<String>, UsageError> {
    args.into_iter()
        .enumerate()
        .map(|(index, arg)| {
            arg.into_string().map_err(|arg| {
                UsageError(format!(
                    "argument {} ({}) is not valid UTF-8; is your terminal set to UTF-8?",
                    index + 1,
                    arg.to_string_lossy()
                ))
            })
        })
        .collect()
}

/// Parses the arguments that follow the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, UsageError> {
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, UsageError> {
            match inline_value {
                Some(value) => Ok(value.to_string()),
                None => args
                    .next()
                    .ok_or_else(|| UsageError(format!("{flag} needs a value"))),
            }
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--bind" => config.bind = number_or_address(&flag, &value()?, "an IP address")?,
            "--port" => config.port = number_or_address(&flag, &value()?, "a port number")?,
            "--users" => config.users = Some(PathBuf::from(value()?)),
            "--data-dir" => config.data_dir = PathBuf::from(value()?),
            "--max-clients" => {
                config.max_clients = positive(&flag, &value()?)?;
            }
            "--write-timeout" => config.write_timeout = timeout(&flag, &value()?)?,
            "--frame-timeout" => config.frame_timeout = timeout(&flag, &value()?)?,
            "--login-failures" => {
                config.login_failures = positive(&flag, &value()?)?;
            }
            // A limit of 0 would answer every offline message -7: a server that
            // cannot queue is a mistake, not a setting.
            "--mailbox-limit" => {
                config.mailbox_limit = positive(&flag, &value()?)?;
            }
            "--store-limit" => {
                config.store_limit = positive(&flag, &value()?)?;
            }
            "--sync" => {
                config.sync = match value()?.as_str() {
                    "always" => SyncPolicy::Always,
                    "every-second" => SyncPolicy::EverySecond,
                    other => {
                        return Err(UsageError(format!(
                            "--sync takes `always` or `every-second`, not {other:?}"
                        )));
                    }
                }
            }
            _ if arg.starts_with('-') => {
                return Err(UsageError(format!("unknown option {arg}")));
            }
            _ => return Err(UsageError(format!("unexpected argument {arg:?}"))),
        }
    }
    Ok(Command::Run(config))
}

fn number_or_address<T: FromStr>(flag: &str, value: &str, what: &str) -> Result<T, UsageError> {
    value
        .parse()
        .map_err(|_| UsageError(format!("{flag} takes {what}, not {value:?}")))
}

fn positive(flag: &str, value: &str) -> Result<usize, UsageError> {
    match value.parse::<usize>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(UsageError(format!(
            "{flag} takes a whole number above 0, not {value:?}"
        ))),
    }
}

/// A timeout flag's value: whole seconds, from 1 to [`MAX_TIMEOUT_SECS`].
fn timeout(flag: &str, value: &str) -> Result<Duration, UsageError> {
    match value.parse::<u64>() {
        Ok(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(UsageError(format!(
            "{flag} takes whole seconds from 1 to {MAX_TIMEOUT_SECS} (a day), not {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, UsageError> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn no_flags_give_the_originals_defaults() {
        let Command::Run(config) = parse_line("").unwrap() else {
            panic!("expected a config")
        };
        assert_eq!(config.bind.to_string(), "0.0.0.0");
        assert_eq!(config.port, 12345);
        assert_eq!(config.users, None);
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.max_clients, 10_000);
        assert_eq!(config.write_timeout, Duration::from_secs(10));
        assert_eq!(config.frame_timeout, Duration::from_secs(10));
        assert_eq!(config.login_failures, 20);
        assert_eq!(config.mailbox_limit, 10_000);
        assert_eq!(config.store_limit, 1_000_000);
    }

    #[test]
    fn every_flag_is_read_in_both_spellings() {
        let line = "--bind 127.0.0.1 --port=0 --users u.txt --data-dir=/tmp/d \
                    --max-clients 3 --write-timeout=2 --frame-timeout 4 \
                    --login-failures=7 --mailbox-limit 8 --store-limit=9";
        let Command::Run(config) = parse_line(line).unwrap() else {
            panic!("expected a config")
        };
        assert_eq!(config.bind.to_string(), "127.0.0.1");
        assert_eq!(config.port, 0);
        assert_eq!(config.users, Some(PathBuf::from("u.txt")));
        assert_eq!(config.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(config.max_clients, 3);
        assert_eq!(config.write_timeout, Duration::from_secs(2));
        assert_eq!(config.frame_timeout, Duration::from_secs(4));
        assert_eq!(config.login_failures, 7);
        assert_eq!(config.mailbox_limit, 8);
        assert_eq!(config.store_limit, 9);
    }

    #[test]
    fn a_mailbox_or_store_limit_of_zero_is_refused() {
        for flag in ["--mailbox-limit", "--store-limit"] {
            for line in [format!("{flag} 0"), format!("{flag}=0")] {
                let error = parse_line(&line).unwrap_err().to_string();
                assert_eq!(
                    error,
                    format!("{flag} takes a whole number above 0, not \"0\"")
                );
            }
            assert!(
                parse_line(&format!("{flag} 1")).is_ok(),
                "{flag} 1 is the least"
            );
        }
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse_line("--port 1 --help").unwrap(), Command::Help);
        assert_eq!(parse_line("--version").unwrap(), Command::Version);
    }

    #[test]
    fn mistakes_name_the_flag() {
        for (line, words) in [
            ("--prot 1", "unknown option --prot"),
            ("--port", "--port needs a value"),
            ("--port 70000", "--port takes a port number"),
            ("--bind localhost", "--bind takes an IP address"),
            (
                "--max-clients 0",
                "--max-clients takes a whole number above 0",
            ),
            ("--write-timeout soon", "--write-timeout takes"),
            (
                "--frame-timeout 0",
                "--frame-timeout takes whole seconds from 1 to 86400",
            ),
            (
                "--frame-timeout 18446744073709551615",
                "--frame-timeout takes whole seconds from 1 to 86400",
            ),
            (
                "--write-timeout 86401",
                "--write-timeout takes whole seconds from 1 to 86400",
            ),
            (
                "--login-failures 0",
                "--login-failures takes a whole number above 0",
            ),
            (
                "--store-limit lots",
                "--store-limit takes a whole number above 0",
            ),
            ("stray", "unexpected argument"),
        ] {
            let error = parse_line(line).unwrap_err().to_string();
            assert!(error.contains(words), "{line:?} gave {error:?}");
        }
    }
}
