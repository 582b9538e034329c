//! `ADD <url>`: the file is streamed into a new snapshot while hashed with sha256 (never held in memory), at
//! `/<filename>` with mode 0600 and the mtime of `Last-Modified` (else the Unix epoch), as BuildKit's HTTP
//! source saves it (source/http/source.go, `save`).

use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strata_llb::urls::redact_credentials;
use strata_snapshotter::{MetadataStore, Snapshotter};
use tokio::io::AsyncWriteExt;

use super::Keyed;
use crate::error::{Error, IoContext, Result, StoreContext};
use crate::snapshot::ActiveTree;

/// BuildKit's mode for downloaded files.
const MODE: u32 = 0o600;

/// One URL to download.
pub(crate) struct HttpSource<'a> {
    url: &'a str,
    checksum: Option<&'a str>,
    filename: String,
}

/// A finished download: the snapshot holding the file and what the key needs.
pub(crate) struct Download {
    /// The snapshot with the file at its root.
    pub(crate) tree: ActiveTree,
    /// `sha256:<hex>` of the contents.
    pub(crate) digest: String,
    /// The `Last-Modified` header as sent, if any.
    pub(crate) last_modified: Option<String>,
    /// The `ETag` header as sent, if any.
    etag: Option<String>,
}

/// What the last download of a URL (without checksum) was, so an unchanged file is not downloaded again:
/// the server's ETag, asked back with `If-None-Match` as BuildKit does, and the digest it stood for.
#[derive(Debug, Serialize, Deserialize)]
struct Validator {
    etag: String,
    digest: String,
    last_modified: Option<String>,
}

impl<'a> HttpSource<'a> {
    /// A source for `url`; the checksum must be `sha256:<64 hex>`.
    pub(crate) fn new(url: &'a str, checksum: Option<&'a str>, filename: Option<&str>) -> Result<Self> {
        if let Some(checksum) = checksum
            && checksum.parse::<strata_snapshotter::Digest>().is_err()
        {
            return Err(Error::Invalid {
                what: "checksum",
                value: checksum.to_owned(),
                reason: "expected sha256:<64 lowercase hex digits>".into(),
            });
        }
        Ok(Self { url, checksum, filename: safe_file_name(filename.unwrap_or_default()) })
    }

    /// With a checksum the key is the checksum, so a hit downloads nothing; without one, the content's
    /// digest and `Last-Modified`: a changed remote file misses, an unchanged one hits. A file whose ETag the
    /// server confirms unchanged (304) keeps the digest recorded with it and is not downloaded again.
    pub(crate) async fn key(&self, snapshotter: &Arc<dyn Snapshotter>, metadata: &MetadataStore) -> Result<Keyed> {
        let mut part = format!("http\0{}\0{:o}\0", self.filename, MODE);
        if let Some(checksum) = self.checksum {
            part.push_str(checksum);
            return Ok(Keyed { part: part.into_bytes(), fetched: None, resolved: None });
        }
        let known = self.validator(metadata)?;
        let (digest, last_modified, fetched) =
            match self.fetch(snapshotter, known.as_ref().map(|k| k.etag.as_str())).await? {
                None => {
                    let known = known.expect("only a known ETag is revalidated");
                    (known.digest, known.last_modified, None)
                }
                Some(download) => {
                    self.remember(metadata, &download)?;
                    (download.digest, download.last_modified, Some(download.tree))
                }
            };
        part.push_str(&digest);
        part.push('\0');
        part.push_str(last_modified.as_deref().unwrap_or_default());
        Ok(Keyed { part: part.into_bytes(), fetched, resolved: Some(digest) })
    }

    /// Downloads the file into a new snapshot, checking the pinned checksum and, when keying saw the file
    /// (`keyed`, its digest), that it has not changed since.
    pub(crate) async fn download(&self, snapshotter: &Arc<dyn Snapshotter>, keyed: Option<&str>) -> Result<ActiveTree> {
        let download = self.fetch(snapshotter, None).await?.expect("an unconditional GET is never 304");
        match keyed {
            Some(digest) if digest != download.digest => Err(Error::Remote {
                url: redact_credentials(self.url),
                reason: format!("changed during the build: {digest} when keyed, {} now", download.digest),
            }),
            _ => Ok(download.tree),
        }
    }

    /// The validator recorded by the last download of this URL and file name, if any.
    fn validator(&self, metadata: &MetadataStore) -> Result<Option<Validator>> {
        let key = self.validator_key();
        let record = metadata.cache(&key).store_context(|| format!("reading {key}"))?;
        Ok(record.and_then(|r| serde_json::from_value(r.result).ok()))
    }

    /// Records the download's ETag (if the server sent one) for the next build.
    fn remember(&self, metadata: &MetadataStore, download: &Download) -> Result<()> {
        let Some(etag) = &download.etag else { return Ok(()) };
        let validator = Validator {
            etag: etag.clone(),
            digest: download.digest.clone(),
            last_modified: download.last_modified.clone(),
        };
        let key = self.validator_key();
        let value = serde_json::to_value(&validator).expect("a validator serialises");
        metadata.put_cache(&key, &value).store_context(|| format!("recording {key}"))
    }

    /// Where the validator lives in the metadata store; the URL is hashed, as it may hold credentials.
    fn validator_key(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.url.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.filename.as_bytes());
        format!("http-etag/{}", hasher.finalize().to_hex())
    }

    /// GETs the file into a new snapshot; with `if_none_match`, `None` when the server answers 304.
    async fn fetch(&self, snapshotter: &Arc<dyn Snapshotter>, if_none_match: Option<&str>) -> Result<Option<Download>> {
        let url = redact_credentials(self.url);
        let remote = |reason: String| Error::Remote { url: url.clone(), reason };
        let mut request = client()?.get(self.url);
        if let Some(etag) = if_none_match {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(|e| remote(error_chain(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED && if_none_match.is_some() {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(remote(format!("the server answered {status}")));
        }
        let header = |name| response.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok());
        let etag = header(reqwest::header::ETAG).map(str::to_owned);
        let last_modified = header(reqwest::header::LAST_MODIFIED).map(str::to_owned);
        let (tree, dir) = tokio::task::block_in_place(|| -> Result<_> {
            let mut tree = ActiveTree::prepare(snapshotter, None)?;
            let dir = tree.mount()?;
            Ok((tree, dir))
        })?;
        let path = dir.join(&self.filename);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&path)
            .io_context(|| format!("creating {}", path.display()))?;
        let mut file = tokio::fs::File::from_std(file);
        let mut hasher = Sha256::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| remote(format!("reading: {}", error_chain(&e))))? {
            hasher.update(&chunk);
            file.write_all(&chunk).await.io_context(|| format!("writing {}", path.display()))?;
        }
        file.flush().await.io_context(|| format!("writing {}", path.display()))?;
        let file = file.into_std().await;
        // The umask may have narrowed the mode at creation.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(MODE))
            .io_context(|| format!("setting the mode of {}", path.display()))?;
        let mtime = last_modified.as_deref().and_then(parse_http_date).unwrap_or(UNIX_EPOCH);
        file.set_times(std::fs::FileTimes::new().set_modified(mtime).set_accessed(mtime))
            .io_context(|| format!("setting the mtime of {}", path.display()))?;
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        if let Some(expected) = self.checksum.filter(|expected| **expected != digest) {
            return Err(Error::ChecksumMismatch { url, expected: expected.to_owned(), actual: digest });
        }
        Ok(Some(Download { tree, digest, last_modified, etag }))
    }
}

/// One HTTP client for every download (connection reuse); proxies come from the usual environment variables.
fn client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    // reqwest is built without a default rustls provider; another part of the process may have set one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(300))
        .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Remote { url: "(http client)".into(), reason: error_chain(&e) })?;
    Ok(CLIENT.get_or_init(|| client))
}

/// An error with its causes, which say what actually failed ("connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// A file name that stays one path component, as BuildKit's `SafeFileName`; empty becomes `__unnamed__`.
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or_default();
    match base {
        "" | "." | ".." => "__unnamed__".to_owned(),
        base => base.to_owned(),
    }
}

/// An HTTP date in the preferred IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), which servers send.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut words = text.split_whitespace();
    let (_weekday, day, month, year, time, zone) =
        (words.next()?, words.next()?, words.next()?, words.next()?, words.next()?, words.next()?);
    if zone != "GMT" || words.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let at = |s: &str| parse_http_date(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(at("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(at("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(at("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 CET"), None);
    }

    #[test]
    fn file_names_stay_one_component() {
        assert_eq!(safe_file_name("a.tar.gz"), "a.tar.gz");
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name(".."), "__unnamed__");
        assert_eq!(safe_file_name(""), "__unnamed__");
    }

    #[test]
    fn checksums_must_be_sha256() {
        assert!(HttpSource::new("http://x/f", Some("md5:abc"), None).is_err());
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(HttpSource::new("http://x/f", Some(&good), None).is_ok());
    }
}
