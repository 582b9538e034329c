//! Push: upload what the registry lacks (HEAD first; cross-repository mount when possible; one PUT for small
//! blobs, PATCH chunks for big ones, streamed from the content store), then the manifests, then the index.

use std::io::{Seek as _, SeekFrom};

use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_spec::image::ImageManifest;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use strata_snapshotter::{ContentStore, Digest};
use tokio::io::AsyncReadExt as _;

use crate::auth::Scope;
use crate::client::{Repository, expect, header_str, location, manifest_error};
use crate::error::{Error, Result, StoreContext as _};
use crate::manifest::{Manifest, descriptor_digest};
use crate::{Reference, RegistryClient};

/// Read size when streaming a blob from the store to the network.
const READ_BUFFER: usize = 256 << 10;

/// Where a blob upload stands after the request that opened its session.
enum UploadStart {
    /// The registry mounted the blob from another repository: nothing to upload.
    Mounted,
    /// Upload to this session URL, in chunks of at least this many bytes if the registry asks for a minimum.
    Session { url: String, min_chunk: u64 },
}

impl RegistryClient {
    /// Pushes the manifest or index stored under `image` in `store` to `target` (its tag, or by digest) and
    /// returns the pushed digest. Blobs the registry holds are skipped; blobs are mounted from `mount_from`
    /// when it is another repository of the same registry, and uploaded if the registry declines.
    pub async fn push(
        &self,
        store: &ContentStore,
        image: &Digest,
        target: &Reference,
        mount_from: Option<&Reference>,
    ) -> Result<Digest> {
        let mount_from = mount_from
            .filter(|from| from.registry() == target.registry() && from.repository() != target.repository())
            .map(Reference::repository);
        let scope = match mount_from {
            Some(from) => Scope::push(target.repository()).and_pull(from),
            None => Scope::push(target.repository()),
        };
        let repository = self.repository(target.api_host(), target.repository(), scope)?;
        let bytes = store.read_bytes(image).store_context(|| format!("reading manifest {image}"))?;
        let (manifest, media_type) =
            Manifest::parse(&bytes, None).map_err(|reason| manifest_error(&repository, &image.to_string(), reason))?;
        match manifest {
            Manifest::Image(manifest) => self.push_blobs(&repository, store, &manifest, mount_from).await?,
            Manifest::Index(index) => {
                for entry in index.manifests() {
                    let digest = descriptor_digest(entry)
                        .map_err(|reason| manifest_error(&repository, &image.to_string(), reason))?;
                    let child = store.read_bytes(&digest).store_context(|| format!("reading manifest {digest}"))?;
                    let Manifest::Image(manifest) = Manifest::parse(&child, None)
                        .map_err(|reason| manifest_error(&repository, &digest.to_string(), reason))?
                        .0
                    else {
                        return Err(manifest_error(&repository, &digest.to_string(), "an index inside an index"));
                    };
                    self.push_blobs(&repository, store, &manifest, mount_from).await?;
                    let media_type = entry.media_type().to_string();
                    self.put_manifest(&repository, &child, &media_type, &digest.to_string()).await?;
                }
            }
        }
        let tag = target.tag().map_or_else(|| image.to_string(), str::to_owned);
        self.put_manifest(&repository, &bytes, &media_type, &tag).await
    }

    async fn push_blobs(
        &self,
        repository: &Repository,
        store: &ContentStore,
        manifest: &ImageManifest,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let mut blobs = Vec::new();
        for descriptor in std::iter::once(manifest.config()).chain(manifest.layers()) {
            let digest = descriptor_digest(descriptor)
                .map_err(|reason| manifest_error(repository, descriptor.digest().as_ref(), reason))?;
            blobs.push((digest, descriptor.size()));
        }
        futures_util::stream::iter(blobs)
            .map(|(digest, size)| self.push_blob(repository, store, digest, size, mount_from))
            .buffer_unordered(self.max_concurrent_transfers())
            .try_collect()
            .await
    }

    async fn push_blob(
        &self,
        repository: &Repository,
        store: &ContentStore,
        digest: Digest,
        size: u64,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let stored = store.size(&digest).store_context(|| format!("pushing blob {digest}"))?;
        if stored != size {
            return Err(
                repository.verification_error(&digest, format!("stored as {stored} bytes, manifest says {size}"))
            );
        }
        if self.blob_exists(repository, &digest).await? {
            tracing::debug!(%digest, "blob already in the registry");
            return Ok(());
        }
        self.with_retries(is_retryable_upload, || self.upload_blob(repository, store, &digest, size, mount_from)).await
    }

    async fn blob_exists(&self, repository: &Repository, digest: &Digest) -> Result<bool> {
        let url = repository.url(&format!("blobs/{digest}"));
        let response = self.send(&repository.endpoint, &repository.scope, Method::HEAD, &url, Ok).await?;
        let response = expect(response, &[StatusCode::OK, StatusCode::NOT_FOUND]).await?;
        Ok(response.status() == StatusCode::OK)
    }

    /// One upload session from start to commit; any failure abandons it and the caller starts a new one.
    async fn upload_blob(
        &self,
        repository: &Repository,
        store: &ContentStore,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let (mut url, min_chunk) = match self.start_upload(repository, digest, mount_from).await? {
            UploadStart::Mounted => {
                tracing::debug!(%digest, from = mount_from, "blob mounted");
                return Ok(());
            }
            UploadStart::Session { url, min_chunk } => (url, min_chunk),
        };
        let chunk = self.chunk_size().max(min_chunk);
        let mut offset = 0;
        // Small blobs go in the closing PUT itself; big ones in PATCH chunks, then an empty PUT.
        let monolithic = size <= self.chunk_size();
        while !monolithic && offset < size {
            let len = chunk.min(size - offset);
            let response = self
                .send(&repository.endpoint, &repository.scope, Method::PATCH, &url, |r| {
                    Ok(r.header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{offset}-{}", offset + len - 1))
                        .header(CONTENT_LENGTH, len)
                        .body(file_body(store, digest, offset, len)?))
                })
                .await?;
            let response = expect(response, &[StatusCode::ACCEPTED]).await?;
            url = location(repository, &response)?;
            offset += len;
        }
        let put_url = format!("{url}{}digest={digest}", if url.contains('?') { '&' } else { '?' });
        let response = self
            .send(&repository.endpoint, &repository.scope, Method::PUT, &put_url, |r| {
                let r = r.header(CONTENT_TYPE, "application/octet-stream");
                Ok(if monolithic {
                    r.header(CONTENT_LENGTH, size).body(file_body(store, digest, 0, size)?)
                } else {
                    r.header(CONTENT_LENGTH, 0)
                })
            })
            .await?;
        let response = expect(response, &[StatusCode::CREATED]).await?;
        check_announced_digest(repository, &response, digest)
    }

    /// Opens an upload session, or mounts the blob from `mount_from` if the registry agrees (201, not 202).
    async fn start_upload(
        &self,
        repository: &Repository,
        digest: &Digest,
        mount_from: Option<&str>,
    ) -> Result<UploadStart> {
        let mut url = repository.url("blobs/uploads/");
        if let Some(from) = mount_from {
            url = format!("{url}?mount={digest}&from={from}");
        }
        let response = self
            .send(&repository.endpoint, &repository.scope, Method::POST, &url, |r| Ok(r.header(CONTENT_LENGTH, 0)))
            .await?;
        let response = expect(response, &[StatusCode::CREATED, StatusCode::ACCEPTED]).await?;
        if response.status() == StatusCode::CREATED {
            return Ok(UploadStart::Mounted);
        }
        let min_chunk =
            header_str(response.headers(), "oci-chunk-min-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(UploadStart::Session { url: location(repository, &response)?, min_chunk })
    }

    /// PUTs a manifest under `reference` (tag or digest) and checks the digest the registry computed.
    async fn put_manifest(
        &self,
        repository: &Repository,
        bytes: &[u8],
        media_type: &str,
        reference: &str,
    ) -> Result<Digest> {
        let url = repository.url(&format!("manifests/{reference}"));
        let response = self
            .send(&repository.endpoint, &repository.scope, Method::PUT, &url, |r| {
                Ok(r.header(CONTENT_TYPE, media_type).body(bytes.to_vec()))
            })
            .await?;
        let response = expect(response, &[StatusCode::CREATED]).await?;
        let digest = Digest::of(bytes);
        check_announced_digest(repository, &response, &digest)?;
        Ok(digest)
    }
}

/// Upload sessions break in many ways (a reset mid-PATCH leaves the registry's offset unknown and later
/// requests answer 400, 404 or 416): all of them are retried with a new session.
fn is_retryable_upload(error: &Error) -> bool {
    matches!(error, Error::Status { status: 400 | 404 | 416, .. }) || crate::client::is_retryable(error)
}

/// Checks the `Docker-Content-Digest` a registry answers with, when it sends one.
fn check_announced_digest(repository: &Repository, response: &reqwest::Response, digest: &Digest) -> Result<()> {
    match header_str(response.headers(), "docker-content-digest") {
        Some(announced) if announced != digest.to_string() => {
            Err(repository.verification_error(digest, format!("registry stored it as {announced}")))
        }
        _ => Ok(()),
    }
}

/// `len` bytes of a stored blob from `offset`, streamed: a layer never sits in memory whole.
fn file_body(store: &ContentStore, digest: &Digest, offset: u64, len: u64) -> Result<reqwest::Body> {
    let mut file = store.open_blob(digest).store_context(|| format!("opening blob {digest}"))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::store_io(format!("seeking blob {digest} to {offset}"), e))?;
    let reader = tokio::fs::File::from_std(file).take(len);
    Ok(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(reader, READ_BUFFER)))
}
