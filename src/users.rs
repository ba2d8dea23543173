//! The account directory: who may log in, and the users file it is read from.
//!
//! The directory is fixed for the life of the server: either the original's six built-in
//! accounts or the accounts of a users file (docs/PROTOCOL.md §4). A mistake in the file is a
//! startup error that names the file and the line, so nobody runs a server with half of
//! its users silently missing.

use crate::protocol::{Credentials, NAME_LEN, Name, PASSWORD_LEN, Password, ROOM};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The password of every built-in account.
const BUILT_IN_PASSWORD: &str = "123456";
/// The original's six accounts, in the order its table lists them.
const BUILT_IN_NAMES: [&str; 6] = ["1001", "1002", "似末", "1003", "玛卡巴卡", "花开富贵"];

/// The byte order mark some editors put at the start of a UTF-8 file.
const UTF8_BOM: &[u8] = "\u{FEFF}".as_bytes();
/// Starts a comment line, after any [`INDENT`].
const COMMENT: u8 = b'#';
/// What a blank line holds, and what may stand before a comment's `#`: spaces and tabs.
/// (Only the decision to skip a line looks past them: in an account's line they belong
/// to the name.)
const INDENT: [u8; 2] = [b' ', b'\t'];

/// An account's place in the directory, fixed while the server runs: other tables keep
/// one entry per account (see `Mailboxes`) and index them with it.
pub type AccountId = usize;

/// Every account the server knows.
///
/// Like the original's `userInfo` table, each account is one fixed-size USERINFO record
/// (40 bytes, no heap allocation of its own): a load test's 20,000 accounts cost 800 KB.
/// The table is sorted by name. Every relayed message looks its receiver up, so beside
/// it sits a hash index of 4 bytes a slot (128 KB for 20,000 accounts): a binary search
/// of a table that size missed the cache at nearly every probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    accounts: Vec<Credentials>,
    /// Open addressing with linear probing: each slot holds an index into `accounts`,
    /// or [`EMPTY_SLOT`]. At most two thirds full, so a lookup reads one or two slots.
    /// Only the users file fills it, so no client can make its chains long; a name
    /// that is not there costs a walk to the next empty slot.
    index: Vec<u32>,
}

/// A free slot of the index.
const EMPTY_SLOT: u32 = u32::MAX;

impl Accounts {
    /// The original's six accounts, all with password `123456`.
    pub fn built_in() -> Accounts {
        let password = Password::new(BUILT_IN_PASSWORD).expect("the built-in password fits");
        let accounts = BUILT_IN_NAMES
            .iter()
            .map(|name| Credentials {
                name: Name::new(name).expect("the built-in names fit"),
                password,
            })
            .collect();
        Accounts::sorted(accounts)
    }

    /// Reads a users file; any bad line makes the whole file an error.
    pub fn load(path: &Path) -> Result<Accounts, UsersFileError> {
        let contents = fs::read(path).map_err(|error| UsersFileError {
            path: path.to_path_buf(),
            line: None,
            problem: format!("cannot read it: {error}"),
        })?;
        let directory = Accounts::parse(&contents).map_err(|(line, problem)| UsersFileError {
            path: path.to_path_buf(),
            line: Some(line),
            problem,
        })?;
        if directory.is_empty() {
            // A server nobody can log in to is a mistake, not a configuration.
            return Err(UsersFileError {
                path: path.to_path_buf(),
                line: None,
                problem: "it holds no accounts, so nobody could log in \
                          (write one `name:password` a line)"
                    .to_string(),
            });
        }
        Ok(directory)
    }

    /// Parses the contents of a users file. On error: the line number (from 1) and what
    /// is wrong with it.
    pub fn parse(contents: &[u8]) -> Result<Accounts, (usize, String)> {
        // Editors on Windows start a UTF-8 file with a byte order mark; it is not part of
        // the first name.
        let contents = contents.strip_prefix(UTF8_BOM).unwrap_or(contents);
        let lines = contents.split(|&b| b == b'\n');
        // Sized once: a table grown by doubling leaves its old copies in the allocator.
        let mut numbered = Vec::with_capacity(lines.clone().count());
        for (index, raw) in lines.enumerate() {
            let line_number = index + 1;
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if is_blank_or_comment(line) {
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
            if password.contains('\0') {
                return Err((line_number, "the password contains a NUL byte".to_string()));
            }
            let password = Password::new(password).map_err(|_| {
                let problem = format!(
                    "the password is {} bytes; at most {PASSWORD_LEN} fit",
                    password.len()
                );
                (line_number, problem)
            })?;
            let name = Name::new(name).expect("check_name checked the length");
            numbered.push((Credentials { name, password }, line_number));
        }
        // A stable sort keeps a name's lines in file order: the second one is the mistake.
        numbered.sort_by_key(|(account, _)| sort_key(&account.name));
        if let Some(pair) = numbered
            .windows(2)
            .find(|pair| pair[0].0.name == pair[1].0.name)
        {
            let (account, line_number) = &pair[1];
            let problem = format!("user `{}` is listed twice", account.name);
            return Err((*line_number, problem));
        }
        if numbered.len() >= EMPTY_SLOT as usize {
            let line_number = numbered.last().map_or(0, |(_, line)| *line);
            return Err((line_number, "too many accounts for one server".to_string()));
        }
        Ok(Accounts::indexed(
            numbered.into_iter().map(|(account, _)| account).collect(),
        ))
    }

    fn sorted(mut accounts: Vec<Credentials>) -> Accounts {
        accounts.sort_by_key(|account| sort_key(&account.name));
        Accounts::indexed(accounts)
    }

    /// The table with its hash index built.
    fn indexed(accounts: Vec<Credentials>) -> Accounts {
        let slots = (accounts.len() * 3 / 2 + 1).next_power_of_two();
        let mut index = vec![EMPTY_SLOT; slots];
        for (id, account) in accounts.iter().enumerate() {
            let mut slot = home_slot(&account.name, slots);
            while index[slot] != EMPTY_SLOT {
                slot = (slot + 1) & (slots - 1);
            }
            index[slot] = u32::try_from(id).expect("parse refuses more accounts than fit");
        }
        Accounts { accounts, index }
    }

    /// The account called `name`, if there is one.
    pub fn id(&self, name: &str) -> Option<AccountId> {
        self.id_of(&Name::new(name).ok()?)
    }

    /// The account whose name fills `name`'s field, if there is one: for a message's
    /// receiver, whose field is already at hand.
    pub fn id_of(&self, name: &Name) -> Option<AccountId> {
        let wanted = sort_key(name);
        let mask = self.index.len() - 1;
        let mut slot = home_slot(name, self.index.len());
        loop {
            let id = self.index[slot];
            if id == EMPTY_SLOT {
                return None;
            }
            let id = id as usize;
            if sort_key(&self.accounts[id].name) == wanted {
                return Some(id);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The name of account `id`.
    pub fn name(&self, id: AccountId) -> &str {
        self.accounts[id]
            .name
            .as_str()
            .expect("account names are checked UTF-8 when loaded")
    }

    /// True when `name` is an account and `password` is its password: the original's loop
    /// over `userInfo[i]` with two `strcmp`s, as one hash lookup and one comparison.
    pub fn check(&self, name: &str, password: &[u8]) -> bool {
        self.id(name)
            .is_some_and(|id| self.accounts[id].password.as_bytes() == password)
    }

    /// True if `name` is an account.
    pub fn contains(&self, name: &str) -> bool {
        self.id(name).is_some()
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// True if there are none (a users file must have at least one).
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

/// The order of the table: a name's zero-padded 20-byte field read as two big-endian
/// integers. That is the order of the names' bytes, since a name holds no NUL and the
/// padding sorts before any byte of a longer name.
fn sort_key(name: &Name) -> (u128, u32) {
    let (high, low) = name.field().split_at(16);
    (
        u128::from_be_bytes(high.try_into().expect("16 of the 20 bytes")),
        u32::from_be_bytes(low.try_into().expect("the last 4 bytes")),
    )
}

/// Where `name` starts its search in an index of `slots` slots (a power of two): a
/// multiplicative hash of the name's 20 bytes, which is fast and spreads the names of a
/// users file well; the file is trusted, so no defence against crafted collisions.
fn home_slot(name: &Name, slots: usize) -> usize {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15; // 2^64 / the golden ratio
    let (high, low) = sort_key(name);
    let mut hash = (high as u64).wrapping_mul(MULTIPLIER);
    hash = (hash ^ (high >> 64) as u64).wrapping_mul(MULTIPLIER);
    hash = (hash ^ u64::from(low)).wrapping_mul(MULTIPLIER);
    // The high bits are the well-mixed ones.
    (hash >> 32) as usize & (slots - 1)
}

/// Whether a line holds no account: nothing but [`INDENT`], or a [`COMMENT`] after it.
/// An editor's indentation or a stray space must not turn a comment into a mistake.
fn is_blank_or_comment(line: &[u8]) -> bool {
    match line.iter().find(|byte| !INDENT.contains(byte)) {
        None => true,
        Some(&first) => first == COMMENT,
    }
}

/// Whether `name` may be an account name (docs/PROTOCOL.md §4).
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
    /// The users file.
    pub path: PathBuf,
    /// The line at fault, counting every line from 1; `None` when the file cannot be read.
    pub line: Option<usize>,
    /// What is wrong, in words.
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
        let directory = Accounts::built_in();
        assert_eq!(directory.len(), 6);
        for name in ["1001", "1002", "1003", "似末", "玛卡巴卡", "花开富贵"] {
            assert!(directory.check(name, b"123456"), "{name}");
        }
        assert!(!directory.check("1001", b"12345"));
        assert!(!directory.check("1004", b"123456"));
    }

    #[test]
    fn parse_skips_comments_and_blank_lines_and_splits_at_the_first_colon() {
        let directory = Accounts::parse(b"# team\n\nalice:pa:ss\r\nbob:\n").unwrap();
        assert_eq!(directory.len(), 2);
        assert!(directory.check("alice", b"pa:ss"));
        assert!(directory.check("bob", b""));
    }

    #[test]
    fn lines_of_only_spaces_and_tabs_and_indented_comments_are_skipped() {
        let file = b"alice:1\n   \n\t\n \t \r\n  # indented\n\t# tabbed\nbob:2\n";
        let directory = Accounts::parse(file).unwrap();
        assert_eq!(directory.len(), 2);
        assert!(directory.check("alice", b"1") && directory.check("bob", b"2"));
        // A comment is skipped before it is read, so it need not be UTF-8 (a GBK note).
        assert_eq!(
            Accounts::parse(b"  # \xc4\xe3\xba\xc3\nbob:2\n")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn parse_keeps_spaces_as_part_of_names_and_passwords() {
        let directory = Accounts::parse(b" carol : x \n").unwrap();
        assert!(directory.check(" carol ", b" x "));
    }

    #[test]
    fn parse_names_the_line_of_each_mistake() {
        let cases: [(&[u8], usize, &str); 9] = [
            (b"a:1\nno colon here\n", 2, "no `:`"),
            (b"a:1\n  indented, no colon\n", 2, "no `:`"),
            (b"# c\n:pw\n", 2, "name is empty"),
            (b"*:pw\n", 1, "room"),
            (b"abcdefghijklmnopqrstu:pw\n", 1, "at most 20"),
            (b"a:123456789012345678901\n", 1, "password"),
            (b"a:1\nb:2\na:3\n", 3, "twice"),
            (b"a:1\n\xff:2\n", 2, "UTF-8"),
            (b"a:1\nb:x\0y\n", 2, "NUL"),
        ];
        for (contents, line, words) in cases {
            let (got_line, problem) = Accounts::parse(contents).unwrap_err();
            assert_eq!(got_line, line, "{problem}");
            assert!(
                problem.contains(words),
                "{problem:?} should mention {words:?}"
            );
        }
    }

    #[test]
    fn every_account_of_a_large_file_is_found_by_name() {
        let file: String = (0..1000).rev().map(|i| format!("u{i}:pw{i}\n")).collect();
        let directory = Accounts::parse(file.as_bytes()).unwrap();
        for i in 0..1000 {
            let name = format!("u{i}");
            let id = directory.id(&name).expect("listed");
            assert_eq!(directory.name(id), name);
            assert!(directory.check(&name, format!("pw{i}").as_bytes()));
        }
        assert_eq!(directory.id("u1000"), None);
        assert_eq!(directory.id(""), None);
    }

    #[test]
    fn a_twenty_byte_chinese_name_fits() {
        // Six three-byte characters and two ASCII digits: exactly 20 bytes.
        let directory = Accounts::parse("花开富贵花开12:pw".as_bytes()).unwrap();
        assert!(directory.contains("花开富贵花开12"));
    }

    #[test]
    fn load_error_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("chatroom-users-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.txt");
        fs::write(&path, "ok:1\nbroken\n").unwrap();
        let message = Accounts::load(&path).unwrap_err().to_string();
        assert!(message.contains("users.txt, line 2"), "{message}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_name() {
        let directory = Accounts::parse("\u{FEFF}alice:pw\nbob:pw\n".as_bytes()).unwrap();
        assert!(directory.check("alice", b"pw"));
    }

    #[test]
    fn a_file_without_accounts_is_refused() {
        let dir = std::env::temp_dir().join(format!("chatroom-empty-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.txt");
        for contents in ["", "# only comments\n\n", "\u{FEFF}"] {
            fs::write(&path, contents).unwrap();
            let message = Accounts::load(&path).unwrap_err().to_string();
            assert!(message.contains("no accounts"), "{contents:?}: {message}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_table_order_is_the_order_of_the_names_bytes() {
        let mut names = vec![
            "b",
            "ab",
            "a",
            "a b",
            "10010",
            "1001",
            "似末",
            "花开富贵花开12",
            "~",
        ];
        let mut by_key = names.clone();
        by_key.sort_by_key(|name| sort_key(&Name::new(name).unwrap()));
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(by_key, names);
    }
}

/// Properties of the users-file parser over generated files (`proptest`), with a fixed
/// seed so that every run tries the same files: a failure replays as it was.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use std::collections::HashSet;

    /// The seed of every run (`PROPTEST_RNG_SEED` does not apply: the config is fixed).
    const SEED: u64 = 0x5EED_0F0C_11A7;
    /// Files tried per property.
    const CASES: u32 = 512;
    /// Longest generated file, in bytes, for the any-bytes property.
    const MAX_FILE_BYTES: usize = 400;
    /// Most accounts in a generated file.
    const MAX_ACCOUNTS: usize = 40;

    fn config() -> Config {
        Config {
            cases: CASES,
            rng_seed: RngSeed::Fixed(SEED),
            // A fixed seed replays a failure; no regression files in the source tree.
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// Bytes that users files are made of, more often than chance would pick them.
    fn file_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b"\n\r:# \t*\0ab".to_vec()),
        ]
    }

    /// The longest prefix of `chars` that fits in `limit` bytes.
    fn fitting(chars: Vec<char>, limit: usize) -> String {
        let mut text = String::new();
        for c in chars {
            if text.len() + c.len_utf8() > limit {
                break;
            }
            text.push(c);
        }
        text
    }

    /// A name the users file can hold: no `:`, line break or NUL, not the room, not
    /// read as a comment or a byte order mark.
    fn name() -> impl Strategy<Value = String> {
        let char = any::<char>().prop_filter("not in a name", |c| !matches!(c, ':' | '\n' | '\0'));
        vec(char, 1..=NAME_LEN)
            .prop_map(|chars| fitting(chars, NAME_LEN))
            .prop_filter("a valid name", |name| {
                !is_blank_or_comment(name.as_bytes())
                    && check_name(name).is_ok()
                    && !name.starts_with('\u{FEFF}')
            })
    }

    /// A password the users file can hold: no line break or NUL, and no `\r` at its end
    /// (the file's CRLF line end would take it).
    fn password() -> impl Strategy<Value = String> {
        let char = any::<char>().prop_filter("not in a password", |c| !matches!(c, '\n' | '\0'));
        vec(char, 0..=PASSWORD_LEN)
            .prop_map(|chars| fitting(chars, PASSWORD_LEN))
            .prop_filter("no trailing CR", |password| !password.ends_with('\r'))
    }

    /// Lines that hold no account.
    fn filler() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "",
            "  ",
            "\t \t",
            "# a comment",
            "   # indented",
            "\t#",
        ])
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_bytes_give_accounts_or_an_error_naming_one_of_their_lines(
            contents in vec(file_byte(), 0..MAX_FILE_BYTES),
        ) {
            let lines = contents.split(|&b| b == b'\n').count();
            if let Err((line, problem)) = Accounts::parse(&contents) {
                prop_assert!((1..=lines).contains(&line), "line {line} of {lines}: {problem}");
                prop_assert!(!problem.is_empty());
            }
        }

        #[test]
        fn a_file_written_from_valid_accounts_parses_back_to_the_same_accounts(
            generated in vec((name(), password()), 1..=MAX_ACCOUNTS),
            fillers in vec(vec(filler(), 0..3), MAX_ACCOUNTS),
            crlf: bool,
            bom: bool,
        ) {
            // Each name once, in the order generated (not sorted: the parser sorts).
            let mut seen = HashSet::new();
            let accounts: Vec<(String, String)> =
                generated.into_iter().filter(|(name, _)| seen.insert(name.clone())).collect();
            let line_end = if crlf { "\r\n" } else { "\n" };
            let mut file = String::from(if bom { "\u{FEFF}" } else { "" });
            for ((name, password), fill) in accounts.iter().zip(&fillers) {
                for line in fill {
                    file.push_str(line);
                    file.push_str(line_end);
                }
                file.push_str(&format!("{name}:{password}{line_end}"));
            }
            let parsed = Accounts::parse(file.as_bytes())
                .map_err(|(line, problem)| TestCaseError::fail(format!("line {line}: {problem}")))?;
            let expected = accounts
                .iter()
                .map(|(name, password)| Credentials {
                    name: Name::new(name).unwrap(),
                    password: Password::new(password).unwrap(),
                })
                .collect();
            prop_assert_eq!(&parsed, &Accounts::sorted(expected));
            for (name, password) in &accounts {
                prop_assert!(parsed.check(name, password.as_bytes()), "{name:?}");
            }
        }
    }
}
