//! A user's store on disk: one file per user, the messages kept for them. For a user who
//! is offline it is their offline mail; for a user on a receipts connection it is also
//! the queue their messages are written from (docs/PROTOCOL.md §3 and §6).
//!
//! A file is a header and an array of records, each a message id and the 140-byte CHAT
//! body exactly as it will be delivered (`mailbox_format.rs`). Messages are only ever
//! appended; they leave from the front: all at once when a plain login takes them, or as
//! the owner's receipts client acknowledges them ([`Mailbox::acknowledge`]: the header
//! counts the acknowledged records at the front, and the file is emptied, or rewritten
//! without them, when that is cheap). A crash in the middle of an append leaves a torn
//! record at the end of the file; loading drops it and the next append cuts it off, so it
//! is never delivered as garbage.
//!
//! What the store promises, and what it refuses:
//! - Ids: each user's messages get ids from [`crate::message_id`]: the millisecond they
//!   were accepted and a count per user, increasing in file order.
//! - Limits: `--mailbox-limit` messages per user and `--store-limit` in all mailboxes
//!   together, counting every message not yet delivered for good, and answered -7 when
//!   reached; a delivery frees its room at once.
//! - A message is written (`write`) before its sender hears 0 or 1, so a server killed
//!   by SIGKILL loses nothing it promised. When the data reaches the disk is the
//!   `--sync` policy's ([`SyncPolicy`]): at every write, or within a second.
//! - A failure to store (a full disk, an I/O error, no descriptors left) is an error,
//!   which the sender hears as -8: nothing was kept (a record half-written is cut off
//!   again), and the log says why.
//! - A mailbox leaves the disk only after its messages were written to the owner's
//!   connection, and only if the file is still the one they were read from
//!   ([`Mailbox::hand_over`]). One that cannot be read at a login stays whole for the
//!   next.
//! - A file whose header is damaged is read as its format where that can be told (its
//!   acknowledged count then read as 0: messages may come twice, never not at all), and
//!   otherwise moved aside, named in the log, and never read as another format.
//! - At most [`STORE_OPERATIONS`](crate::descriptors::STORE_OPERATIONS) file operations
//!   run at once, so the store never takes the descriptors the rest of the server needs
//!   (see `descriptors.rs`).
//! - The data directory is created when the server starts (`0700`: private messages are
//!   private) and probed for writing; mailbox files are created `0600`.
//! - An entry named as a mailbox that is not a regular file (a symbolic link, a
//!   directory, a FIFO, a device) is never opened, followed, read or written: it is
//!   reported at startup, and its owner gets no stored messages and -8 for messages
//!   while offline.
//! - A stored record that is not what this server writes (a sender that is no account,
//!   a name that is not NUL-padded UTF-8, another receiver) is reported and skipped.
//!
//! The store knows no connection and no session. Each user's [`Mailbox`] sits behind its
//! own lock, and that lock is also what makes delivery and login agree (see
//! [`Mailboxes::lock`]).

pub use crate::config::SyncPolicy;
use crate::descriptors::{CACHED_STORE_FILES, StorePermits};
use crate::mailbox_format::{self, Format, HEADER_LEN as HEADER_BYTES, Record};
use crate::message_id;
use crate::protocol::{CHAT_BODY_LEN, CHAT_FRAME_LEN, ChatMessage, FEEDBACK_LEN, Flag};
use crate::users::{AccountId, Accounts};
use crate::{log_limited, warn_limited};
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The file name extension of a mailbox.
const MAILBOX_EXTENSION: &str = "mbox";
/// What a damaged mailbox that cannot be read is renamed to end with (then a time).
const DAMAGED_SUFFIX: &str = ".damaged-";
/// The record size: a message id and a CHAT body.
const RECORD_LEN: u64 = mailbox_format::RECORD_LEN as u64;
/// The header's size.
const HEADER_LEN: u64 = HEADER_BYTES as u64;
/// Acknowledged records at the front of a file before it is compacted (if they are
/// also at least as many as the rest): the file of a receiver that never quite catches
/// up neither grows without end nor is compacted (one sync) more than once every few
/// thousand messages.
const COMPACT_AT: u32 = 4096;
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
/// How far ahead of the clock a stored id may be and still be taken as real, at
/// startup: a day (a clock stepped back by more makes new ids wait for it).
const PLAUSIBLE_AHEAD_MS: u64 = 24 * 60 * 60 * 1_000;
/// How often [`SyncPolicy::EverySecond`] hands what was written to the disk.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

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

/// Messages read from the front of a store for a receipts connection
/// ([`Mailbox::read_waiting`]).
#[derive(Debug, Default)]
pub struct Waiting {
    /// Each valid message, with the number of records it stands for: itself and any
    /// record before it that was not a message this server writes (skipped, but counted,
    /// so that an acknowledgement takes exactly the records it covers).
    pub messages: Vec<(u32, StoredMessage)>,
    /// Records read past the last valid message that were not messages (skipped).
    pub trailing: u32,
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
    /// Written (and synced as the policy says): it will be delivered.
    Queued,
    /// The owner's mailbox is at its limit; nothing was written.
    MailboxFull,
    /// All mailboxes together are at the store limit; nothing was written.
    StoreFull,
}

/// What [`Mailbox::accept`] did with a batch of messages.
#[derive(Debug)]
pub struct Accepted {
    /// The id of the first message; the others follow it, one apart.
    pub first_id: u64,
    /// How many, from the first, were kept; the rest were refused for `refused`.
    pub kept: usize,
    /// Why the rest were refused, if any were.
    pub refused: Option<io::Result<Stored>>,
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
    sync: SyncPolicy,
    /// Accounts whose file was written since the last sync ([`SyncPolicy::EverySecond`]),
    /// each once (`dirty_flags`).
    dirty: Mutex<Vec<AccountId>>,
    dirty_flags: Vec<AtomicBool>,
    /// A file was created since the last sync: the directory needs syncing too.
    dir_dirty: AtomicBool,
    /// The accounts whose mailbox keeps its file open (`Entry::file`), at most
    /// `CACHED_STORE_FILES`.
    cached: Mutex<Vec<AccountId>>,
}

/// What the server knows of one mailbox, guarded by its lock (one per account, so kept
/// small: 24 bytes).
#[derive(Debug, Default)]
struct Entry {
    /// Messages in the file not yet delivered for good: after the acknowledged ones.
    count: u32,
    /// Records at the front of the file already acknowledged (the header says so too).
    acknowledged: u32,
    /// The last id given to a message for this user.
    last_id: u64,
    /// What the entry is, if it is not a regular file: it may not be touched.
    unusable: Option<NotRegular>,
    /// The file, kept open for appending between writes while the mailbox is busy (at
    /// most `CACHED_STORE_FILES` of them in all; see `Mailboxes::close_idle_files`).
    file: Option<File>,
    /// Written since `Mailboxes::close_idle_files` last looked.
    used: bool,
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
    /// messages, all together at most `store_limit`, synced as `sync` says. Creates the
    /// directory if it is missing, checks that it can be written, and reads what an
    /// earlier run left there (files of an older format are rewritten in this one).
    /// An error is a one-line message naming the directory. The server calls it only
    /// once it holds its port: a start that fails changes nothing here.
    pub fn open(
        dir: &Path,
        limit: usize,
        store_limit: usize,
        users: Arc<Accounts>,
        sync: SyncPolicy,
    ) -> Result<Mailboxes, String> {
        prepare_dir(dir)?;
        let mut entries: Vec<Mutex<Entry>> = (0..users.len())
            .map(|_| Mutex::new(Entry::default()))
            .collect();
        let mut stored = 0;
        for (id, entry) in scan(dir, &users)? {
            stored += entry.count as usize;
            *entries[id].get_mut() = entry;
        }
        Ok(Mailboxes {
            dir: dir.to_path_buf(),
            limit,
            store_limit,
            stored: AtomicUsize::new(stored),
            dirty_flags: (0..users.len()).map(|_| AtomicBool::new(false)).collect(),
            users,
            entries,
            permits: StorePermits::default(),
            sync,
            dirty: Mutex::new(Vec::new()),
            dir_dirty: AtomicBool::new(false),
            cached: Mutex::new(Vec::with_capacity(CACHED_STORE_FILES)),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Messages all mailboxes together may hold.
    pub fn store_limit(&self) -> usize {
        self.store_limit
    }

    /// Messages in all mailboxes together.
    pub fn stored(&self) -> usize {
        self.stored.load(Ordering::Acquire)
    }

    /// The sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }

    /// Locks `name`'s mailbox; `None` if `name` is not an account.
    ///
    /// This lock is the one rule that keeps delivery gap-free and in order:
    /// - a sender holds the receiver's mailbox lock while it chooses between writing to
    ///   the receiver's socket and appending to the mailbox, and while it does either;
    /// - a login holds its own mailbox lock from before it drains the mailbox until after
    ///   it has put itself in the online map;
    /// - ids are given, and a receipts receiver's store is written from and
    ///   acknowledged, under it.
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
            account: id,
            owner: self.users.name(id),
            mailboxes: self,
        }
    }

    /// Syncs every file written since the last call, and the directory if a file was
    /// created ([`SyncPolicy::EverySecond`]; the server calls it every
    /// [`SYNC_INTERVAL`] and when it stops). A failure is logged: the data is still in
    /// the kernel's hands, and only a power cut could lose it now.
    pub fn sync_written(&self) {
        let accounts = std::mem::take(&mut *self.dirty.lock());
        for account in accounts {
            self.dirty_flags[account].store(false, Ordering::Release);
            let path = self.dir.join(file_name(self.users.name(account)));
            let _permit = self.permits.take();
            match open_regular(&path, OpenOptions::new().read(true)) {
                Ok(file) => {
                    if let Err(error) = file.sync_data() {
                        log_limited!(
                            log::Level::Error,
                            "{}: cannot sync to disk ({}): {error}",
                            path.display(),
                            storage_problem(&error)
                        );
                    }
                }
                // Emptied or moved since: nothing left to sync.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => log_limited!(
                    log::Level::Error,
                    "{}: cannot open to sync ({}): {error}",
                    path.display(),
                    storage_problem(&error)
                ),
            }
        }
        if self.dir_dirty.swap(false, Ordering::AcqRel)
            && let Err(error) = File::open(&self.dir).and_then(|dir| dir.sync_all())
        {
            log_limited!(
                log::Level::Error,
                "{}: cannot sync the directory: {error}",
                self.dir.display()
            );
        }
    }

    /// Notes that `account`'s file was written (and `created`), for the next sync.
    fn written(&self, account: AccountId, created: bool) {
        if created {
            self.dir_dirty.store(true, Ordering::Release);
        }
        if !self.dirty_flags[account].swap(true, Ordering::AcqRel) {
            self.dirty.lock().push(account);
        }
    }

    /// Closes the files kept open for mailboxes not written since the last call (the
    /// server calls it every `SYNC_INTERVAL`), so that the few kept open are those of the
    /// mailboxes in use: a receipts receiver's, written at every batch of messages.
    pub fn close_idle_files(&self) {
        let cached = self.cached.lock().clone();
        for account in cached {
            // A mailbox in use right now (a sender may hold its lock for as long as the
            // receiver's socket takes) is not idle: passed over, never waited for.
            let Some(mut entry) = self.entries[account].try_lock() else {
                continue;
            };
            if std::mem::take(&mut entry.used) {
                continue;
            }
            if entry.file.take().is_some() {
                self.cached.lock().retain(|&kept| kept != account);
            }
        }
    }

    /// Whether `account`'s mailbox may keep its file open (a place is free among
    /// `CACHED_STORE_FILES`); if so, the place is its.
    fn cache(&self, account: AccountId) -> bool {
        let mut cached = self.cached.lock();
        if cached.len() >= CACHED_STORE_FILES {
            return false;
        }
        cached.push(account);
        true
    }

    /// Gives back `account`'s place among the open files.
    fn uncache(&self, account: AccountId) {
        self.cached.lock().retain(|&kept| kept != account);
    }

    /// Takes room for up to `wanted` messages in the store; how many it got.
    fn reserve(&self, wanted: usize) -> usize {
        let mut got = 0;
        let _ = self
            .stored
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |stored| {
                got = wanted.min(self.store_limit.saturating_sub(stored));
                Some(stored + got)
            });
        got
    }

    fn release(&self, messages: usize) {
        self.stored.fetch_sub(messages, Ordering::AcqRel);
    }

    /// Counts `messages` as stored again: they never left the disk.
    fn take_back(&self, messages: usize) {
        self.stored.fetch_add(messages, Ordering::AcqRel);
    }
}
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

/// The mailboxes an earlier run left in `dir`: each account's message count and last
/// id, or why its entry is unusable. Files of an older format are rewritten in this one;
/// a file with a damaged header, a record this server would not write, or ids out of
/// order is rewritten with what it can be trusted to hold; a file that is no mailbox
/// format at all is moved aside. Every other file is reported and left alone.
fn scan(dir: &Path, users: &Accounts) -> Result<Vec<(AccountId, Entry)>, String> {
    let unreadable = |error| format!("data directory {}: cannot be read: {error}", dir.display());
    let mut names = HashSet::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        names.insert(entry.map_err(unreadable)?.file_name());
    }
    let mut found = Vec::new();
    for id in 0..users.len() {
        let owner = users.name(id);
        let file = file_name(owner);
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
                load_at_startup(dir, &path, &bytes, users, owner)?
            }
            Ok(metadata) => {
                let kind = NotRegular::of(&metadata);
                warn_limited!(
                    "{}: the mailbox of {owner} is {}, not a regular file: it is never \
                     opened; {owner} gets no stored messages, and messages for them while \
                     offline are refused (-8)",
                    path.display(),
                    kind.describe(),
                );
                Entry {
                    unusable: Some(kind),
                    ..Entry::default()
                }
            }
            Err(error) => return Err(unreadable(error)),
        };
        found.push((id, entry));
    }
    for stranger in names {
        let path = dir.join(&stranger);
        if stranger.to_string_lossy().contains(DAMAGED_SUFFIX) {
            warn_limited!(
                "{}: a damaged mailbox moved aside by an earlier start; not read",
                path.display()
            );
        } else {
            warn_limited!(
                "{}: not the mailbox of any account; ignored",
                path.display()
            );
        }
    }
    Ok(found)
}

/// What one regular file found at startup holds (see [`scan`]), rewriting or moving it
/// first where it must.
fn load_at_startup(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    users: &Accounts,
    owner: &str,
) -> Result<Entry, String> {
    let parsed = match mailbox_format::parse(bytes) {
        Ok(parsed) => parsed,
        Err(mailbox_format::Unrecognised(why)) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!("{DAMAGED_SUFFIX}{}", message_id::now_ms()));
            let aside = PathBuf::from(aside);
            fs::rename(path, &aside).map_err(|error| {
                format!(
                    "{}: not a mailbox this server can read ({why}), and cannot be moved \
                     aside: {error}",
                    path.display()
                )
            })?;
            log::error!(
                "{}: not a mailbox this server can read ({why}); moved aside to {}, \
                 unread and unchanged; new messages for {owner} go to a new file",
                path.display(),
                aside.display()
            );
            return Ok(Entry::default());
        }
    };
    let mut problems = Vec::new();
    if let Some(damage) = parsed.damaged_header {
        problems.push(damage.to_string());
    }
    let mut records = Vec::with_capacity(parsed.records.len() - parsed.acknowledged);
    let mut last_id = 0;
    let mut reordered = 0;
    let unacknowledged = parsed.records.iter().skip(parsed.acknowledged);
    for (index, (id, body)) in unacknowledged.enumerate() {
        if let Err(problem) = check_record(users, owner, body) {
            problems.push(format!("record {} skipped: {problem}", index + 1));
            continue;
        }
        records.push((*id, *body));
    }
    match parsed.format {
        Format::Old => {
            // Ids for the first format's messages: from now, in file order. Their real
            // send time was never recorded.
            let first = message_id::first_of_ms(message_id::now_ms());
            for (offset, record) in (0..).zip(&mut records) {
                record.0 = first + offset;
            }
            problems.push("the first format, without ids: rewritten with ids".into());
        }
        Format::WithIds => {
            // The first receipts server stored unacknowledged messages again at the end,
            // with their older ids: in id order they are in the order they were sent.
            records.sort_by_key(|(id, _)| *id);
            problems.push("the second format: rewritten in the third".into());
        }
        Format::Current => {}
    }
    // Ids increase in file order. A record whose id does not (an acknowledged record, or
    // a copy, left behind by a compaction a crash interrupted; or a damaged id) is
    // dropped: it was delivered, or is there once already. An id from beyond tomorrow can
    // only be damaged: renumbered, or it would hold every later id above it.
    let plausible = message_id::first_of_ms(message_id::now_ms() + PLAUSIBLE_AHEAD_MS);
    let mut dropped = 0;
    records.retain_mut(|record| {
        if record.0 > plausible {
            record.0 = last_id + 1;
            reordered += 1;
        } else if record.0 <= last_id {
            dropped += 1;
            return false;
        }
        last_id = record.0;
        true
    });
    if reordered > 0 {
        problems.push(format!("{reordered} ids from the future, renumbered"));
    }
    if dropped > 0 {
        problems.push(format!(
            "{dropped} records out of order or repeated (left by an interrupted \
             compaction, or damaged), dropped"
        ));
    }
    let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
    if problems.is_empty() {
        let acknowledged = u32::try_from(parsed.acknowledged).unwrap_or(u32::MAX);
        return Ok(Entry {
            count,
            acknowledged,
            last_id,
            ..Entry::default()
        });
    }
    rewrite(dir, path, &records)
        .map_err(|error| format!("{}: cannot be rewritten: {error}", path.display()))?;
    log::warn!(
        "{}: rewritten at startup with its {} messages ({}{})",
        path.display(),
        records.len(),
        problems.join("; "),
        if parsed.torn > 0 {
            format!("; a torn record of {} bytes dropped", parsed.torn)
        } else {
            String::new()
        }
    );
    Ok(Entry {
        count,
        acknowledged: 0,
        last_id,
        ..Entry::default()
    })
}

/// Writes `records` as the whole of the file at `path`, in this format: beside it,
/// synced, and renamed over it, so that a crash leaves one or the other whole.
fn rewrite(dir: &Path, path: &Path, records: &[Record]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".rewriting");
    let temporary = PathBuf::from(temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .custom_flags(SAFE_OPEN_FLAGS)
        .open(&temporary)?;
    let result = file
        .write_all(&mailbox_format::file_with(records))
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temporary, path))
        .and_then(|()| File::open(dir)?.sync_all());
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// The message a record holds, if it is one this server could have written: every
/// field NUL-padded, the sender an account, the receiver the mailbox's owner.
fn check_record(
    users: &Accounts,
    owner: &str,
    record: &[u8; CHAT_BODY_LEN],
) -> Result<ChatMessage, &'static str> {
    let message = ChatMessage::decode(record);
    if message.to_bytes() != *record {
        return Err("bytes after a field's end");
    }
    match message.sender.as_str() {
        Some(sender) if users.contains(sender) => {}
        _ => return Err("the sender is not an account"),
    }
    if message.receiver.as_bytes() != owner.as_bytes() {
        return Err("addressed to someone else");
    }
    Ok(message)
}

/// The file name for `name`'s mailbox: the name's bytes in hex, safe for any UTF-8 name
/// on any file system.
fn file_name(name: &str) -> String {
    let mut file = String::with_capacity(name.len() * 2 + 1 + MAILBOX_EXTENSION.len());
    push_file_name(&mut file, name);
    file
}

/// Appends the file name for `name`'s mailbox (see [`file_name`]) to `out`.
fn push_file_name(out: &mut String, name: &str) {
    for byte in name.bytes() {
        write!(out, "{byte:02x}").expect("writing to a String cannot fail");
    }
    out.push('.');
    out.push_str(MAILBOX_EXTENSION);
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
    account: AccountId,
    owner: &'a str,
    mailboxes: &'a Mailboxes,
}

impl Mailbox<'_> {
    /// Ids for `count` messages to this user accepted now: the first of them (the others
    /// follow it, one apart). Increasing in the order they are given, which, under this
    /// lock, is the order the messages are stored and written.
    pub fn next_ids(&mut self, count: usize) -> u64 {
        let first = message_id::next_after(self.entry.last_id, message_id::now_ms());
        self.entry.last_id = first + (count as u64).saturating_sub(1);
        first
    }

    /// The user whose mailbox this is.
    pub fn owner(&self) -> &str {
        self.owner
    }

    /// Counts again what the file holds, after it was found removed or cut short (by
    /// hand, while the server runs): the store stops waiting for records that are gone,
    /// and gives their room back. How many messages were gone.
    pub fn recount(&mut self) -> usize {
        if self.entry.file.take().is_some() {
            self.mailboxes.uncache(self.account);
        }
        let records = match fs::symlink_metadata(self.path()) {
            Ok(metadata) if metadata.is_file() => {
                u32::try_from(metadata.len().saturating_sub(HEADER_LEN) / RECORD_LEN)
                    .unwrap_or(u32::MAX)
            }
            _ => 0,
        };
        self.entry.acknowledged = self.entry.acknowledged.min(records);
        let now = records - self.entry.acknowledged;
        let gone = self.entry.count.saturating_sub(now);
        self.entry.count -= gone;
        self.mailboxes.release(gone as usize);
        gone as usize
    }

    /// Messages stored and not yet delivered for good.
    pub fn len(&self) -> usize {
        self.entry.count as usize
    }

    /// True if no message is stored (or the entry is unusable).
    pub fn is_empty(&self) -> bool {
        self.entry.count == 0 || self.entry.unusable.is_some()
    }

    /// Stores one message (see [`Mailbox::accept`]): whether it was kept, or which limit
    /// refused it; an error means nothing was stored (the sender is told -8).
    pub fn append(&mut self, message: &ChatMessage) -> io::Result<Stored> {
        let frame = message.to_frame(Flag::Ok);
        let accepted = self.accept(&frame, &mut Vec::new());
        match accepted.refused {
            None => Ok(Stored::Queued),
            Some(refused) => refused,
        }
    }

    /// Stores the messages of `frames` (whole CHAT frames, all for this user), in order,
    /// as far as the limits allow: each gets an id ([`Mailbox::next_ids`]); the first
    /// [`Accepted::kept`] are written in one write (and synced, if the policy says so)
    /// before this returns; the rest are refused, all for the same reason. A failed
    /// write keeps none of them: what it half wrote is cut off again, so no part of a
    /// message the sender hears -8 for is ever delivered.
    pub fn accept(&mut self, frames: &[u8], scratch: &mut Vec<u8>) -> Accepted {
        let count = frames.len() / CHAT_FRAME_LEN;
        let first_id = self.next_ids(count);
        let refuse = |kept, why| Accepted {
            first_id,
            kept,
            refused: Some(why),
        };
        if let Some(kind) = self.entry.unusable {
            return refuse(0, Err(not_regular(kind)));
        }
        // The count is a u32 (one per account, kept small): a limit beyond it is capped.
        let room =
            self.mailboxes.limit.min(u32::MAX as usize) - self.len().min(self.mailboxes.limit);
        let fits = count.min(room);
        let reserved = self.mailboxes.reserve(fits);
        if reserved > 0 {
            let kept = &frames[..reserved * CHAT_FRAME_LEN];
            if let Err(error) = self.write(first_id, kept, scratch) {
                self.mailboxes.release(reserved);
                return refuse(0, Err(error));
            }
            self.entry.count += u32::try_from(reserved).expect("capped by the limit");
        }
        let refused = if reserved == count {
            None
        } else if reserved < fits {
            Some(Ok(Stored::StoreFull))
        } else {
            Some(Ok(Stored::MailboxFull))
        };
        Accepted {
            first_id,
            kept: reserved,
            refused,
        }
    }

    /// Stores the messages of `frames` for their echoes (see [`Mailbox::accept`]): each
    /// one's flag in `flags` (0 kept, -7 a limit, -8 a storage failure) and its id in
    /// `ids` (0 if refused), both appended. Refusals are logged. `scratch` is room for the
    /// records' bytes, the caller's to reuse.
    pub fn store(
        &mut self,
        frames: &[u8],
        flags: &mut Vec<Flag>,
        ids: &mut Vec<u64>,
        scratch: &mut Vec<u8>,
    ) -> Accepted {
        let count = frames.len() / CHAT_FRAME_LEN;
        let accepted = self.accept(frames, scratch);
        flags.extend(std::iter::repeat_n(Flag::Queued, accepted.kept));
        ids.extend((accepted.first_id..).take(accepted.kept));
        let refused = count - accepted.kept;
        let owner = self.owner;
        let flag = match &accepted.refused {
            None => return accepted,
            Some(Ok(Stored::MailboxFull)) => {
                crate::info_limited!(
                    "mailbox of {owner} is full (--mailbox-limit {}); {refused} messages refused",
                    self.mailboxes.limit
                );
                Flag::MailboxFull
            }
            Some(Ok(Stored::StoreFull)) => {
                warn_limited!(
                    "the store is full (--store-limit {} messages in all mailboxes); \
                     {refused} messages for {owner} refused",
                    self.mailboxes.store_limit
                );
                Flag::MailboxFull
            }
            Some(Ok(Stored::Queued)) => Flag::Queued,
            Some(Err(error)) => {
                log_limited!(
                    log::Level::Error,
                    "{}: cannot store {refused} messages for {owner} ({}): {error}",
                    self.path().display(),
                    storage_problem(error)
                );
                Flag::NotStored
            }
        };
        flags.extend(std::iter::repeat_n(flag, refused));
        ids.extend(std::iter::repeat_n(0, refused));
        accepted
    }

    /// Appends the messages of `frames` (whole CHAT frames) as records with ids from
    /// `first_id` on, synced as the policy says. On any failure the file is cut back to
    /// what it held before. The records are built in the caller's `bytes`, and a file
    /// kept open needs no path: every message to a receipts receiver comes through here,
    /// and an allocation per write had every session thread queue for the allocator's
    /// lock. (Not in thread-local buffers: they would take a page more of every client
    /// thread's stack, 40 MiB over 10,000 clients.)
    fn write(&mut self, first_id: u64, frames: &[u8], bytes: &mut Vec<u8>) -> io::Result<()> {
        let cached = self.entry.file.take();
        let was_cached = cached.is_some();
        bytes.clear();
        for (id, frame) in (first_id..).zip(frames.chunks_exact(CHAT_FRAME_LEN)) {
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.extend_from_slice(&frame[FEEDBACK_LEN..]);
        }
        let written = self.append_bytes(bytes, cached);
        match written {
            Ok((file, started_anew)) => {
                if started_anew {
                    self.entry.acknowledged = 0;
                }
                // Kept open for the next write while it has a place (see `cache`).
                if was_cached || self.mailboxes.cache(self.account) {
                    self.entry.file = Some(file);
                    self.entry.used = true;
                }
                Ok(())
            }
            Err(error) => {
                if was_cached {
                    self.mailboxes.uncache(self.account);
                }
                Err(error)
            }
        }
    }

    /// Appends `records` (the bytes of whole records) to `cached`, the file kept open,
    /// or to the file opened for it (see [`Mailbox::write`]); the file written, and
    /// whether it was started anew, with a header.
    fn append_bytes(&self, records: &[u8], cached: Option<File>) -> io::Result<(File, bool)> {
        let _permit = self.mailboxes.permits.take();
        let cached = cached
            .map(|file| file.metadata().map(|metadata| (file, metadata)))
            .transpose()?
            // Removed by hand since it was opened: writing there would lose the message.
            .filter(|(_, metadata)| metadata.nlink() > 0);
        let (file, created, len) = match cached {
            Some((file, metadata)) => (file, false, metadata.len()),
            None => {
                let (file, created) = self.open_for_append(&self.path())?;
                let len = file.metadata()?.len();
                (file, created, len)
            }
        };
        // A new (or emptied) file, or one whose header a crash tore, starts with the
        // header; a torn record at the end is dropped, or every record after it would be
        // misaligned.
        let (whole, header) = if len < HEADER_LEN {
            (0, true)
        } else {
            (len - (len - HEADER_LEN) % RECORD_LEN, false)
        };
        if whole != len {
            warn_limited!(
                "{}: dropping a torn record ({} bytes) at the end",
                self.path().display(),
                len - whole
            );
            file.set_len(whole)?;
        }
        let result = if header {
            // A new file: the header and the records in one write.
            let mut first = Vec::with_capacity(HEADER_BYTES + records.len());
            first.extend_from_slice(&mailbox_format::header(0));
            first.extend_from_slice(records);
            file.write_all_at(&first, 0)
        } else {
            file.write_all_at(records, whole)
        };
        let result = result.and_then(|()| match self.mailboxes.sync {
            SyncPolicy::Always => {
                file.sync_data()?;
                // A new file's name lives in the directory: sync that too, or a crash
                // could lose the whole file after the sender heard 0 or 1.
                if created {
                    File::open(&self.mailboxes.dir)?.sync_all()?;
                }
                Ok(())
            }
            SyncPolicy::EverySecond => {
                self.mailboxes.written(self.account, created);
                Ok(())
            }
        });
        if result.is_err()
            && let Err(undo) = file.set_len(whole)
        {
            log_limited!(
                log::Level::Error,
                "{}: a message failed to store and cannot be cut off again ({undo}); \
                 its sender was told -8, but it may still be delivered",
                self.path().display()
            );
        }
        result.map(|()| (file, header))
    }

    /// Runs `f` with this mailbox's file, open for reading and writing: the one kept
    /// open, or one opened for the purpose (the caller holds a store permit).
    fn with_file<T>(&self, f: impl FnOnce(&File) -> io::Result<T>) -> io::Result<T> {
        match &self.entry.file {
            Some(file) => f(file),
            None => f(&open_regular(
                &self.path(),
                OpenOptions::new().read(true).write(true),
            )?),
        }
    }

    /// Opens the file for appending (and reading), creating it (`0600`) if needed.
    /// Returns the file and whether it was just created. `create_new` never follows a link either: it
    /// fails if anything at all is in the way.
    fn open_for_append(&self, path: &Path) -> io::Result<(File, bool)> {
        let open = |create_new: bool| {
            let mut options = OpenOptions::new();
            // Not `O_APPEND`: appends go at the end the file's length says, and the same
            // descriptor, kept open, also rewrites the header and reads what waits.
            options.read(true).write(true).mode(FILE_MODE);
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

    /// Up to `max` stored messages, starting `from` messages after the first one not yet
    /// acknowledged: what a receipts connection is written next. Records that are not
    /// messages this server writes are skipped but counted ([`Waiting`]).
    pub fn read_waiting(&self, from: usize, max: usize) -> io::Result<Waiting> {
        let mut waiting = Waiting::default();
        let wanted = max.min(self.len().saturating_sub(from));
        if wanted == 0 || self.entry.unusable.is_some() {
            return Ok(waiting);
        }
        let path = self.path();
        let mut bytes = vec![0; wanted * RECORD_LEN as usize];
        let first = self.entry.acknowledged as u64 + from as u64;
        {
            let _permit = self.mailboxes.permits.take();
            self.with_file(|file| file.read_exact_at(&mut bytes, HEADER_LEN + first * RECORD_LEN))?;
        }
        for (index, record) in bytes.chunks_exact(RECORD_LEN as usize).enumerate() {
            let (id, body) = record.split_at(8);
            let id = u64::from_le_bytes(id.try_into().expect("8 bytes"));
            let body = body.try_into().expect("a 140-byte body");
            waiting.trailing += 1;
            match check_record(&self.mailboxes.users, self.owner, body) {
                Ok(message) => {
                    waiting.messages.push((waiting.trailing, (id, message)));
                    waiting.trailing = 0;
                }
                Err(problem) => warn_limited!(
                    "{}: record {} is not a message this server wrote ({problem}); skipped",
                    path.display(),
                    first as usize + index + 1
                ),
            }
        }
        Ok(waiting)
    }

    /// The owner's receipts client has the first `count` stored messages: they leave the
    /// store, and their room is given back. The file is emptied when nothing is left,
    /// compacted when they are many (`COMPACT_AT`), and otherwise its header counts them. A failure here is logged and loses nothing: at worst the
    /// messages are delivered again after a restart.
    pub fn acknowledge(&mut self, count: usize) {
        let count = count.min(self.len());
        if count == 0 {
            return;
        }
        self.mailboxes.release(count);
        self.entry.count -= count as u32;
        self.entry.acknowledged = self.entry.acknowledged.saturating_add(count as u32);
        let (count_left, acknowledged) = (self.entry.count, self.entry.acknowledged);
        let _permit = self.mailboxes.permits.take();
        let result = self.with_file(|file| {
            if count_left == 0 {
                // Emptied rather than removed: no directory change, nothing to sync.
                file.set_len(0).map(|()| 0)
            } else if acknowledged >= COMPACT_AT && acknowledged >= count_left {
                self.compact(file).map(|()| 0)
            } else {
                let header = mailbox_format::header(u64::from(acknowledged));
                file.write_all_at(&header, 0).map(|()| acknowledged)
            }
        });
        match result {
            Ok(acknowledged) => self.entry.acknowledged = acknowledged,
            Err(error) => log_limited!(
                log::Level::Error,
                "{}: cannot record that {count} messages were acknowledged ({}): {error}; \
                 they may be delivered again after a restart",
                self.path().display(),
                storage_problem(&error)
            ),
        }
    }

    /// Moves the records not yet acknowledged to the front of the file, in place, and
    /// cuts it after them: no second file, no rename. Only called when they are no more
    /// than the acknowledged ones, so the copy never overwrites what it copies, and a
    /// crash at any step loses nothing: before the header says 0, the file reads as it
    /// did (the front holds acknowledged records, skipped); after it, the front holds the
    /// copies, and the records after them, not yet cut off, have ids no higher than the
    /// copies' and are dropped at startup (see `load_at_startup`). The copies are synced
    /// before the header changes, and the header before the cut, whatever `--sync` says:
    /// once the header says 0 they are the only copy of messages promised long ago.
    fn compact(&self, file: &File) -> io::Result<()> {
        let kept = u64::from(self.entry.count) * RECORD_LEN;
        let from = HEADER_LEN + u64::from(self.entry.acknowledged) * RECORD_LEN;
        let mut records = vec![0; usize::try_from(kept).expect("a mailbox fits in memory")];
        file.read_exact_at(&mut records, from)?;
        file.write_all_at(&records, HEADER_LEN)?;
        file.sync_data()?;
        file.write_all_at(&mailbox_format::header(0), 0)?;
        // The header on the disk before the cut: a cut that reached the disk without the
        // header would leave a count beyond the records (read as 0 then, see
        // `mailbox_format::parse`, but better never).
        file.sync_data()?;
        file.set_len(HEADER_LEN + kept)
    }

    /// Every whole, valid stored message not yet acknowledged, oldest first. A torn
    /// record at the end is left out, and so is every record this server would not have
    /// written (reported).
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
        let parsed = mailbox_format::parse(&bytes).map_err(|problem| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a mailbox this server can read: {}", problem.0),
            )
        })?;
        if parsed.torn > 0 {
            warn_limited!(
                "{}: ignoring a torn record ({} bytes) at the end",
                path.display(),
                parsed.torn
            );
        }
        let skip = (self.entry.acknowledged as usize).max(parsed.acknowledged);
        let mut messages = Vec::with_capacity(parsed.records.len().saturating_sub(skip));
        for (index, (id, record)) in parsed.records.iter().enumerate().skip(skip) {
            match check_record(&self.mailboxes.users, self.owner, record) {
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

    /// A plain login's delivery of the mailbox: reads the stored messages, has `send`
    /// write the login reply followed by them (all under this mailbox's lock, see
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
                let messages = self.len();
                return Ok(Handover::Kept { messages, error });
            }
        };
        let count = self.len();
        self.mailboxes.release(count);
        if let Err(error) = send(&loaded.messages) {
            self.mailboxes.take_back(count);
            return Err(error);
        }
        self.empty(&loaded);
        Ok(Handover::Delivered(loaded.messages.len()))
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
                self.forget_all();
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
        if self.entry.file.take().is_some() {
            self.mailboxes.uncache(self.account);
        }
        match fs::remove_file(&path) {
            Ok(()) => self.forget_all(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => self.forget_all(),
            Err(error) => self.keep_after_delivery(&path, &error.to_string(), None),
        }
    }

    /// The file is gone: nothing stored, nothing acknowledged.
    fn forget_all(&mut self) {
        self.entry.count = 0;
        self.entry.acknowledged = 0;
    }

    /// The mailbox stays after a delivery: it is counted again (as `left` messages if
    /// its file changed, or as before), and its messages come again at the next login.
    fn keep_after_delivery(&mut self, path: &Path, why: &str, left: Option<u32>) {
        log_limited!(
            log::Level::Error,
            "{}: delivered, but cannot be emptied ({why}); it is kept, and its \
             messages will come again at the next login",
            path.display()
        );
        if let Some(left) = left {
            self.entry.count = left;
            self.entry.acknowledged = 0;
        }
        self.mailboxes.take_back(self.len());
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
        io::ErrorKind::InvalidData => {
            "the mailbox entry is not a regular file, or not a mailbox this server reads"
        }
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

    /// The mailboxes of the built-in users in `dir`, `limit` messages each and
    /// `store_limit` in all, synced as `sync` says.
    fn open_with(dir: &Path, limit: usize, store_limit: usize, sync: SyncPolicy) -> Mailboxes {
        Mailboxes::open(
            dir,
            limit,
            store_limit,
            Arc::new(Accounts::built_in()),
            sync,
        )
        .unwrap()
    }

    /// The mailboxes of the built-in users in `dir`, 10 messages each, no store limit.
    fn open_unlimited(dir: &Path) -> Mailboxes {
        open_with(dir, 10, NO_STORE_LIMIT, SyncPolicy::Always)
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
    fn a_users_ids_carry_the_millisecond_and_stay_above_its_stored_ids_after_a_restart() {
        let dir = temp_dir("ids");
        let stored_id = {
            let mailboxes = open_unlimited(&dir);
            let mut mailbox = mailboxes.lock("似末").unwrap();
            let before = message_id::now_ms();
            mailbox.append(&message("old")).unwrap();
            let (id, _) = mailbox.load().unwrap()[0];
            let at = message_id::sent_at_ms(id).unwrap();
            assert!(
                at >= before && at <= message_id::now_ms(),
                "{id} carries its millisecond"
            );
            id
        };
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        let first = mailbox.next_ids(2);
        assert!(first > stored_id, "{first} after a stored {stored_id}");
        assert!(mailbox.next_ids(1) == first + 2, "ids increase one by one");
        let mut other = mailboxes.lock("1001").unwrap();
        let theirs = other.next_ids(1);
        assert_eq!(
            theirs & ((1 << message_id::SEQUENCE_BITS) - 1),
            0,
            "another user counts from 0"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn acknowledged_messages_leave_from_the_front_and_the_mark_survives_a_restart() {
        let dir = temp_dir("acknowledge");
        {
            let mailboxes = open_unlimited(&dir);
            let mut mailbox = mailboxes.lock("似末").unwrap();
            for text in ["one", "two", "three"] {
                mailbox.append(&message(text)).unwrap();
            }
            let waiting = mailbox.read_waiting(1, 10).unwrap();
            let texts: Vec<_> = waiting
                .messages
                .iter()
                .map(|(_, (_, m))| m.text.to_lossy())
                .collect();
            assert_eq!(texts, ["two", "three"], "read from the second on");
            mailbox.acknowledge(1);
            assert_eq!(stored_texts(&mailbox), ["two", "three"]);
            assert_eq!(mailboxes.stored(), 2, "room given back");
        }
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        assert_eq!(
            stored_texts(&mailbox),
            ["two", "three"],
            "the header kept the mark"
        );
        let waiting = mailbox.read_waiting(0, 10).unwrap();
        let texts: Vec<_> = waiting
            .messages
            .iter()
            .map(|(_, (_, m))| m.text.to_lossy())
            .collect();
        assert_eq!(
            texts,
            ["two", "three"],
            "and the store reads from it by position"
        );
        mailbox.acknowledge(2);
        assert!(mailbox.is_empty());
        assert_eq!(
            fs::metadata(mailbox.path()).unwrap().len(),
            0,
            "emptied, not removed"
        );
        mailbox.append(&message("four")).unwrap();
        assert_eq!(stored_texts(&mailbox), ["four"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_long_acknowledged_front_is_compacted_away() {
        let dir = temp_dir("compact");
        let limit = 3 * COMPACT_AT as usize;
        let mailboxes = open_with(&dir, limit, NO_STORE_LIMIT, SyncPolicy::EverySecond);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        let frames: Vec<u8> = (0..2 * COMPACT_AT)
            .flat_map(|n| message(&n.to_string()).to_frame(Flag::Ok))
            .collect();
        let accepted = mailbox.accept(&frames, &mut Vec::new());
        assert_eq!(accepted.kept, 2 * COMPACT_AT as usize);
        mailbox.acknowledge(COMPACT_AT as usize + 1);
        let len = fs::metadata(mailbox.path()).unwrap().len();
        assert_eq!(
            len,
            HEADER_LEN + (COMPACT_AT as u64 - 1) * RECORD_LEN,
            "rewritten without them"
        );
        let texts = stored_texts(&mailbox);
        let expected: Vec<String> = (COMPACT_AT + 1..2 * COMPACT_AT)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(texts, expected, "the rest, in order, moved to the front");
        drop(mailbox);
        let reopened = open_unlimited(&dir);
        assert_eq!(
            stored_texts(&reopened.lock("似末").unwrap()).len(),
            expected.len()
        );
        mailboxes.sync_written();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_kept_open_is_let_go_when_idle_and_never_written_after_a_removal_by_hand() {
        let dir = temp_dir("cached");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(&message("one")).unwrap();
        assert!(mailbox.entry.file.is_some(), "kept open for the next write");
        // Removed by hand while open: the next append makes a new file, whose message
        // is there to be read (not written into the removed one).
        fs::remove_file(mailbox.path()).unwrap();
        mailbox.append(&message("two")).unwrap();
        assert!(fs::read(mailbox.path()).unwrap().len() > HEADER_BYTES);
        drop(mailbox);
        mailboxes.close_idle_files();
        assert!(
            mailboxes.lock("似末").unwrap().entry.file.is_some(),
            "used since the last look"
        );
        mailboxes.close_idle_files();
        assert!(
            mailboxes.lock("似末").unwrap().entry.file.is_none(),
            "idle: closed"
        );
        assert!(mailboxes.cached.lock().is_empty(), "its place given back");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_compaction_cut_short_by_a_crash_delivers_what_waited_once_with_its_ids() {
        let dir = temp_dir("interrupted");
        fs::create_dir_all(&dir).unwrap();
        let record = |id: u64, text: &str| (id, message(text).to_bytes());
        // Acknowledged 5 and 6, waiting 7 and 8, compacted up to the header (0) but not
        // cut: the copies at the front, then what the cut would have removed.
        let file = mailbox_format::file_with(&[
            record(7, "seven"),
            record(8, "eight"),
            record(5, "five"),
            record(6, "six"),
            record(7, "seven"),
            record(8, "eight"),
        ]);
        fs::write(dir.join(file_name("似末")), &file).unwrap();
        let mailboxes = open_unlimited(&dir);
        let stored = mailboxes.lock("似末").unwrap().load().unwrap();
        let got: Vec<_> = stored
            .iter()
            .map(|(id, m)| (*id, m.text.to_lossy()))
            .collect();
        assert_eq!(
            got,
            [(7, "seven".into()), (8, "eight".into())],
            "once, with their ids"
        );
        // Cut, but the header not yet written: its count (4) is beyond the 2 records.
        let to_1001 = |id, text: &str| {
            let mut message = message(text);
            message.receiver = Name::new("1001").unwrap();
            (id, message.to_bytes())
        };
        let mut cut = mailbox_format::file_with(&[to_1001(9, "nine"), to_1001(10, "ten")]);
        cut[..HEADER_BYTES].copy_from_slice(&mailbox_format::header(4));
        fs::write(dir.join(file_name("1001")), &cut).unwrap();
        drop(mailboxes);
        let mailboxes = open_unlimited(&dir);
        assert_eq!(
            stored_texts(&mailboxes.lock("1001").unwrap()),
            ["nine", "ten"]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_id_from_the_future_is_renumbered_and_holds_no_later_id_back() {
        let dir = temp_dir("future");
        fs::create_dir_all(&dir).unwrap();
        let now = message_id::first_of_ms(message_id::now_ms());
        let file = mailbox_format::file_with(&[
            (now, message("first").to_bytes()),
            (u64::MAX, message("damaged id").to_bytes()),
            (now + 5, message("third").to_bytes()),
        ]);
        fs::write(dir.join(file_name("似末")), &file).unwrap();
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        let stored = mailbox.load().unwrap();
        let ids: Vec<u64> = stored.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            [now, now + 1, now + 5],
            "renumbered after the one before it"
        );
        assert!(
            mailbox.next_ids(1) < u64::MAX / 2,
            "new ids follow the clock"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn letting_idle_files_go_never_waits_for_a_mailbox_in_use() {
        let dir = temp_dir("idle-busy");
        let mailboxes = Arc::new(open_unlimited(&dir));
        mailboxes
            .lock("似末")
            .unwrap()
            .append(&message("one"))
            .unwrap();
        let busy = mailboxes.lock("似末").unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let housekeeper = {
            let mailboxes = Arc::clone(&mailboxes);
            std::thread::spawn(move || {
                mailboxes.close_idle_files();
                mailboxes.close_idle_files();
                done.send(()).unwrap();
            })
        };
        finished
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("close_idle_files passes over a locked mailbox instead of waiting");
        assert!(busy.entry.file.is_some(), "a mailbox in use keeps its file");
        drop(busy);
        housekeeper.join().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_written_are_synced_once_each_and_a_file_gone_since_is_passed_over() {
        let dir = temp_dir("sync");
        let users = Arc::new(Accounts::built_in());
        let mailboxes =
            Mailboxes::open(&dir, 10, NO_STORE_LIMIT, users, SyncPolicy::EverySecond).unwrap();
        assert_eq!(mailboxes.sync_policy(), SyncPolicy::EverySecond);
        for _ in 0..3 {
            mailboxes
                .lock("似末")
                .unwrap()
                .append(&message("m"))
                .unwrap();
        }
        let mut to_1001 = message("m");
        to_1001.receiver = Name::new("1001").unwrap();
        mailboxes.lock("1001").unwrap().append(&to_1001).unwrap();
        let id = |name| Accounts::built_in().id(name).unwrap();
        assert_eq!(
            *mailboxes.dirty.lock(),
            [id("似末"), id("1001")],
            "each once"
        );
        assert!(
            mailboxes.dir_dirty.load(Ordering::Acquire),
            "two files created"
        );
        fs::remove_file(mailboxes.lock("1001").unwrap().path()).unwrap();
        mailboxes.sync_written();
        assert!(mailboxes.dirty.lock().is_empty());
        assert!(!mailboxes.dir_dirty.load(Ordering::Acquire));
        mailboxes
            .lock("似末")
            .unwrap()
            .append(&message("m"))
            .unwrap();
        assert_eq!(
            *mailboxes.dirty.lock(),
            [id("似末")],
            "noted again after the sync"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_delivered_mailbox_gives_back_its_open_file_and_a_full_store_creates_no_file() {
        let dir = temp_dir("uncache");
        let mailboxes = open_with(&dir, 10, 1, SyncPolicy::Always);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(&message("one")).unwrap();
        assert_eq!(mailboxes.cached.lock().len(), 1);
        mailbox.hand_over(|_| Ok(())).unwrap();
        assert!(mailbox.entry.file.is_none());
        assert!(mailboxes.cached.lock().is_empty(), "its place given back");
        drop(mailbox);
        let mut to_1001 = message("x");
        to_1001.receiver = Name::new("1001").unwrap();
        let mut other = mailboxes.lock("似末").unwrap();
        other.append(&message("fills the store")).unwrap();
        drop(other);
        let mut full = mailboxes.lock("1001").unwrap();
        assert_eq!(full.append(&to_1001).unwrap(), Stored::StoreFull);
        assert!(!full.path().exists(), "nothing kept, no file made");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_after_a_restart_stay_above_a_stored_id_even_with_the_clock_behind_it() {
        let dir = temp_dir("ids-ahead");
        fs::create_dir_all(&dir).unwrap();
        // An hour ahead of this clock (a clock stepped back since), still plausible.
        let ahead = message_id::first_of_ms(message_id::now_ms() + 60 * 60 * 1_000);
        let file = mailbox_format::file_with(&[(ahead, message("later").to_bytes())]);
        fs::write(dir.join(file_name("似末")), &file).unwrap();
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        assert_eq!(mailbox.load().unwrap()[0].0, ahead, "kept as it was");
        assert_eq!(
            mailbox.next_ids(1),
            ahead + 1,
            "the next id follows the stored one"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_that_are_no_messages_are_skipped_but_counted_by_the_message_after_them() {
        let dir = temp_dir("positions");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        for text in ["one", "two", "three", "four"] {
            mailbox.append(&message(text)).unwrap();
        }
        // Records 2 and 3 spoiled by hand while the server runs: they name nobody.
        let file = OpenOptions::new().write(true).open(mailbox.path()).unwrap();
        for record in [1, 2] {
            let sender_at = HEADER_LEN + record * RECORD_LEN + 8;
            file.write_all_at(&[0xFF; 4], sender_at).unwrap();
        }
        let waiting = mailbox.read_waiting(0, 10).unwrap();
        let got: Vec<_> = waiting
            .messages
            .iter()
            .map(|(records, (_, m))| (*records, m.text.to_lossy()))
            .collect();
        assert_eq!(got, [(1, "one".into()), (3, "four".into())]);
        assert_eq!(waiting.trailing, 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_batch_is_kept_as_far_as_the_limit_goes_and_the_rest_refused() {
        let dir = temp_dir("batch");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        let frames: Vec<u8> = (0..12)
            .flat_map(|_| message("m").to_frame(Flag::Ok))
            .collect();
        let (mut flags, mut ids) = (Vec::new(), Vec::new());
        let accepted = mailbox.store(&frames, &mut flags, &mut ids, &mut Vec::new());
        assert_eq!(accepted.kept, 10);
        assert_eq!(&flags[..10], [Flag::Queued; 10]);
        assert_eq!(&flags[10..], [Flag::MailboxFull; 2]);
        assert_eq!(&ids[10..], [0, 0], "a refused message has no id");
        assert!(ids[..10].windows(2).all(|pair| pair[1] == pair[0] + 1));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_flipped_header_byte_at_startup_loses_no_message() {
        let dir = temp_dir("flipped");
        {
            let mailboxes = open_unlimited(&dir);
            let mut mailbox = mailboxes.lock("似末").unwrap();
            mailbox.append(&message("kept")).unwrap();
            mailbox.append(&message("kept too")).unwrap();
        }
        let path = dir.join(file_name("似末"));
        let mut bytes = fs::read(&path).unwrap();
        bytes[2] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let mailboxes = open_unlimited(&dir);
        assert_eq!(
            stored_texts(&mailboxes.lock("似末").unwrap()),
            ["kept", "kept too"]
        );
        assert!(
            fs::read(&path).unwrap().starts_with(&mailbox_format::MAGIC),
            "rewritten whole"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_no_mailbox_is_moved_aside_unchanged_and_new_mail_goes_to_a_new_file() {
        let dir = temp_dir("aside");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file_name("似末"));
        let garbage = b"\xFFZZZZZZZ this is no mailbox".to_vec();
        fs::write(&path, &garbage).unwrap();
        let mailboxes = open_unlimited(&dir);
        let aside: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|entry| entry.to_string_lossy().contains(DAMAGED_SUFFIX))
            .collect();
        assert_eq!(aside.len(), 1, "moved aside: {aside:?}");
        assert_eq!(fs::read(&aside[0]).unwrap(), garbage, "unchanged");
        let mut mailbox = mailboxes.lock("似末").unwrap();
        assert!(mailbox.is_empty());
        mailbox.append(&message("new")).unwrap();
        assert_eq!(stored_texts(&mailbox), ["new"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_data_directory_that_cannot_be_looked_at_is_reported_not_created() {
        // Below a regular file: looking it up fails with "not a directory", not "not
        // found", so there is nothing to create.
        let file = temp_dir("below-a-file");
        fs::write(&file, b"").unwrap();
        let dir = file.join("data");
        let error = Mailboxes::open(
            &dir,
            10,
            NO_STORE_LIMIT,
            Arc::new(Accounts::built_in()),
            SyncPolicy::Always,
        )
        .unwrap_err();
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
        let mailboxes = Mailboxes::open(
            &dir,
            10,
            NO_STORE_LIMIT,
            Arc::new(Accounts::built_in()),
            SyncPolicy::Always,
        )
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
    fn a_mailbox_removed_while_it_is_delivered_is_not_counted_again() {
        let dir = temp_dir("removed-during");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(&message("one")).unwrap();
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
        fs::write(dir.join(file_name("似末")), mailbox_format::header(0)).unwrap();
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(&message("after the header")).unwrap();
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
            "the mailbox entry is not a regular file, or not a mailbox this server reads"
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
        {
            let mailboxes = open_unlimited(&dir);
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
        let mailboxes = open_unlimited(&dir);
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
            assert_eq!(mailbox.append(&message(text)).unwrap(), Stored::Queued);
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
        let mailboxes = open_with(&dir, 2, NO_STORE_LIMIT, SyncPolicy::Always);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        assert_eq!(mailbox.append(&message("a")).unwrap(), Stored::Queued);
        assert_eq!(mailbox.append(&message("b")).unwrap(), Stored::Queued);
        assert_eq!(mailbox.append(&message("c")).unwrap(), Stored::MailboxFull);
        assert_eq!(mailbox.load().unwrap().len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_never_delivered_and_is_cut_before_the_next_append() {
        let dir = temp_dir("torn");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
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
        let error = Mailboxes::open(
            &dir,
            10,
            NO_STORE_LIMIT,
            Arc::new(Accounts::built_in()),
            SyncPolicy::Always,
        )
        .unwrap_err();
        assert!(error.contains("not a directory"), "{error}");
        fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn the_store_limit_counts_every_mailbox_and_a_delivery_frees_room() {
        let dir = temp_dir("store");
        let mailboxes = open_with(&dir, 10, 3, SyncPolicy::Always);
        assert_eq!(mailboxes.store_limit(), 3);
        for name in ["1001", "1002", "1003"] {
            let mut mailbox = mailboxes.lock(name).unwrap();
            let mut to_them = message("x");
            to_them.receiver = Name::new(name).unwrap();
            assert_eq!(mailbox.append(&to_them).unwrap(), Stored::Queued);
        }
        let mut fourth = mailboxes.lock("似末").unwrap();
        assert_eq!(fourth.append(&message("y")).unwrap(), Stored::StoreFull);
        drop(fourth);
        mailboxes
            .lock("1002")
            .unwrap()
            .hand_over(|_| Ok(()))
            .unwrap();
        assert_eq!(mailboxes.stored(), 2);
        let mut fourth = mailboxes.lock("似末").unwrap();
        assert_eq!(fourth.append(&message("y")).unwrap(), Stored::Queued);
        drop(fourth);
        // A restart counts what the files hold.
        let reopened = open_with(&dir, 10, 3, SyncPolicy::Always);
        assert_eq!(reopened.stored(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_directory_and_its_files_are_private() {
        let dir = temp_dir("private");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("1001").unwrap();
        mailbox.append(&message("secret")).unwrap();
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
        let mailboxes = open_unlimited(&dir);
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
        let mailboxes = open_unlimited(&dir);
        assert_eq!(
            stored_texts(&mailboxes.lock("似末").unwrap()),
            ["first", "last"]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_handover_keeps_the_mailbox_and_its_room() {
        let dir = temp_dir("failed-send");
        let mailboxes = open_with(&dir, 10, 2, SyncPolicy::Always);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(&message("one")).unwrap();
        mailbox.append(&message("two")).unwrap();
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
            mailbox.append(&message("three")).unwrap(),
            Stored::StoreFull
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mailbox_replaced_while_it_is_delivered_stays_for_the_next_login() {
        let dir = temp_dir("replaced");
        let mailboxes = open_unlimited(&dir);
        let mut mailbox = mailboxes.lock("似末").unwrap();
        mailbox.append(&message("old")).unwrap();
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
        mailbox.append(&message("gone")).unwrap();
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
        mailbox.append(&message("kept")).unwrap();
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
