//! Offline messages on disk: one append-only file per user (PROTOCOL.md §2).
//!
//! A record is the 140-byte CHAT body exactly as it will be delivered, so a mailbox file
//! is a plain array of them. Appending syncs the data before returning, because the
//! sender's QUEUED echo is a promise that the message survives a crash. A crash in the
//! middle of an append leaves a torn record at the end of the file; loading drops it and
//! the next append cuts it off, so it is never delivered as garbage.
//!
//! Each user's [`Mailbox`] sits behind its own lock, and that lock is also what makes
//! delivery and login agree (see [`Mailboxes::lock`]).

use crate::protocol::{CHAT_BODY_LEN, ChatMessage};
use crate::users::{AccountId, Directory};
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file name extension of a mailbox.
const MAILBOX_EXTENSION: &str = "mbox";
/// The record size: one CHAT body.
const RECORD_LEN: u64 = CHAT_BODY_LEN as u64;

/// What happened to a message handed to [`Mailbox::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Written and synced: it will be delivered.
    Queued,
    /// The mailbox is at its limit; nothing was written.
    Full,
}

/// Every user's mailbox, under one data directory.
#[derive(Debug)]
pub struct Mailboxes {
    dir: PathBuf,
    limit: usize,
    users: Arc<Directory>,
    /// One lock per account, indexed by `AccountId`, made up front: the set of accounts
    /// never changes while the server runs, so finding a mailbox needs no lock of its
    /// own. Two bytes per account; paths are made only when a file is touched.
    ///
    /// The lock guards whether the file may hold messages: true if it was there at
    /// startup or has been appended to since it was last cleared. Most logins find it
    /// false and skip the file system altogether.
    locks: Vec<Mutex<bool>>,
}

impl Mailboxes {
    /// Mailboxes for every account of `users` under `dir`, each holding at most `limit`
    /// messages. The directory is created when the first message is stored; an existing
    /// path that is not a usable directory is an error now, not at the first message.
    pub fn new(dir: &Path, limit: usize, users: Arc<Directory>) -> Result<Mailboxes, String> {
        match fs::metadata(dir) {
            Ok(metadata) if !metadata.is_dir() => {
                return Err(format!(
                    "data directory {}: exists and is not a directory",
                    dir.display()
                ));
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(format!("data directory {}: {error}", dir.display()));
            }
        }
        let mut locks: Vec<Mutex<bool>> = (0..users.len()).map(|_| Mutex::new(false)).collect();
        if dir.exists() {
            for id in stored_mailboxes(dir, &users)? {
                *locks[id].get_mut() = true;
            }
        }
        Ok(Mailboxes {
            dir: dir.to_path_buf(),
            limit,
            users,
            locks,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Locks `name`'s mailbox; `None` if `name` is not an account.
    ///
    /// This lock is the one rule that keeps offline delivery gap-free and in order:
    /// - a sender holds the receiver's mailbox lock while it chooses between writing to
    ///   the receiver's socket and appending to the mailbox, and while it does either;
    /// - a login holds its own mailbox lock from before it drains the mailbox until after
    ///   it has put itself in the online map.
    ///
    /// So a message sent during a login either lands in the mailbox before the drain (and
    /// is drained, after everything older) or is sent live after the login is complete
    /// (and so after everything drained). It can never fall between the two.
    pub fn lock(&self, name: &str) -> Option<Mailbox<'_>> {
        let id = self.users.id(name)?;
        Some(Mailbox {
            may_hold_mail: self.locks[id].lock(),
            owner: self.users.name(id),
            dir: &self.dir,
            limit: self.limit,
        })
    }
}

/// The accounts that have a mailbox file in `dir`. Any other file is reported and left
/// alone.
fn stored_mailboxes(dir: &Path, users: &Directory) -> Result<Vec<AccountId>, String> {
    let unreadable = |error| format!("data directory {}: cannot be read: {error}", dir.display());
    let mut files = HashSet::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        files.insert(entry.map_err(unreadable)?.file_name());
    }
    let found = (0..users.len())
        .filter(|&id| files.remove(OsStr::new(&file_name(users.name(id)))))
        .collect();
    for stranger in files {
        log::warn!(
            "{}: not the mailbox of any account; ignored",
            dir.join(stranger).display()
        );
    }
    Ok(found)
}

/// The file name for `name`'s mailbox: the name's bytes in hex, safe for any UTF-8 name
/// on any file system.
fn file_name(name: &str) -> String {
    let mut file = String::with_capacity(name.len() * 2 + 1 + MAILBOX_EXTENSION.len());
    for byte in name.bytes() {
        write!(file, "{byte:02x}").expect("writing to a String cannot fail");
    }
    file.push('.');
    file.push_str(MAILBOX_EXTENSION);
    file
}

/// One user's stored messages, locked. Only reachable through [`Mailboxes::lock`]; the
/// lock is released when this is dropped.
pub struct Mailbox<'a> {
    /// The lock, and whether the file may hold messages.
    may_hold_mail: MutexGuard<'a, bool>,
    owner: &'a str,
    dir: &'a Path,
    limit: usize,
}

impl Mailbox<'_> {
    /// Appends `message` and syncs it to disk, unless the mailbox is full.
    pub fn append(&mut self, message: &ChatMessage) -> io::Result<Stored> {
        let path = self.path();
        let (mut file, created) = self.open_for_append(&path)?;
        // From here on the file exists, and may hold a torn record if this append fails.
        *self.may_hold_mail = true;
        let len = file.metadata()?.len();
        let torn = len % RECORD_LEN;
        if torn != 0 {
            // A crash cut the last append short: drop the fragment, or every record
            // after it would be misaligned.
            log::warn!(
                "{}: dropping a torn record ({torn} bytes) at the end",
                path.display()
            );
            file.set_len(len - torn)?;
        }
        let count = len / RECORD_LEN;
        if count >= u64::try_from(self.limit).unwrap_or(u64::MAX) {
            return Ok(Stored::Full);
        }
        file.write_all(&message.to_bytes())?;
        file.sync_data()?;
        if created {
            // A new file's name lives in the directory: sync that too, or a crash could
            // lose the whole file after we promised QUEUED.
            File::open(self.dir)?.sync_all()?;
        }
        Ok(Stored::Queued)
    }

    /// Opens the file for appending, creating it and the data directory as needed.
    /// Returns the file and whether it was just created.
    fn open_for_append(&self, path: &Path) -> io::Result<(File, bool)> {
        let open = |create_new: bool| {
            let mut options = OpenOptions::new();
            options.append(true);
            if create_new {
                options.create_new(true);
            }
            options.open(path)
        };
        match open(false) {
            Ok(file) => Ok((file, false)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(self.dir)?;
                match open(true) {
                    Ok(file) => Ok((file, true)),
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        Ok((open(false)?, false))
                    }
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Every whole stored message, oldest first. A torn record at the end is left out.
    pub fn load(&self) -> io::Result<Vec<ChatMessage>> {
        if !*self.may_hold_mail {
            return Ok(Vec::new());
        }
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let records = bytes.chunks_exact(CHAT_BODY_LEN);
        if !records.remainder().is_empty() {
            log::warn!(
                "{}: ignoring a torn record ({} bytes) at the end",
                path.display(),
                records.remainder().len()
            );
        }
        Ok(records
            .map(|record| ChatMessage::decode(record.try_into().expect("chunks are 140 bytes")))
            .collect())
    }

    /// Forgets every stored message: called once they were all written to the owner's
    /// socket.
    pub fn clear(&mut self) -> io::Result<()> {
        match fs::remove_file(self.path()) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => {
                *self.may_hold_mail = false;
                Ok(())
            }
        }
    }

    /// The mailbox's file (which may not exist yet).
    pub fn path(&self) -> PathBuf {
        self.dir.join(file_name(self.owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MessageText, Name};

    fn temp_dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("chatroom-mailbox-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn message(text: &str) -> ChatMessage {
        ChatMessage {
            sender: Name::new("1001").unwrap(),
            receiver: Name::new("似末").unwrap(),
            text: MessageText::new(text).unwrap(),
        }
    }

    fn stored_texts(mailbox: &Mailbox<'_>) -> Vec<String> {
        let stored = mailbox.load().unwrap();
        stored.iter().map(|m| m.text.to_lossy()).collect()
    }

    #[test]
    fn file_names_are_hex_of_the_name() {
        assert_eq!(file_name("1001"), "31303031.mbox");
        assert_eq!(file_name("似末"), "e4bcbce69cab.mbox");
        assert_eq!(file_name("../x"), "2e2e2f78.mbox");
    }

    #[test]
    fn mailboxes_left_by_an_earlier_run_are_found_at_startup() {
        let dir = temp_dir("restart");
        let users = Arc::new(Directory::built_in());
        {
            let mailboxes = Mailboxes::new(&dir, 10, Arc::clone(&users)).unwrap();
            mailboxes
                .lock("似末")
                .unwrap()
                .append(&message("kept"))
                .unwrap();
        }
        // Not mailboxes: another name, near misses of 1001's "31303031.mbox", and an
        // upper-case twin of 花开富贵's.
        for stranger in [
            "notes.txt",
            "3130303.mbox",
            "+31303031.mbox",
            "E88AB1E5BC80E5AF8CE8B4B5.mbox",
        ] {
            fs::write(dir.join(stranger), message("stray").to_bytes()).unwrap();
        }
        let mailboxes = Mailboxes::new(&dir, 10, users).unwrap();
        assert_eq!(stored_texts(&mailboxes.lock("似末").unwrap()), ["kept"]);
        for name in ["1001", "花开富贵"] {
            assert!(
                mailboxes.lock(name).unwrap().load().unwrap().is_empty(),
                "{name}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn messages_come_back_oldest_first_and_clear_empties() {
        let dir = temp_dir("order");
        let mailboxes = Mailboxes::new(&dir, 10, Arc::new(Directory::built_in())).unwrap();
        let mut mailbox = mailboxes.lock("似末").unwrap();
        for text in ["one", "two", "three"] {
            assert_eq!(mailbox.append(&message(text)).unwrap(), Stored::Queued);
        }
        assert_eq!(stored_texts(&mailbox), ["one", "two", "three"]);
        mailbox.clear().unwrap();
        assert!(mailbox.load().unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_mailbox_stores_nothing() {
        let dir = temp_dir("full");
        let mailboxes = Mailboxes::new(&dir, 2, Arc::new(Directory::built_in())).unwrap();
        let mut mailbox = mailboxes.lock("1002").unwrap();
        assert_eq!(mailbox.append(&message("a")).unwrap(), Stored::Queued);
        assert_eq!(mailbox.append(&message("b")).unwrap(), Stored::Queued);
        assert_eq!(mailbox.append(&message("c")).unwrap(), Stored::Full);
        assert_eq!(mailbox.load().unwrap().len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_never_delivered_and_is_cut_before_the_next_append() {
        let dir = temp_dir("torn");
        let mailboxes = Mailboxes::new(&dir, 10, Arc::new(Directory::built_in())).unwrap();
        let mut mailbox = mailboxes.lock("1003").unwrap();
        mailbox.append(&message("whole")).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(mailbox.path())
            .unwrap();
        file.write_all(&message("torn").to_bytes()[..50]).unwrap();
        assert_eq!(stored_texts(&mailbox), ["whole"]);
        mailbox.append(&message("after")).unwrap();
        assert_eq!(stored_texts(&mailbox), ["whole", "after"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_users_have_no_mailbox() {
        let dir = temp_dir("unknown");
        let mailboxes = Mailboxes::new(&dir, 10, Arc::new(Directory::built_in())).unwrap();
        assert!(mailboxes.lock("nobody").is_none());
        assert!(
            !dir.exists(),
            "nothing is created before a message is stored"
        );
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_at_startup() {
        let dir = temp_dir("notadir");
        fs::write(&dir, b"").unwrap();
        let error = Mailboxes::new(&dir, 10, Arc::new(Directory::built_in())).unwrap_err();
        assert!(error.contains("not a directory"), "{error}");
        fs::remove_file(&dir).unwrap();
    }
}
