//! The metadata database at `<root>/meta.db`: image names, snapshots, cache records and the references GC
//! follows, shared by every `strata` process using the same root.
//!
//! SQLite in WAL mode lets readers run while a writer writes. Writers additionally take an exclusive `flock`
//! on `<root>/meta.lock` around each write transaction: a blocked writer then sleeps in the kernel instead of
//! polling SQLite's busy handler, so many concurrent writers queue fairly and never hit `SQLITE_BUSY`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result, show};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    name TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent TEXT REFERENCES snapshots(key),
    kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    size INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refs (
    owner TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'snapshot')),
    target TEXT NOT NULL,
    PRIMARY KEY (owner, kind, target)
);
";

/// How long a reader waits for SQLite's own short checkpoint locks before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The metadata database of one strata root; cheap to share between threads.
#[derive(Debug)]
pub struct MetadataStore {
    conn: Mutex<Connection>,
    lock_path: PathBuf,
}

/// A named image: what `strata build -t NAME` or a pull recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The image name, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    /// The digest of the image's manifest (or index) in the content store.
    pub manifest: Digest,
    /// When the name was last pointed at this manifest.
    pub created: SystemTime,
}

/// The state of a snapshot, as containerd names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Writable, made by `prepare`.
    Active,
    /// Read-only, made by `view`.
    View,
    /// Immutable, made by `commit`; may be a parent.
    Committed,
}

impl SnapshotKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::View => "view",
            Self::Committed => "committed",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "view" => Ok(Self::View),
            "committed" => Ok(Self::Committed),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("snapshot kind {other}"),
                rusqlite::types::Type::Text,
            )),
        }
    }
}

/// One snapshot: a directory `<root>/snapshots/<id>` and its place in a parent chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The number naming the snapshot's directory; never reused.
    pub id: u64,
    /// The key (active/view) or name (committed) callers use.
    pub key: String,
    /// The committed snapshot this one is based on.
    pub parent: Option<String>,
    /// Active, view or committed.
    pub kind: SnapshotKind,
    /// Bytes used by this snapshot's own directory (not its parents), as last measured.
    pub size: u64,
    /// When the snapshot was made.
    pub created: SystemTime,
    /// When the snapshot was last prepared on, mounted or committed.
    pub last_used: SystemTime,
}

/// A build cache record: a cache key and the JSON result the solver stored for it.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheRecord {
    /// The solver's cache key.
    pub key: String,
    /// What the solver needs to reuse the result (snapshot names, layer digests, ...).
    pub result: serde_json::Value,
    /// When the record was stored.
    pub created: SystemTime,
    /// When the record was last hit.
    pub last_used: SystemTime,
}

/// Something an owner (an image, a cache record, a running build) keeps alive through GC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefTarget {
    /// A blob in the content store.
    Blob(Digest),
    /// A snapshot, by key.
    Snapshot(String),
}

impl RefTarget {
    fn columns(&self) -> (&'static str, String) {
        match self {
            Self::Blob(d) => ("blob", d.to_string()),
            Self::Snapshot(key) => ("snapshot", key.clone()),
        }
    }
}

impl MetadataStore {
    /// Opens (creating if needed) `<root>/meta.db`.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).context(|| format!("creating {}", show(root)))?;
        let path = root.join("meta.db");
        let lock_path = root.join("meta.lock");
        let conn = Connection::open(&path).map_err(|e| db(e, format!("opening {}", show(&path))))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| db(e, "setting busy_timeout".into()))?;
        // In WAL mode NORMAL survives a killed process; only a power cut can lose the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| db(e, "setting synchronous".into()))?;
        // Closing the last connection would checkpoint the WAL into the database and delete it: three fsyncs,
        // about 20 ms of every command. The WAL stays instead (the next open reads it), and SQLite's automatic
        // checkpoint still folds it back every 1000 pages, so it stays small.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| db(e, "disabling the checkpoint on close".into()))?;
        let store = Self { conn: Mutex::new(conn), lock_path };
        {
            // The journal mode cannot change inside a transaction, but it is a write: hold the writer lock.
            let _lock = store.writer_lock()?;
            let conn = store.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| db(e, format!("enabling WAL on {}", show(&path))))?;
        }
        store.write("creating the schema", |tx| tx.execute_batch(SCHEMA))?;
        Ok(store)
    }

    /// Points `name` at `manifest`, replacing what it pointed at before.
    pub fn put_image(&self, name: &str, manifest: &Digest) -> Result<()> {
        self.write(&format!("recording image {name}"), |tx| {
            tx.execute(
                "INSERT INTO images (name, manifest, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest, created = excluded.created",
                params![name, manifest.to_string(), now()],
            )
            .map(drop)
        })
    }

    /// The image called `name`, if any.
    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>> {
        self.read(&format!("reading image {name}"), |c| {
            c.query_row("SELECT name, manifest, created FROM images WHERE name = ?1", [name], image_row).optional()
        })
    }

    /// Every image, by name.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.read("listing images", |c| {
            collect(c, "SELECT name, manifest, created FROM images ORDER BY name", [], image_row)
        })
    }

    /// Forgets the name `name`; its blobs stay until GC finds them unreferenced.
    pub fn delete_image(&self, name: &str) -> Result<bool> {
        self.write(&format!("deleting image {name}"), |tx| {
            tx.execute("DELETE FROM refs WHERE owner = ?1", [image_owner(name)])?;
            Ok(tx.execute("DELETE FROM images WHERE name = ?1", [name])? > 0)
        })
    }

    /// Records a new snapshot and returns it with its freshly allocated id.
    pub fn insert_snapshot(&self, key: &str, parent: Option<&str>, kind: SnapshotKind) -> Result<SnapshotRecord> {
        self.write(&format!("recording snapshot {key}"), |tx| {
            let t = now();
            tx.execute(
                "INSERT INTO snapshots (key, parent, kind, created, last_used) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![key, parent, kind.as_str(), t],
            )?;
            tx.query_row(&format!("{SNAPSHOT_SELECT} WHERE key = ?1"), [key], snapshot_row)
        })
        .map_err(|e| match e {
            Error::Database { source, .. } if is_constraint(&source) => Error::SnapshotExists(key.to_owned()),
            other => other,
        })
    }

    /// The snapshot with this key, if any.
    pub fn snapshot(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        self.read(&format!("reading snapshot {key}"), |c| {
            c.query_row(&format!("{SNAPSHOT_SELECT} WHERE key = ?1"), [key], snapshot_row).optional()
        })
    }

    /// Every snapshot, oldest first (so parents come before their children).
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        self.read("listing snapshots", |c| collect(c, &format!("{SNAPSHOT_SELECT} ORDER BY id"), [], snapshot_row))
    }

    /// Turns the active snapshot `key` into the committed snapshot `name` of `size` bytes.
    pub fn commit_snapshot(&self, key: &str, name: &str, size: u64) -> Result<SnapshotRecord> {
        self.write(&format!("committing snapshot {key} as {name}"), |tx| {
            tx.execute(
                "UPDATE snapshots SET key = ?2, kind = 'committed', size = ?3, last_used = ?4
                 WHERE key = ?1 AND kind = 'active'",
                params![key, name, size as i64, now()],
            )?;
            tx.query_row(&format!("{SNAPSHOT_SELECT} WHERE key = ?1"), [name], snapshot_row)
        })
        .map_err(|e| match e {
            Error::Database { source, .. } if is_constraint(&source) => Error::SnapshotExists(name.to_owned()),
            Error::Database { source: rusqlite::Error::QueryReturnedNoRows, .. } => {
                Error::SnapshotNotFound(format!("{key} (as an active snapshot)"))
            }
            other => other,
        })
    }

    /// Marks a snapshot as used now, so age-based pruning keeps it.
    pub fn touch_snapshot(&self, key: &str) -> Result<()> {
        self.write(&format!("touching snapshot {key}"), |tx| {
            tx.execute("UPDATE snapshots SET last_used = ?2 WHERE key = ?1", params![key, now()]).map(drop)
        })
    }

    /// Forgets a snapshot that no other snapshot has as its parent.
    pub fn delete_snapshot(&self, key: &str) -> Result<()> {
        // Counted inside the write transaction so no child can appear between the check and the delete.
        let children = self.write(&format!("deleting snapshot {key}"), |tx| {
            let children: i64 =
                tx.query_row("SELECT count(*) FROM snapshots WHERE parent = ?1", [key], |r| r.get(0))?;
            if children == 0 {
                tx.execute("DELETE FROM refs WHERE kind = 'snapshot' AND target = ?1", [key])?;
                tx.execute("DELETE FROM snapshots WHERE key = ?1", [key])?;
            }
            Ok(children as u64)
        })?;
        match children {
            0 => Ok(()),
            children => Err(Error::SnapshotInUse { key: key.to_owned(), children }),
        }
    }

    /// Stores (or replaces) the cache record for `key`.
    pub fn put_cache(&self, key: &str, result: &serde_json::Value) -> Result<()> {
        self.write(&format!("recording cache key {key}"), |tx| {
            let t = now();
            tx.execute(
                "INSERT INTO cache (key, result, created, last_used) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(key) DO UPDATE SET result = excluded.result, last_used = excluded.last_used",
                params![key, result.to_string(), t],
            )
            .map(drop)
        })
    }

    /// The cache record for `key`, if any; call [`Self::touch_cache`] on a hit.
    pub fn cache(&self, key: &str) -> Result<Option<CacheRecord>> {
        self.read(&format!("reading cache key {key}"), |c| {
            c.query_row("SELECT key, result, created, last_used FROM cache WHERE key = ?1", [key], cache_row).optional()
        })
    }

    /// Every cache record, least recently used first.
    pub fn caches(&self) -> Result<Vec<CacheRecord>> {
        self.read("listing cache records", |c| {
            collect(c, "SELECT key, result, created, last_used FROM cache ORDER BY last_used, key", [], cache_row)
        })
    }

    /// Marks a cache record as hit now.
    pub fn touch_cache(&self, key: &str) -> Result<()> {
        self.write(&format!("touching cache key {key}"), |tx| {
            tx.execute("UPDATE cache SET last_used = ?2 WHERE key = ?1", params![key, now()]).map(drop)
        })
    }

    /// Deletes a cache record and the references it owned.
    pub fn delete_cache(&self, key: &str) -> Result<()> {
        self.write(&format!("deleting cache key {key}"), |tx| {
            tx.execute("DELETE FROM refs WHERE owner = ?1", [cache_owner(key)])?;
            tx.execute("DELETE FROM cache WHERE key = ?1", [key]).map(drop)
        })
    }

    /// Records that `owner` keeps `target` alive. Owners are free-form; see [`image_owner`] and [`cache_owner`].
    pub fn add_ref(&self, owner: &str, target: &RefTarget) -> Result<()> {
        let (kind, value) = target.columns();
        self.write(&format!("recording reference {owner} -> {value}"), |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO refs (owner, kind, target) VALUES (?1, ?2, ?3)",
                params![owner, kind, value],
            )
            .map(drop)
        })
    }

    /// Drops every reference `owner` holds.
    pub fn remove_refs(&self, owner: &str) -> Result<()> {
        self.write(&format!("removing references of {owner}"), |tx| {
            tx.execute("DELETE FROM refs WHERE owner = ?1", [owner]).map(drop)
        })
    }

    /// Every (owner, target) reference, sorted.
    pub fn refs(&self) -> Result<Vec<(String, RefTarget)>> {
        self.read("listing references", |c| {
            collect(c, "SELECT owner, kind, target FROM refs ORDER BY owner, kind, target", [], |r| {
                let owner: String = r.get(0)?;
                let kind: String = r.get(1)?;
                let target: String = r.get(2)?;
                let target =
                    if kind == "blob" { RefTarget::Blob(parse_digest(&target)?) } else { RefTarget::Snapshot(target) };
                Ok((owner, target))
            })
        })
    }

    /// Runs `f` in a write transaction while holding the cross-process writer lock.
    fn write<T>(&self, what: &str, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        let lock = self.writer_lock()?;
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db(e, format!("{what}: starting a transaction")))?;
        let value = f(&tx).map_err(|e| db(e, what.to_owned()))?;
        tx.commit().map_err(|e| db(e, format!("{what}: committing")))?;
        drop(lock);
        Ok(value)
    }

    fn read<T>(&self, what: &str, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&conn).map_err(|e| db(e, what.to_owned()))
    }

    /// Takes the exclusive flock; it is released when the returned file is dropped (or the process dies).
    fn writer_lock(&self) -> Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .context(|| format!("opening {}", show(&self.lock_path)))?;
        file.lock().context(|| format!("locking {}", show(&self.lock_path)))?;
        Ok(file)
    }
}

/// The reference owner name of an image.
pub fn image_owner(name: &str) -> String {
    format!("image:{name}")
}

/// The reference owner name of a cache record.
pub fn cache_owner(key: &str) -> String {
    format!("cache:{key}")
}

const SNAPSHOT_SELECT: &str = "SELECT id, key, parent, kind, size, created, last_used FROM snapshots";

fn image_row(r: &Row<'_>) -> rusqlite::Result<ImageRecord> {
    Ok(ImageRecord { name: r.get(0)?, manifest: parse_digest(&r.get::<_, String>(1)?)?, created: time(r.get(2)?) })
}

fn snapshot_row(r: &Row<'_>) -> rusqlite::Result<SnapshotRecord> {
    Ok(SnapshotRecord {
        id: r.get::<_, i64>(0)? as u64,
        key: r.get(1)?,
        parent: r.get(2)?,
        kind: SnapshotKind::parse(&r.get::<_, String>(3)?)?,
        size: r.get::<_, i64>(4)? as u64,
        created: time(r.get(5)?),
        last_used: time(r.get(6)?),
    })
}

fn cache_row(r: &Row<'_>) -> rusqlite::Result<CacheRecord> {
    let result: String = r.get(1)?;
    Ok(CacheRecord {
        key: r.get(0)?,
        result: serde_json::from_str(&result)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?,
        created: time(r.get(2)?),
        last_used: time(r.get(3)?),
    })
}

fn collect<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    c.prepare(sql)?.query_map(params, row)?.collect()
}

fn parse_digest(s: &str) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

fn db(source: rusqlite::Error, context: String) -> Error {
    Error::Database { context, source }
}

/// Now in milliseconds since the epoch, the database's time unit.
fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, MetadataStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn images_round_trip() {
        let (_dir, store) = store();
        let a = Digest::of(b"a");
        store.put_image("busybox:latest", &a).unwrap();
        store.put_image("alpine:3", &Digest::of(b"b")).unwrap();
        assert_eq!(store.image("busybox:latest").unwrap().unwrap().manifest, a);
        assert_eq!(
            store.images().unwrap().iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["alpine:3", "busybox:latest"]
        );
        assert!(store.delete_image("alpine:3").unwrap());
        assert!(!store.delete_image("alpine:3").unwrap());
        assert!(store.image("alpine:3").unwrap().is_none());
    }

    #[test]
    fn commits_survive_a_close_that_keeps_the_wal() {
        let (dir, store) = store();
        store.put_image("busybox:latest", &Digest::of(b"a")).unwrap();
        drop(store);
        // No checkpoint on close: the WAL holds the commit, and the next open reads it.
        assert!(dir.path().join("meta.db-wal").exists());
        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.image("busybox:latest").unwrap().unwrap().manifest, Digest::of(b"a"));
    }

    #[test]
    fn snapshot_lifecycle() {
        let (_dir, store) = store();
        let a = store.insert_snapshot("build-1", None, SnapshotKind::Active).unwrap();
        assert!(matches!(store.insert_snapshot("build-1", None, SnapshotKind::Active), Err(Error::SnapshotExists(_))));
        let c = store.commit_snapshot("build-1", "layer-1", 42).unwrap();
        assert_eq!((c.id, c.kind, c.size), (a.id, SnapshotKind::Committed, 42));
        assert!(matches!(store.commit_snapshot("build-1", "x", 0), Err(Error::SnapshotNotFound(_))));
        let child = store.insert_snapshot("build-2", Some("layer-1"), SnapshotKind::Active).unwrap();
        assert!(child.id > c.id);
        assert!(matches!(store.delete_snapshot("layer-1"), Err(Error::SnapshotInUse { .. })));
        store.delete_snapshot("build-2").unwrap();
        store.delete_snapshot("layer-1").unwrap();
        assert!(store.snapshots().unwrap().is_empty());
        // Ids are never reused, so a new snapshot never lands in a directory a dead one may have left.
        assert!(store.insert_snapshot("build-3", None, SnapshotKind::Active).unwrap().id > child.id);
    }

    #[test]
    fn cache_and_refs() {
        let (_dir, store) = store();
        store.put_cache("k1", &serde_json::json!({"snapshot": "layer-1"})).unwrap();
        assert_eq!(store.cache("k1").unwrap().unwrap().result["snapshot"], "layer-1");
        let blob = RefTarget::Blob(Digest::of(b"x"));
        store.add_ref(&cache_owner("k1"), &blob).unwrap();
        store.add_ref(&cache_owner("k1"), &blob).unwrap();
        store.add_ref(&image_owner("busybox"), &RefTarget::Snapshot("layer-1".into())).unwrap();
        assert_eq!(store.refs().unwrap().len(), 2);
        store.delete_cache("k1").unwrap();
        assert_eq!(store.refs().unwrap(), vec![(image_owner("busybox"), RefTarget::Snapshot("layer-1".into()))]);
        assert!(store.caches().unwrap().is_empty());
    }

    #[test]
    fn concurrent_writers_on_separate_connections_all_land() {
        let dir = tempfile::tempdir().unwrap();
        MetadataStore::open(dir.path()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let root = dir.path();
                s.spawn(move || {
                    let store = MetadataStore::open(root).unwrap();
                    for i in 0..50 {
                        store.put_image(&format!("img-{t}-{i}"), &Digest::of(&[t, i])).unwrap();
                        store.images().unwrap();
                    }
                });
            }
        });
        assert_eq!(MetadataStore::open(dir.path()).unwrap().images().unwrap().len(), 200);
    }
}
