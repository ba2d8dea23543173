//! Offline messages on disk: one append-only file per user.
//!
//! A file is a header and an array of records, each a message id and the 140-byte CHAT
//! body exactly as it will be delivered (`mailbox_format.rs`; files of the first format,
//! without ids, are rewritten at startup). Appending syncs the data before returning, because the
//! sender's QUEUED echo is a promise that the message survives a crash. A crash in the
//! middle of an append leaves a torn record at the end of the file; loading drops it and
//! the next append cuts it off, so it is never delivered as garbage.
//!
//! What the store promises, and what it refuses:
//! - Limits: `--mailbox-limit` messages per user and `--store-limit` in all mailboxes
//!   together, both counted in memory (rebuilt at startup from the files' sizes) and
//!   answered -7 when reached; a delivery frees its room at once.
//! - A failure to store (a full disk, an I/O error, no descriptors left) is an error,
//!   which the sender hears as -8: nothing was kept (a record half-written is cut off
//!   again), and the log says why.
//! - A mailbox leaves the disk only after its messages were written to the owner's
//!   connection, and only if the file is still the one they were read from
//!   ([`Mailbox::hand_over`]). One that cannot be read at a login stays whole for the
//!   next.
//! - At most [`STORE_OPERATIONS`](crate::descriptors::STORE_OPERATIONS) file operations
//!   run at once, so the store never takes the descriptors the rest of the server needs
//!   (see `descriptors.rs`).
//! - The data directory is created at startup (`0700`: private messages are private)
//!   and probed for writing; mailbox files are created `0600`.
//! - An entry named as a mailbox that is not a regular file (a symbolic link, a
//!   directory, a FIFO, a device) is never opened, followed, read or written: it is
//!   reported at startup, and its owner gets no stored messages and -8 for messages
//!   while offline.
//! - A stored record that is not what this server writes (a sender that is no account,
//!   a name that is not NUL-padded UTF-8, another receiver) is reported and skipped.
//!
//! Each user's [`Mailbox`] sits behind its own lock, and that lock is also what makes
//! delivery and login agree (see [`Mailboxes::lock`]).

use crate::descriptors::StorePermits;
use crate::mailbox_format::{self, Format, MAGIC, Record};
use crate::protocol::{CHAT_BODY_LEN, ChatMessage};
use crate::receipts::MessageIds;
use crate::users::{AccountId, Accounts};
use crate::warn_limited;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The file name extension of a mailbox.
const MAILBOX_EXTENSION: &str = "mbox";
/// The record size: a message id and a CHAT body.
const RECORD_LEN: u64 = mailbox_format::RECORD_LEN as u64;
/// The header's size.
const HEADER_LEN: u64 = MAGIC.len() as u64;
/// The data directory's permissions: the server's user only.
const DIR_MODE: u32 = 0o700;
/// A mailbox file's permissions: the server's user only.
const FILE_MODE: u32 = 0o600;
/// Permission bits that let anyone but the owner in.
const GROUP_AND_OTHER_BITS: u32 = 0o077;
/// Linux's error number for "too many levels of symbolic links", which is what
/// `O_NOFOLLOW` answers when the entry is a link (the same on every architecture).
const ELOOP: i32 = 40;
/// The file the startup probe creates and removes to prove the directory is writable.
const PROBE_FILE: &str = ".chat-server-write-probe";

/// Flags that make opening a mailbox safe whatever its entry turned into since it was
/// checked: `O_NOFOLLOW` (a symbolic link fails to open instead of being followed) and
/// `O_NONBLOCK` (a FIFO fails or returns at once instead of blocking; no effect on a
/// regular file). std has no names for them and the design allows no libc crate, so
/// these are Linux's values, which differ between architectures. Elsewhere the type
/// check after opening still refuses anything but a regular file, but a FIFO swapped in
/// between the check and the open could block.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "x86", target_arch = "riscv64")
))]
const SAFE_OPEN_FLAGS: i32 = 0o400_000 | 0o4_000;
#[cfg(all(target_os = "linux", any(target_arch = "aarch64", target_arch = "arm")))]
const SAFE_OPEN_FLAGS: i32 = 0o100_000 | 0o4_000;
#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "riscv64",
        target_arch = "aarch64",
        target_arch = "arm"
    )
)))]
const SAFE_OPEN_FLAGS: i32 = 0;

/// What [`Mailbox::hand_over`] did with a mailbox at its owner's login.
#[derive(Debug)]
pub enum Handover {
    /// Nothing was stored: only the login reply went out.
    Empty,
    /// This many stored messages went out after the login reply, and left the mailbox.
    Delivered(usize),
    /// The mailbox could not be read: the login reply went out alone, and the file stays
    /// whole, its messages kept for a later login.
    Kept {
        /// The messages left in the mailbox.
        messages: usize,
        /// Why it could not be read.
        error: io::Error,
    },
}

/// A stored message and its id.
pub type StoredMessage = (u64, ChatMessage);

/// The file a receipts login's stored messages were read from, kept until the client
/// acknowledges them ([`Mailbox::forget_delivered`]).
#[derive(Debug, Default)]
pub struct Delivered {
    /// Device, inode and length of the file read; `None` if there was no file.
    file: Option<(u64, u64, u64)>,
    /// The messages delivered (taken out by the caller, who needs their ids and senders).
    pub messages: Vec<StoredMessage>,
}

/// What was read from a mailbox file, and which file it was: emptying the mailbox
/// removes that file only if it is still the one.
struct Loaded {
    messages: Vec<(u64, ChatMessage)>,
    /// Device, inode and length of the file read; `None` if there was no file.
    file: Option<(u64, u64, u64)>,
}

/// What happened to a message handed to [`Mailbox::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Written and synced: it will be delivered.
    Queued,
    /// The owner's mailbox is at its limit; nothing was written.
    MailboxFull,
    /// All mailboxes together are at the store limit; nothing was written.
    StoreFull,
}

/// Every user's mailbox, under one data directory.
#[derive(Debug)]
pub struct Mailboxes {
    dir: PathBuf,
    /// Messages one mailbox may hold.
    limit: usize,
    /// Messages all mailboxes together may hold.
    store_limit: usize,
    /// Messages in all mailboxes together.
    stored: AtomicUsize,
    users: Arc<Accounts>,
    /// One lock per account, indexed by `AccountId`, made up front: the set of accounts
    /// never changes while the server runs, so finding a mailbox needs no lock of its
    /// own. Paths are made only when a file is touched.
    entries: Vec<Mutex<Entry>>,
    /// Bounds the store's open files (see `descriptors.rs`).
    permits: StorePermits,
    /// Message ids, above every id stored (see `receipts.rs`).
    ids: MessageIds,
}

/// What the server knows of one mailbox, guarded by its lock: 8 bytes, since there is
/// one per account (20,000 accounts: 240 KB with their locks).
#[derive(Debug, Default)]
struct Entry {
    /// Whole messages in the file. Most logins find 0 and skip the file system.
    count: u32,
    /// What the entry is, if it is not a regular file: it may not be touched.
    unusable: Option<NotRegular>,
}

/// The kinds of directory entry that are not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotRegular {
    SymbolicLink,
    Directory,
    Fifo,
    Socket,
    Device,
    Other,
}

impl NotRegular {
    fn of(metadata: &Metadata) -> NotRegular {
        use std::os::unix::fs::FileTypeExt;
        let kind = metadata.file_type();
        if kind.is_symlink() {
            NotRegular::SymbolicLink
        } else if kind.is_dir() {
            NotRegular::Directory
        } else if kind.is_fifo() {
            NotRegular::Fifo
        } else if kind.is_socket() {
            NotRegular::Socket
        } else if kind.is_block_device() || kind.is_char_device() {
            NotRegular::Device
        } else {
            NotRegular::Other
        }
    }

    fn describe(self) -> &'static str {
        match self {
            NotRegular::SymbolicLink => "a symbolic link",
            NotRegular::Directory => "a directory",
            NotRegular::Fifo => "a FIFO",
            NotRegular::Socket => "a socket",
            NotRegular::Device => "a device",
            NotRegular::Other => "not a regular file",
        }
    }
}

impl Mailboxes {
    /// Mailboxes for every account of `users` under `dir`, each holding at most `limit`
    /// messages, all together at most `store_limit`. Creates the directory if it is
    /// missing, checks that it can be written, and reads what an earlier run left there.
    /// An error is a one-line message naming the directory.
    pub fn open(
        dir: &Path,
        limit: usize,
        store_limit: usize,
        users: Arc<Accounts>,
    ) -> Result<Mailboxes, String> {
        prepare_dir(dir)?;
        let mut entries: Vec<Mutex<Entry>> = (0..users.len())
            .map(|_| Mutex::new(Entry::default()))
            .collect();
        let mut stored = 0;
        let (found, highest_id) = scan(dir, &users)?;
        for (id, entry) in found {
            stored += entry.count as usize;
            *entries[id].get_mut() = entry;
        }
        Ok(Mailboxes {
            dir: dir.to_path_buf(),
            limit,
            store_limit,
            stored: AtomicUsize::new(stored),
            users,
            entries,
            permits: StorePermits::default(),
            ids: MessageIds::above(highest_id),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh message id (see `receipts.rs`): above every id stored or handed out.
    pub fn next_id(&self) -> u64 {
        self.ids.next()
    }

    /// The server's message ids.
    pub fn ids(&self) -> &MessageIds {
        &self.ids
    }

    /// Messages all mailboxes together may hold.
    pub fn store_limit(&self) -> usize {
        self.store_limit
    }

    /// Messages in all mailboxes together.
    pub fn stored(&self) -> usize {
        self.stored.load(Ordering::Acquire)
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
        Some(self.lock_account(self.users.id(name)?))
    }

    /// Locks the mailbox of account `id` (see [`Mailboxes::lock`]): for a caller that
    /// has looked the account up already, so that a message costs one lookup.
    pub fn lock_account(&self, id: AccountId) -> Mailbox<'_> {
        Mailbox {
            entry: self.entries[id].lock(),
            owner: self.users.name(id),
            mailboxes: self,
        }
    }

    /// Takes room for one message in the store; false if it is full.
    fn reserve(&self) -> bool {
        self.stored
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |stored| {
                (stored < self.store_limit).then_some(stored + 1)
            })
            .is_ok()
    }

    fn release(&self, messages: usize) {
        self.stored.fetch_sub(messages, Ordering::AcqRel);
    }

    /// Counts `messages` as stored again, whatever the limit: they never left the disk.
    fn take_back(&self, messages: usize) {
        self.stored.fetch_add(messages, Ordering::AcqRel);
    }
}

/// Creates the data directory if it is missing (with its parents, `0700`), makes an
/// existing one private, and proves that files can be created in it.
fn prepare_dir(dir: &Path) -> Result<(), String> {
    let problem =
        |what: &str, error: io::Error| format!("data directory {}: {what}: {error}", dir.display());
    let existing = match fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => {
            return Err(format!(
                "data directory {}: exists and is not a directory",
                dir.display()
            ));
        }
        Ok(metadata) => Some(metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|error| problem("cannot be created", error))?;
            None
        }
        Err(error) => return Err(problem("cannot be used", error)),
    };
    let probe = dir.join(PROBE_FILE);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .custom_flags(SAFE_OPEN_FLAGS)
        .open(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(|error| problem("cannot write there", error))?;
    if let Some(metadata) = existing {
        make_private(dir, &metadata, DIR_MODE);
    }
    Ok(())
}

/// Takes away the group's and others' permissions from a directory or mailbox that an
/// earlier version created with the process umask: every local user could read the
/// messages. Only reported if it cannot be done.
fn make_private(path: &Path, metadata: &Metadata, mode: u32) {
    if metadata.mode() & GROUP_AND_OTHER_BITS == 0 {
        return;
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Ok(()) => log::info!("{}: made private (mode {mode:o})", path.display()),
        Err(error) => log::warn!(
            "{}: readable by other users, and cannot be made private: {error}",
            path.display()
        ),
    }
}

/// The mailboxes an earlier run left in `dir`: each account's message count, or why its
/// entry is unusable, and the highest message id stored. Files of the first format are
/// rewritten with ids (see [`upgrade`]). Every other file is reported and left alone.
fn scan(dir: &Path, users: &Accounts) -> Result<(Vec<(AccountId, Entry)>, u64), String> {
    let unreadable = |error| format!("data directory {}: cannot be read: {error}", dir.display());
    let mut names = HashSet::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        names.insert(entry.map_err(unreadable)?.file_name());
    }
    let mut found = Vec::new();
    let mut highest_id = 0;
    let mut old_files: Vec<(PathBuf, mailbox_format::Parsed)> = Vec::new();
    for id in 0..users.len() {
        let file = file_name(users.name(id));
        if !names.remove(OsStr::new(&file)) {
            continue;
        }
        let path = dir.join(&file);
        // Never follows a symbolic link: the link itself is what is there.
        let entry = match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_file() => {
                make_private(&path, &metadata, FILE_MODE);
                let mut bytes = Vec::new();
                open_regular(&path, OpenOptions::new().read(true))
                    .and_then(|mut file| file.read_to_end(&mut bytes))
                    .map_err(|error| format!("{}: cannot be read: {error}", path.display()))?;
                let parsed = mailbox_format::parse(&bytes);
                let count = u32::try_from(parsed.records.len()).unwrap_or(u32::MAX);
                match parsed.format {
                    Format::WithIds => {
                        let highest = parsed.records.iter().map(|(id, _)| *id).max();
                        highest_id = highest_id.max(highest.unwrap_or(0));
                    }
                    Format::Old => old_files.push((path, parsed)),
                }
                Entry {
                    count,
                    unusable: None,
                }
            }
            Ok(metadata) => {
                let kind = NotRegular::of(&metadata);
                warn_limited!(
                    "{}: the mailbox of {} is {}, not a regular file: it is never \
                     opened; {} gets no stored messages, and messages for them while \
                     offline are refused (-8)",
                    path.display(),
                    users.name(id),
                    kind.describe(),
                    users.name(id)
                );
                Entry {
                    count: 0,
                    unusable: Some(kind),
                }
            }
            Err(error) => return Err(unreadable(error)),
        };
        found.push((id, entry));
    }
    for stranger in names {
        warn_limited!(
            "{}: not the mailbox of any account; ignored",
            dir.join(stranger).display()
        );
    }
    // Ids for the old files' messages: above every id there is, in file order.
    let ids = MessageIds::above(highest_id);
    for (path, parsed) in old_files {
        upgrade(dir, &path, parsed, &ids)?;
    }
    Ok((found, ids.last()))
}

/// Rewrites a mailbox of the first format (no header, no ids) in the current one, giving
/// its messages ids from `ids`, which stand for the time of the upgrade: their real send
/// time was never recorded. The new file is written beside the old one, synced, and
/// renamed over it, so a crash leaves one or the other whole.
fn upgrade(
    dir: &Path,
    path: &Path,
    parsed: mailbox_format::Parsed,
    ids: &MessageIds,
) -> Result<(), String> {
    let failed = |error: io::Error| format!("{}: cannot be upgraded: {error}", path.display());
    let records: Vec<Record> = parsed
        .records
        .into_iter()
        .map(|(_, body)| (ids.next(), body))
        .collect();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".upgrading");
    let temporary = PathBuf::from(temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .custom_flags(SAFE_OPEN_FLAGS)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(&mailbox_format::file_with(&records))
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temporary, path))
        .and_then(|()| File::open(dir)?.sync_all())
        .map_err(failed)?;
    log::info!(
        "{}: upgraded to the format with message ids ({} messages{})",
        path.display(),
        records.len(),
        if parsed.torn > 0 {
            format!("; a torn record of {} bytes dropped", parsed.torn)
        } else {
            String::new()
        }
    );
    Ok(())
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

/// Opens a mailbox file without following a link or blocking, and refuses anything but
/// a regular file (checked on the open file, so a swap after the check cannot fool it).
fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .custom_flags(SAFE_OPEN_FLAGS)
        .open(path)
        .map_err(|error| {
            if error.raw_os_error() == Some(ELOOP) {
                not_regular(NotRegular::SymbolicLink)
            } else {
                error
            }
        })?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular(NotRegular::of(&metadata)));
    }
    Ok(file)
}

/// The error for an entry that is not a regular file (its kind is `InvalidData`, which
/// nothing else here produces, so the log can name the cause).
fn not_regular(kind: NotRegular) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the mailbox is {}, not a regular file; it is never opened",
            kind.describe()
        ),
    )
}

/// One user's stored messages, locked. Only reachable through [`Mailboxes::lock`]; the
/// lock is released when this is dropped.
pub struct Mailbox<'a> {
    entry: MutexGuard<'a, Entry>,
    owner: &'a str,
    mailboxes: &'a Mailboxes,
}

impl Mailbox<'_> {
    /// Appends `message` and syncs it to disk, unless a limit is reached. An error means
    /// nothing was stored (the sender is told -8).
    pub fn append(&mut self, id: u64, message: &ChatMessage) -> io::Result<Stored> {
        if let Some(kind) = self.entry.unusable {
            return Err(not_regular(kind));
        }
        // The count is a u32 (one per account, kept small): a limit beyond it is capped.
        if self.entry.count as usize >= self.mailboxes.limit || self.entry.count == u32::MAX {
            return Ok(Stored::MailboxFull);
        }
        if !self.mailboxes.reserve() {
            return Ok(Stored::StoreFull);
        }
        match self.write(&[(id, message.to_bytes())]) {
            Ok(()) => {
                self.entry.count += 1;
                Ok(Stored::Queued)
            }
            Err(error) => {
                self.mailboxes.release(1);
                Err(error)
            }
        }
    }

    /// Stores messages that a receipts connection had not acknowledged when it ended
    /// (see `receipts.rs`), in one write and one sync. They were accepted already, so
    /// the limits do not refuse them; they count from now on. An error means none of
    /// them was stored.
    pub fn append_unacknowledged(&mut self, records: &[Record]) -> io::Result<()> {
        if let Some(kind) = self.entry.unusable {
            return Err(not_regular(kind));
        }
        self.write(records)?;
        let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
        self.entry.count = self.entry.count.saturating_add(count);
        self.mailboxes.take_back(records.len());
        Ok(())
    }

    /// Appends and syncs `records`. On any failure the file is cut back to what it
    /// held before: the sender is told -8, so no part of these messages may be
    /// delivered later (a full disk often takes half a record before it refuses the
    /// rest).
    fn write(&mut self, records: &[Record]) -> io::Result<()> {
        let path = self.path();
        let _permit = self.mailboxes.permits.take();
        let (mut file, created) = self.open_for_append(&path)?;
        let len = file.metadata()?.len();
        // A new file (or one whose header a crash tore) starts with the header; a torn
        // record at the end is dropped, or every record after it would be misaligned.
        let (whole, header) = if len < HEADER_LEN {
            (0, true)
        } else {
            (len - (len - HEADER_LEN) % RECORD_LEN, false)
        };
        if whole != len {
            warn_limited!(
                "{}: dropping a torn record ({} bytes) at the end",
                path.display(),
                len - whole
            );
            file.set_len(whole)?;
        }
        let mut bytes = Vec::with_capacity(MAGIC.len() + records.len() * RECORD_LEN as usize);
        if header {
            bytes.extend_from_slice(&MAGIC);
        }
        mailbox_format::encode(records, &mut bytes);
        let result = file
            .write_all(&bytes)
            .and_then(|()| file.sync_data())
            .and_then(|()| {
                // A new file's name lives in the directory: sync that too, or a crash
                // could lose the whole file after we promised QUEUED.
                if created {
                    File::open(&self.mailboxes.dir)?.sync_all()
                } else {
                    Ok(())
                }
            });
        if result.is_err()
            && let Err(undo) = file.set_len(whole)
        {
            log::error!(
                "{}: a message failed to store and cannot be cut off again ({undo}); \
                 its sender was told -8, but it may still be delivered",
                path.display()
            );
        }
        result
    }

    /// Opens the file for appending, creating it (`0600`) if needed. Returns the file
    /// and whether it was just created. `create_new` never follows a link either: it
    /// fails if anything at all is in the way.
    fn open_for_append(&self, path: &Path) -> io::Result<(File, bool)> {
        let open = |create_new: bool| {
            let mut options = OpenOptions::new();
            options.append(true).mode(FILE_MODE);
            if create_new {
                options.create_new(true);
            }
            open_regular(path, &mut options)
        };
        match open(false) {
            Ok(file) => Ok((file, false)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => match open(true) {
                Ok(file) => Ok((file, true)),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    Ok((open(false)?, false))
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    /// True if no message is stored (or the entry is unusable).
    pub fn is_empty(&self) -> bool {
        self.entry.count == 0 || self.entry.unusable.is_some()
    }

    /// Every whole, valid stored message, oldest first. A torn record at the end is
    /// left out, and so is every record this server would not have written (reported).
    pub fn load(&self) -> io::Result<Vec<(u64, ChatMessage)>> {
        Ok(self.read_all()?.messages)
    }

    /// The stored messages (as [`Mailbox::load`]) and which file they were read from.
    fn read_all(&self) -> io::Result<Loaded> {
        if self.is_empty() {
            return Ok(Loaded {
                messages: Vec::new(),
                file: None,
            });
        }
        let path = self.path();
        let mut bytes = Vec::new();
        let permit = self.mailboxes.permits.take();
        let file = match open_regular(&path, OpenOptions::new().read(true)) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)?;
                let metadata = file.metadata()?;
                Some((metadata.dev(), metadata.ino(), metadata.len()))
            }
            // Gone (removed by hand): nothing to deliver, and nothing to keep.
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        drop(permit);
        let parsed = mailbox_format::parse(&bytes);
        if parsed.torn > 0 {
            warn_limited!(
                "{}: ignoring a torn record ({} bytes) at the end",
                path.display(),
                parsed.torn
            );
        }
        let mut messages = Vec::with_capacity(parsed.records.len());
        for (index, (id, record)) in parsed.records.iter().enumerate() {
            match self.check_record(record) {
                Ok(message) => messages.push((*id, message)),
                Err(problem) => warn_limited!(
                    "{}: record {} is not a message this server wrote ({problem}); skipped",
                    path.display(),
                    index + 1
                ),
            }
        }
        Ok(Loaded { messages, file })
    }

    /// The message a record holds, if it is one this server could have written: every
    /// field NUL-padded, the sender an account, the receiver this mailbox's owner.
    fn check_record(&self, record: &[u8; CHAT_BODY_LEN]) -> Result<ChatMessage, &'static str> {
        let message = ChatMessage::decode(record);
        if message.to_bytes() != *record {
            return Err("bytes after a field's end");
        }
        match message.sender.as_str() {
            Some(sender) if self.mailboxes.users.contains(sender) => {}
            _ => return Err("the sender is not an account"),
        }
        if message.receiver.as_bytes() != self.owner.as_bytes() {
            return Err("addressed to someone else");
        }
        Ok(message)
    }

    /// A login's delivery of the mailbox: reads the stored messages, has `send` write the
    /// login reply followed by them (all under this mailbox's lock, see
    /// [`Mailboxes::lock`]), and empties the mailbox once `send` succeeded. Whatever
    /// fails, nothing stored is lost:
    /// - if the mailbox cannot be read (no descriptors left, an I/O error), `send` gets
    ///   no messages and the file stays whole for a later login ([`Handover::Kept`]);
    /// - if `send` fails, its error is returned and the mailbox stays as it was;
    /// - if the file cannot be removed, or is no longer the file that was read (replaced
    ///   or appended to by hand meanwhile), it stays, and is delivered again next time:
    ///   at least once, never lost (logged).
    ///
    /// The messages' room in the store is given back *before* `send`: the client can
    /// read them and answer as soon as the write begins, and a message sent then must
    /// find the room free. It is taken back if `send` fails.
    pub fn hand_over(
        &mut self,
        send: impl FnOnce(&[(u64, ChatMessage)]) -> io::Result<()>,
    ) -> io::Result<Handover> {
        if self.is_empty() {
            send(&[])?;
            return Ok(Handover::Empty);
        }
        let loaded = match self.read_all() {
            Ok(loaded) => loaded,
            Err(error) => {
                send(&[])?;
                let messages = self.entry.count as usize;
                return Ok(Handover::Kept { messages, error });
            }
        };
        let count = self.entry.count as usize;
        self.mailboxes.release(count);
        if let Err(error) = send(&loaded.messages) {
            self.mailboxes.take_back(count);
            return Err(error);
        }
        self.empty(&loaded);
        Ok(Handover::Delivered(loaded.messages.len()))
    }

    /// A receipts login's delivery of the mailbox: like [`Mailbox::hand_over`], but the
    /// mailbox stays as it is (its room too) until the client acknowledges the messages
    /// ([`Mailbox::forget_delivered`] with what this returns). A connection lost before
    /// that gets them all again.
    pub fn hand_over_keeping(
        &mut self,
        send: impl FnOnce(&[(u64, ChatMessage)]) -> io::Result<()>,
    ) -> io::Result<(Handover, Option<Delivered>)> {
        if self.is_empty() {
            send(&[])?;
            return Ok((Handover::Empty, None));
        }
        let loaded = match self.read_all() {
            Ok(loaded) => loaded,
            Err(error) => {
                send(&[])?;
                let messages = self.entry.count as usize;
                return Ok((Handover::Kept { messages, error }, None));
            }
        };
        send(&loaded.messages)?;
        let handover = Handover::Delivered(loaded.messages.len());
        let delivered = Delivered {
            file: loaded.file,
            messages: loaded.messages,
        };
        Ok((handover, Some(delivered)))
    }

    /// The client acknowledged the messages [`Mailbox::hand_over_keeping`] delivered:
    /// the mailbox is emptied and its room given back, if its file is still the one they
    /// were read from. If anything was appended since (or the file cannot be removed),
    /// it stays, and everything in it comes again at the next login.
    pub fn forget_delivered(&mut self, delivered: &Delivered) {
        let path = self.path();
        let unchanged = match fs::symlink_metadata(&path) {
            Ok(now) => delivered.file == Some((now.dev(), now.ino(), now.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => true,
            Err(_) => false,
        };
        if !unchanged {
            log::info!(
                "{}: changed since its messages were delivered; kept, and delivered \
                 again at the next login",
                path.display()
            );
            return;
        }
        match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => log::error!(
                "{}: delivered and acknowledged, but cannot be emptied ({error}); its \
                 messages will come again at the next login",
                path.display()
            ),
            _ => {
                self.mailboxes.release(self.entry.count as usize);
                self.entry.count = 0;
            }
        }
    }

    /// Removes the file `loaded` was read from, after its messages were delivered and
    /// their room given back; leaves it (counted again) if it is another file by now or
    /// cannot be removed. (A change by hand between the check and the removal is not
    /// caught: that window is two system calls wide.)
    fn empty(&mut self, loaded: &Loaded) {
        let path = self.path();
        let now = match fs::symlink_metadata(&path) {
            Ok(now) => now,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.entry.count = 0;
                return;
            }
            Err(error) => return self.keep_after_delivery(&path, &error.to_string(), None),
        };
        if loaded.file != Some((now.dev(), now.ino(), now.len())) {
            let left = if now.is_file() {
                now.len().saturating_sub(HEADER_LEN) / RECORD_LEN
            } else {
                0
            };
            let left = u32::try_from(left).unwrap_or(u32::MAX);
            return self.keep_after_delivery(
                &path,
                "it changed while it was delivered",
                Some(left),
            );
        }
        match fs::remove_file(&path) {
            Ok(()) => self.entry.count = 0,
            Err(error) if error.kind() == io::ErrorKind::NotFound => self.entry.count = 0,
            Err(error) => self.keep_after_delivery(&path, &error.to_string(), None),
        }
    }

    /// The mailbox stays after a delivery: it is counted again (as `left` messages if
    /// its file changed, or as before), and its messages come again at the next login.
    fn keep_after_delivery(&mut self, path: &Path, why: &str, left: Option<u32>) {
        log::error!(
            "{}: delivered, but cannot be emptied ({why}); it is kept, and its \
             messages will come again at the next login",
            path.display()
        );
        if let Some(left) = left {
            self.entry.count = left;
        }
        self.mailboxes.take_back(self.entry.count as usize);
    }

    /// The mailbox's file (which may not exist yet).
    pub fn path(&self) -> PathBuf {
        self.mailboxes.dir.join(file_name(self.owner))
    }
}

/// What a failure to store means, in words an operator acts on; the error itself
/// follows in the log line.
pub fn storage_problem(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::StorageFull => "the disk is full",
        io::ErrorKind::QuotaExceeded => "the disk quota is used up",
        io::ErrorKind::PermissionDenied => "no permission",
        io::ErrorKind::ReadOnlyFilesystem => "the file system is read-only",
        io::ErrorKind::InvalidData => "the mailbox entry is not a regular file",
        _ if error.raw_os_error() == Some(EMFILE) => "the server is out of file descriptors",
        _ => "an I/O error",
    }
}

/// Linux's "too many open files" (the same number on every architecture).
const EMFILE: i32 = 24;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MessageText, Name};

    const NO_STORE_LIMIT: usize = usize::MAX;

    /// The mailboxes of the built-in users in `dir`, 10 messages each, no store limit.
    fn open_unlimited(dir: &Path) -> Mailboxes {
        Mailboxes::open(dir, 10, NO_STORE_LIMIT, Arc::new(Accounts::built_in())).unwrap()
    }

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
        stored.iter().map(|(_, m)| m.text.to_lossy()).collect()
    }

    #[test]
    fn a_link_or_a_fifo_is_refused_at_the_open_itself_never_followed_or_waited_on() {
        // What the checks before the open cannot see: an entry swapped after them.
        let dir = temp_dir("open-regular");
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        fs::write(&target, b"not a mailbox").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = open_regular(&link, OpenOptions::new().read(true)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        assert!(error.to_string().contains("a symbolic link"), "{error}");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|status| status.success()) {
            // Opened without O_NONBLOCK, a FIFO with no writer would wait forever.
            let (opened, result) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = opened.send(open_regular(&fifo, OpenOptions::new().read(true)).err());
            });
            let error = result
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("opening a FIFO returns at once, without a writer")
                .expect("a FIFO is refused");
            assert!(error.to_string().contains("a FIFO"), "{error}");
        } else {
            eprintln!("skipped the FIFO half: mkfifo is not available here");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_device_is_named_a_device() {
        let metadata = fs::metadata("/dev/null").expect("/dev/null is a character device");
        let kind = NotRegular::of(&metadata);
        assert!(matches!(kind, NotRegular::Device), "{kind:?}");
        assert_eq!(kind.describe(), "a device");
    }

    #[test]
    fn ids_start_above_every_stored_id_at_startup() {
        let dir = temp_dir("ids");
        let users = Arc::new(Accounts::built_in());
        // An id from the future (a clock set back since): the server's ids stay above it.
        let stored_id = u64::MAX / 2;
        {
            let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, Arc::clone(&users)).unwrap();
            let mut mailbox = mailboxes.lock("1001").unwrap();
            mailbox.append(stored_id, &message("old")).unwrap();
        }
        let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, users).unwrap();
        let first = mailboxes.next_id();
        assert!(first > stored_id, "{first} after a stored {stored_id}");
        assert!(mailboxes.next_id() > first, "ids increase");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_data_directory_that_cannot_be_looked_at_is_reported_not_created() {
        // Below a regular file: looking it up fails with "not a directory", not "not
        // found", so there is nothing to create.
        let file = temp_dir("below-a-file");
        fs::write(&file, b"").unwrap();
        let dir = file.join("data");
        let error =
            Mailboxes::open(&dir, 10, NO_STORE_LIMIT, Arc::new(Accounts::built_in())).unwrap_err();
        assert!(error.contains("cannot be used"), "{error}");
        fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_mailbox_of_the_first_format_is_upgraded_in_place_at_startup() {
        let dir = temp_dir("upgrade");
        fs::create_dir_all(&dir).unwrap();
        // The first format: the CHAT bodies one after the other, no header, no ids (to
        // 似末, whose mailbox it is: a record for someone else is never delivered).
        let old = [message("first").to_bytes(), message("second").to_bytes()].concat();
        fs::write(dir.join(file_name("似末")), &old).unwrap();
        let mailboxes = open_unlimited(&dir);
        let bytes = fs::read(dir.join(file_name("似末"))).unwrap();
        assert!(
            bytes.starts_with(&mailbox_format::MAGIC),
            "rewritten with the header"
        );
        let stored = mailboxes.lock("似末").unwrap().load().unwrap();
        let texts: Vec<_> = stored.iter().map(|(_, m)| m.text.to_lossy()).collect();
        assert_eq!(texts, ["first", "second"]);
        assert!(stored[0].0 < stored[1].0, "ids given in file order");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_in_place_of_a_mailbox_is_left_alone_at_startup() {
        let dir = temp_dir("link-at-startup");
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("elsewhere");
        fs::write(&target, b"not a mailbox").unwrap();
        std::os::unix::fs::symlink(&target, dir.join(file_name("1002"))).unwrap();
        let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, Arc::new(Accounts::built_in()))
            .expect("the server starts; only 1002's mailbox is unusable");
        assert!(mailboxes.lock("1001").unwrap().load().unwrap().is_empty());
        assert_eq!(fs::read(&target).unwrap(), b"not a mailbox");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_private_mailbox_is_not_touched() {
        let dir = temp_dir("private");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file");
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(FILE_MODE)).unwrap();
        let before = fs::metadata(&path).unwrap();
        // A chmod sets the inode's ctime to the kernel's coarse clock: one in the same
        // tick as the set_permissions above would go unseen, so this catches a needless
        // chmod nearly always, and never fails a run that made none.
        make_private(&path, &before, FILE_MODE);
        let after = fs::metadata(&path).unwrap();
        assert_eq!(
            (after.ctime(), after.ctime_nsec()),
            (before.ctime(), before.ctime_nsec()),
            "no chmod (which would change the inode's ctime) for a file already private"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unacknowledged_messages_are_stored_whatever_the_limits_and_counted() {
        let dir = temp_dir("unacknowledged");
        // A store limit of 1, already reached: these were accepted before, so they go in.
        let mailboxes = Mailboxes::open(&dir, 10, 1, Arc::new(Accounts::built_in())).unwrap();
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("stored")).unwrap();
        let records: Vec<Record> = [(7, "unacked 1"), (8, "unacked 2")]
            .map(|(id, text)| (id, message(text).to_bytes()))
            .to_vec();
        mailbox.append_unacknowledged(&records).unwrap();
        assert_eq!(stored_texts(&mailbox), ["stored", "unacked 1", "unacked 2"]);
        assert_eq!(mailboxes.stored(), 3, "counted from now on");
        assert_eq!(mailbox.load().unwrap()[2].0, 8, "with their ids");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_acknowledged_handover_empties_the_mailbox_it_was_read_from_only() {
        let dir = temp_dir("forget");
        let mailboxes = Mailboxes::open(&dir, 10, 10, Arc::new(Accounts::built_in())).unwrap();
        let mut mailbox = mailboxes.lock("似末").unwrap();
        let hand_over = |mailbox: &mut Mailbox<'_>| {
            let (_, delivered) = mailbox.hand_over_keeping(|_| Ok(())).unwrap();
            delivered.expect("there were messages")
        };
        // Unchanged since it was read: removed, and its room given back.
        mailbox.append(1, &message("one")).unwrap();
        let delivered = hand_over(&mut mailbox);
        assert_eq!(mailboxes.stored(), 1, "kept until acknowledged");
        mailbox.forget_delivered(&delivered);
        assert!(!mailbox.path().exists(), "emptied");
        assert!(mailbox.is_empty());
        assert_eq!(mailboxes.stored(), 0, "its room given back");
        // Appended to since: kept whole, delivered again at the next login.
        mailbox.append(2, &message("two")).unwrap();
        let delivered = hand_over(&mut mailbox);
        mailbox.append(3, &message("three")).unwrap();
        mailbox.forget_delivered(&delivered);
        assert_eq!(stored_texts(&mailbox), ["two", "three"]);
        assert_eq!(mailboxes.stored(), 2);
        // Removed by hand since: nothing is left to count.
        let delivered = hand_over(&mut mailbox);
        fs::remove_file(mailbox.path()).unwrap();
        mailbox.forget_delivered(&delivered);
        assert!(mailbox.is_empty());
        assert_eq!(mailboxes.stored(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mailbox_removed_while_it_is_delivered_is_not_counted_again() {
        let dir = temp_dir("removed-during");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("one")).unwrap();
        let path = mailbox.path();
        mailbox
            .hand_over(|stored| {
                assert_eq!(stored.len(), 1);
                fs::remove_file(&path)
            })
            .unwrap();
        assert!(mailbox.is_empty());
        assert_eq!(mailboxes.stored(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mailbox_that_holds_only_its_header_takes_records_after_it() {
        let dir = temp_dir("header-only");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(file_name("似末")), MAGIC).unwrap();
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("after the header")).unwrap();
        assert_eq!(stored_texts(&mailbox), ["after the header"]);
        assert_eq!(
            fs::metadata(mailbox.path()).unwrap().len(),
            HEADER_LEN + RECORD_LEN,
            "one header, one record"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn storage_problems_are_said_in_words() {
        let said = |kind: io::ErrorKind| storage_problem(&kind.into());
        assert_eq!(said(io::ErrorKind::StorageFull), "the disk is full");
        assert_eq!(
            said(io::ErrorKind::QuotaExceeded),
            "the disk quota is used up"
        );
        assert_eq!(said(io::ErrorKind::PermissionDenied), "no permission");
        assert_eq!(
            said(io::ErrorKind::ReadOnlyFilesystem),
            "the file system is read-only"
        );
        assert_eq!(
            said(io::ErrorKind::InvalidData),
            "the mailbox entry is not a regular file"
        );
        assert_eq!(
            storage_problem(&io::Error::from_raw_os_error(EMFILE)),
            "the server is out of file descriptors"
        );
        assert_eq!(said(io::ErrorKind::BrokenPipe), "an I/O error");
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
        let users = Arc::new(Accounts::built_in());
        {
            let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, Arc::clone(&users)).unwrap();
            mailboxes
                .lock("似末")
                .unwrap()
                .append(1, &message("kept"))
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
        let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, users).unwrap();
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
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        for text in ["one", "two", "three"] {
            assert_eq!(mailbox.append(1, &message(text)).unwrap(), Stored::Queued);
        }
        assert_eq!(stored_texts(&mailbox), ["one", "two", "three"]);
        let handed = mailbox.hand_over(|_| Ok(())).unwrap();
        assert!(matches!(handed, Handover::Delivered(3)), "{handed:?}");
        assert!(mailbox.load().unwrap().is_empty());
        assert!(!mailbox.path().exists(), "the file is gone");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_mailbox_stores_nothing() {
        let dir = temp_dir("full");
        let mailboxes =
            Mailboxes::open(&dir, 2, NO_STORE_LIMIT, Arc::new(Accounts::built_in())).unwrap();
        let mut mailbox = mailboxes.lock("似末").unwrap();
        assert_eq!(mailbox.append(1, &message("a")).unwrap(), Stored::Queued);
        assert_eq!(mailbox.append(1, &message("b")).unwrap(), Stored::Queued);
        assert_eq!(
            mailbox.append(1, &message("c")).unwrap(),
            Stored::MailboxFull
        );
        assert_eq!(mailbox.load().unwrap().len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_never_delivered_and_is_cut_before_the_next_append() {
        let dir = temp_dir("torn");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("whole")).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(mailbox.path())
            .unwrap();
        file.write_all(&message("torn").to_bytes()[..50]).unwrap();
        assert_eq!(stored_texts(&mailbox), ["whole"]);
        mailbox.append(1, &message("after")).unwrap();
        assert_eq!(stored_texts(&mailbox), ["whole", "after"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_users_have_no_mailbox() {
        let dir = temp_dir("unknown");
        let mailboxes = open_unlimited(&dir);
        assert!(mailboxes.lock("nobody").is_none());
        let created: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert!(created.is_empty(), "no file before a message is stored");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_at_startup() {
        let dir = temp_dir("notadir");
        fs::write(&dir, b"").unwrap();
        let error =
            Mailboxes::open(&dir, 10, NO_STORE_LIMIT, Arc::new(Accounts::built_in())).unwrap_err();
        assert!(error.contains("not a directory"), "{error}");
        fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn the_store_limit_counts_every_mailbox_and_a_delivery_frees_room() {
        let dir = temp_dir("store");
        let mailboxes = Mailboxes::open(&dir, 10, 3, Arc::new(Accounts::built_in())).unwrap();
        assert_eq!(mailboxes.store_limit(), 3);
        for name in ["1001", "1002", "1003"] {
            let mut mailbox = mailboxes.lock(name).unwrap();
            assert_eq!(mailbox.append(1, &message("x")).unwrap(), Stored::Queued);
        }
        let mut fourth = mailboxes.lock("似末").unwrap();
        assert_eq!(fourth.append(1, &message("y")).unwrap(), Stored::StoreFull);
        drop(fourth);
        mailboxes
            .lock("1002")
            .unwrap()
            .hand_over(|_| Ok(()))
            .unwrap();
        assert_eq!(mailboxes.stored(), 2);
        let mut fourth = mailboxes.lock("似末").unwrap();
        assert_eq!(fourth.append(1, &message("y")).unwrap(), Stored::Queued);
        drop(fourth);
        // A restart counts what the files hold.
        let reopened = Mailboxes::open(&dir, 10, 3, Arc::new(Accounts::built_in())).unwrap();
        assert_eq!(reopened.stored(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_directory_and_its_files_are_private() {
        let dir = temp_dir("private");
        let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, Arc::new(Accounts::built_in()));
        let mailboxes = mailboxes.unwrap();
        let mut mailbox = mailboxes.lock("1001").unwrap();
        mailbox.append(1, &message("secret")).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&mailbox.path()), 0o600);
        // An earlier version left them open to everyone: the next start closes them.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(mailbox.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let path = mailbox.path();
        drop(mailbox);
        open_unlimited(&dir);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_the_server_would_not_write_is_skipped_and_the_rest_delivered() {
        let dir = temp_dir("garbage");
        let users = Arc::new(Accounts::built_in());
        let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, Arc::clone(&users)).unwrap();
        let path = mailboxes.lock("似末").unwrap().path();
        let forged = |sender: &str, receiver: &str| ChatMessage {
            sender: Name::new(sender).unwrap(),
            receiver: Name::new(receiver).unwrap(),
            text: MessageText::new("forged").unwrap(),
        };
        let mut garbage = message("first").to_bytes().to_vec();
        garbage.extend(forged("nobody", "似末").to_bytes());
        garbage.extend(forged("1001", "1002").to_bytes());
        let mut padded_badly = message("x").to_bytes();
        padded_badly[10] = b'!'; // after the sender's NUL
        garbage.extend(padded_badly);
        let mut not_utf8 = message("x").to_bytes();
        not_utf8[0] = 0xFF;
        garbage.extend(not_utf8);
        garbage.extend(message("last").to_bytes());
        fs::write(&path, garbage).unwrap();
        let mailboxes = Mailboxes::open(&dir, 10, NO_STORE_LIMIT, users).unwrap();
        assert_eq!(
            stored_texts(&mailboxes.lock("似末").unwrap()),
            ["first", "last"]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_handover_keeps_the_mailbox_and_its_room() {
        let dir = temp_dir("failed-send");
        let mailboxes = Mailboxes::open(&dir, 10, 2, Arc::new(Accounts::built_in())).unwrap();
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("one")).unwrap();
        mailbox.append(1, &message("two")).unwrap();
        let mut seen = Vec::new();
        let error = mailbox
            .hand_over(|stored| {
                seen = stored.iter().map(|(_, m)| m.text.to_lossy()).collect();
                assert_eq!(mailboxes.stored(), 0, "the room is free while it is sent");
                Err(io::ErrorKind::BrokenPipe.into())
            })
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(seen, ["one", "two"]);
        assert_eq!(stored_texts(&mailbox), ["one", "two"], "the file is whole");
        assert_eq!(mailboxes.stored(), 2, "and counted again");
        assert_eq!(
            mailbox.append(1, &message("three")).unwrap(),
            Stored::StoreFull
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mailbox_replaced_while_it_is_delivered_stays_for_the_next_login() {
        let dir = temp_dir("replaced");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("old")).unwrap();
        let path = mailbox.path();
        let handed = mailbox
            .hand_over(|_| {
                // Someone puts another file in its place while the messages go out.
                let other = dir.join("other");
                let records = [
                    (5, message("new 1").to_bytes()),
                    (6, message("new 2").to_bytes()),
                ];
                let bytes = mailbox_format::file_with(&records);
                fs::write(&other, bytes)?;
                fs::rename(&other, &path)
            })
            .unwrap();
        assert!(matches!(handed, Handover::Delivered(1)), "{handed:?}");
        assert_eq!(stored_texts(&mailbox), ["new 1", "new 2"], "left in place");
        assert_eq!(mailboxes.stored(), 2, "counted as what it holds now");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mailbox_removed_by_hand_is_forgotten_at_the_next_login() {
        let dir = temp_dir("vanished");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("gone")).unwrap();
        fs::remove_file(mailbox.path()).unwrap();
        let handed = mailbox.hand_over(|stored| {
            assert!(stored.is_empty());
            Ok(())
        });
        assert!(matches!(handed.unwrap(), Handover::Delivered(0)));
        assert_eq!(mailboxes.stored(), 0);
        assert!(mailbox.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unreadable_mailbox_is_kept_whole() {
        let dir = temp_dir("unreadable");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(1, &message("kept")).unwrap();
        // Unreadable: the owner may write but not read (root reads anyway, so a
        // directory in its place stands in for an open that fails).
        let path = mailbox.path();
        fs::rename(&path, dir.join("aside")).unwrap();
        fs::create_dir(&path).unwrap();
        let handed = mailbox.hand_over(|stored| {
            assert!(stored.is_empty(), "nothing could be read");
            Ok(())
        });
        let Ok(Handover::Kept { messages: 1, .. }) = handed else {
            panic!("expected the mailbox kept: {handed:?}");
        };
        fs::remove_dir(&path).unwrap();
        fs::rename(dir.join("aside"), &path).unwrap();
        assert_eq!(stored_texts(&mailbox), ["kept"], "whole, for a later login");
        assert_eq!(mailboxes.stored(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
