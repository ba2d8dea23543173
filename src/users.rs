//! The account directory: who may log in, and the users file it is read from.
//!
//! The directory is fixed for the life of the server: either the original's six built-in
//! accounts or the accounts of a users file (PROTOCOL.md §4). A mistake in the file is a
//! startup error that names the file and the line, so nobody runs a server with half of
//! its users silently missing.

use crate::protocol::{NAME_LEN, PASSWORD_LEN, ROOM};
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The password of every built-in account.
const BUILT_IN_PASSWORD: &str = "123456";
/// The original's six accounts, in the order its table lists them.
const BUILT_IN_NAMES: [&str; 6] = ["1001", "1002", "似末", "1003", "玛卡巴卡", "花开富贵"];

/// Every account the server knows: name → password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    passwords: HashMap<String, String>,
}

impl Directory {
    /// The original's six accounts, all with password `123456`.
    pub fn built_in() -> Directory {
        let passwords = BUILT_IN_NAMES
            .iter()
            .map(|name| (name.to_string(), BUILT_IN_PASSWORD.to_string()))
            .collect();
        Directory { passwords }
    }

    /// Reads a users file; any bad line makes the whole file an error.
    pub fn load(path: &Path) -> Result<Directory, UsersFileError> {
        let contents = fs::read(path).map_err(|error| UsersFileError {
            path: path.to_path_buf(),
            line: None,
            problem: format!("cannot read it: {error}"),
        })?;
        Directory::parse(&contents).map_err(|(line, problem)| UsersFileError {
            path: path.to_path_buf(),
            line: Some(line),
            problem,
        })
    }

    /// Parses the contents of a users file. On error: the line number (from 1) and what
    /// is wrong with it.
    pub fn parse(contents: &[u8]) -> Result<Directory, (usize, String)> {
        let mut passwords = HashMap::new();
        for (index, raw) in contents.split(|&b| b == b'\n').enumerate() {
            let line_number = index + 1;
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let line = std::str::from_utf8(line)
                .map_err(|_| (line_number, "the line is not valid UTF-8".to_string()))?;
            let (name, password) = line.split_once(':').ok_or_else(|| {
                (
                    line_number,
                    "expected `name:password` (no `:` found)".to_string(),
                )
            })?;
            check_name(name).map_err(|problem| (line_number, problem))?;
            if password.len() > PASSWORD_LEN {
                let problem = format!(
                    "the password is {} bytes; at most {PASSWORD_LEN} fit",
                    password.len()
                );
                return Err((line_number, problem));
            }
            if passwords
                .insert(name.to_string(), password.to_string())
                .is_some()
            {
                return Err((line_number, format!("user `{name}` is listed twice")));
            }
        }
        Ok(Directory { passwords })
    }

    /// True when `name` is an account and `password` is its password.
    pub fn check(&self, name: &str, password: &[u8]) -> bool {
        self.passwords
            .get(name)
            .is_some_and(|expected| expected.as_bytes() == password)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.passwords.contains_key(name)
    }

    /// Every account name, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.passwords.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }
}

/// Whether `name` may be an account name (PROTOCOL.md §4).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    if name.len() > NAME_LEN {
        return Err(format!(
            "the name `{name}` is {} bytes; at most {NAME_LEN} fit",
            name.len()
        ));
    }
    if name == ROOM {
        return Err(format!("`{ROOM}` is the room, not a user name"));
    }
    if name.contains('\0') {
        return Err("the name contains a NUL byte".to_string());
    }
    Ok(())
}

/// A users file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersFileError {
    pub path: PathBuf,
    /// The line at fault, counting every line from 1; `None` when the file cannot be read.
    pub line: Option<usize>,
    pub problem: String,
}

impl fmt::Display for UsersFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "users file {}, line {line}: {}",
                self.path.display(),
                self.problem
            ),
            None => write!(f, "users file {}: {}", self.path.display(), self.problem),
        }
    }
}

impl std::error::Error for UsersFileError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_accounts_are_the_originals_six() {
        let directory = Directory::built_in();
        assert_eq!(directory.len(), 6);
        for name in ["1001", "1002", "1003", "似末", "玛卡巴卡", "花开富贵"] {
            assert!(directory.check(name, b"123456"), "{name}");
        }
        assert!(!directory.check("1001", b"12345"));
        assert!(!directory.check("1004", b"123456"));
    }

    #[test]
    fn parse_skips_comments_and_blank_lines_and_splits_at_the_first_colon() {
        let directory = Directory::parse(b"# team\n\nalice:pa:ss\r\nbob:\n").unwrap();
        assert_eq!(directory.len(), 2);
        assert!(directory.check("alice", b"pa:ss"));
        assert!(directory.check("bob", b""));
    }

    #[test]
    fn parse_keeps_spaces_as_part_of_names_and_passwords() {
        let directory = Directory::parse(b" carol : x \n").unwrap();
        assert!(directory.check(" carol ", b" x "));
    }

    #[test]
    fn parse_names_the_line_of_each_mistake() {
        let cases: [(&[u8], usize, &str); 7] = [
            (b"a:1\nno colon here\n", 2, "no `:`"),
            (b"# c\n:pw\n", 2, "name is empty"),
            (b"*:pw\n", 1, "room"),
            (b"abcdefghijklmnopqrstu:pw\n", 1, "at most 20"),
            (b"a:123456789012345678901\n", 1, "password"),
            (b"a:1\nb:2\na:3\n", 3, "twice"),
            (b"a:1\n\xff:2\n", 2, "UTF-8"),
        ];
        for (contents, line, words) in cases {
            let (got_line, problem) = Directory::parse(contents).unwrap_err();
            assert_eq!(got_line, line, "{problem}");
            assert!(
                problem.contains(words),
                "{problem:?} should mention {words:?}"
            );
        }
    }

    #[test]
    fn a_twenty_byte_chinese_name_fits() {
        // Six three-byte characters and two ASCII digits: exactly 20 bytes.
        let directory = Directory::parse("花开富贵花开12:pw".as_bytes()).unwrap();
        assert!(directory.contains("花开富贵花开12"));
    }

    #[test]
    fn load_error_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("chatroom-users-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.txt");
        fs::write(&path, "ok:1\nbroken\n").unwrap();
        let message = Directory::load(&path).unwrap_err().to_string();
        assert!(message.contains("users.txt, line 2"), "{message}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
