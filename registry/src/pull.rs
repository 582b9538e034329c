//! Pull: resolve a reference (mirrors first), pick the platform from an index, and stream config and layers
//! into the content store, several at once, verifying every digest and resuming broken downloads with Range.

use std::io::Write as _;

use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Method, StatusCode};
use strata_snapshotter::{BlobWriter, ContentStore, Digest};

use crate::auth::Scope;
use crate::client::{Repository, expect, is_retryable, manifest_error};
use crate::error::{Error, Result, StoreContext as _};
use crate::manifest::{Manifest, descriptor_digest};
use crate::{Platform, Reference, RegistryClient};

/// What a pull left in the content store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The index the platform manifest was picked from, when the reference named one.
    pub index_digest: Option<Digest>,
    /// The image manifest for the platform.
    pub manifest_digest: Digest,
    /// The parsed image manifest.
    pub manifest: ImageManifest,
    /// The config blob.
    pub config_digest: Digest,
    /// The parsed image config.
    pub config: ImageConfiguration,
}

impl RegistryClient {
    /// Pulls `reference` for `platform` into `store`: mirrors are tried first, then the registry itself.
    pub async fn pull(&self, reference: &Reference, store: &ContentStore, platform: &Platform) -> Result<PulledImage> {
        let mirrors = self.config().host(reference.registry()).mirrors;
        let mut last_error = None;
        for host in mirrors.iter().map(String::as_str).chain([reference.api_host()]) {
            let repository = self.repository(host, reference.repository(), Scope::pull(reference.repository()))?;
            match self.pull_from(&repository, reference, store, platform).await {
                Ok(image) => return Ok(image),
                Err(e) => {
                    tracing::warn!(host, error = %e, "pull failed");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("the registry itself is always tried"))
    }

    async fn pull_from(
        &self,
        repository: &Repository,
        reference: &Reference,
        store: &ContentStore,
        platform: &Platform,
    ) -> Result<PulledImage> {
        let name = reference.manifest_reference();
        let top = self.fetch_manifest(repository, &name).await?;
        let (manifest, _) = Manifest::parse(&top.bytes, top.content_type.as_deref())
            .map_err(|reason| manifest_error(repository, &name, reason))?;
        store_manifest(store, &top.bytes, &top.digest)?;
        let (index_digest, manifest_digest, manifest) = match manifest {
            Manifest::Image(manifest) => (None, top.digest, *manifest),
            Manifest::Index(index) => {
                let entry = index
                    .manifests()
                    .iter()
                    .find(|m| m.platform().as_ref().is_some_and(|p| platform.matches(p)))
                    .ok_or_else(|| manifest_error(repository, &name, format!("no manifest for platform {platform}")))?;
                let digest = descriptor_digest(entry).map_err(|reason| manifest_error(repository, &name, reason))?;
                let child = self.fetch_manifest(repository, &digest.to_string()).await?;
                if child.bytes.len() as u64 != entry.size() {
                    return Err(repository.verification_error(&digest, "manifest size differs from the index's"));
                }
                let Manifest::Image(manifest) = Manifest::parse(&child.bytes, child.content_type.as_deref())
                    .map_err(|reason| manifest_error(repository, &digest.to_string(), reason))?
                    .0
                else {
                    return Err(manifest_error(repository, &digest.to_string(), "an index inside an index"));
                };
                store_manifest(store, &child.bytes, &digest)?;
                (Some(top.digest), digest, *manifest)
            }
        };
        let config_digest =
            descriptor_digest(manifest.config()).map_err(|reason| manifest_error(repository, &name, reason))?;
        let mut blobs = vec![(config_digest.clone(), manifest.config().size())];
        for layer in manifest.layers() {
            let digest = descriptor_digest(layer).map_err(|reason| manifest_error(repository, &name, reason))?;
            blobs.push((digest, layer.size()));
        }
        futures_util::stream::iter(blobs)
            .map(|(digest, size)| self.fetch_blob(repository, store, digest, size))
            .buffer_unordered(self.max_concurrent_transfers())
            .try_collect::<()>()
            .await?;
        let config_bytes =
            store.read_bytes(&config_digest).store_context(|| format!("reading config {config_digest}"))?;
        let config = ImageConfiguration::from_reader(config_bytes.as_slice())
            .map_err(|e| manifest_error(repository, &name, format!("config {config_digest}: {e}")))?;
        Ok(PulledImage { index_digest, manifest_digest, manifest, config_digest, config })
    }

    /// Fetches the image manifest `reference` names (from the registry itself, not mirrors) and its config blob
    /// into `store`, but none of its layers: what reading a build cache needs. An index is refused.
    pub async fn pull_manifest(&self, reference: &Reference, store: &ContentStore) -> Result<(Digest, ImageManifest)> {
        let repository =
            self.repository(reference.api_host(), reference.repository(), Scope::pull(reference.repository()))?;
        let name = reference.manifest_reference();
        let fetched = self.fetch_manifest(&repository, &name).await?;
        let Manifest::Image(manifest) = Manifest::parse(&fetched.bytes, fetched.content_type.as_deref())
            .map_err(|reason| manifest_error(&repository, &name, reason))?
            .0
        else {
            return Err(manifest_error(&repository, &name, "an index, not an image manifest"));
        };
        store_manifest(store, &fetched.bytes, &fetched.digest)?;
        let config =
            descriptor_digest(manifest.config()).map_err(|reason| manifest_error(&repository, &name, reason))?;
        self.fetch_blob(&repository, store, config, manifest.config().size()).await?;
        Ok((fetched.digest, *manifest))
    }

    /// Downloads the blob `digest` of `size` bytes from `reference`'s repository into `store`, verified.
    pub async fn pull_blob(
        &self,
        reference: &Reference,
        store: &ContentStore,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let repository =
            self.repository(reference.api_host(), reference.repository(), Scope::pull(reference.repository()))?;
        self.fetch_blob(&repository, store, digest.clone(), size).await
    }

    /// Downloads one blob into the store unless it is already there, retrying until it verifies.
    async fn fetch_blob(&self, repository: &Repository, store: &ContentStore, digest: Digest, size: u64) -> Result<()> {
        if store.exists(&digest) {
            tracing::debug!(%digest, "blob already present");
            return Ok(());
        }
        self.with_retries(is_retryable, || async {
            let mut writer = store.writer().store_context(|| format!("starting blob {digest}"))?;
            self.download(repository, &digest, size, &mut writer).await?;
            let expected = digest.clone();
            tokio::task::spawn_blocking(move || writer.commit_sized(&expected, size))
                .await
                .expect("commit does not panic")
                .map_err(|e| repository.verification_error(&digest, e.to_string()))
                .map(drop)
        })
        .await
    }

    /// Streams the blob into `writer`; a broken body resumes from where it stopped with a Range request.
    async fn download(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
        writer: &mut BlobWriter,
    ) -> Result<()> {
        let url = repository.url(&format!("blobs/{digest}"));
        let retry = self.retry_policy();
        let mut failures = 0;
        while writer.written() < size {
            let offset = writer.written();
            let response = self
                .send(&repository.endpoint, &repository.scope, Method::GET, &url, |r| {
                    Ok(if offset > 0 { r.header(RANGE, format!("bytes={offset}-")) } else { r })
                })
                .await?;
            let mut response = expect(response, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT]).await?;
            let resumed = response.status() == StatusCode::PARTIAL_CONTENT;
            let range_start = response.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(range_start);
            if offset > 0 && !(resumed && range_start == Some(offset)) {
                // The server ignored the Range: start over rather than append a second copy.
                return Err(repository.verification_error(digest, "server does not resume; downloading again"));
            }
            let broken = loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if writer.written() + chunk.len() as u64 > size {
                            return Err(repository.verification_error(digest, format!("larger than {size} bytes")));
                        }
                        writer.write_all(&chunk).map_err(|e| Error::store_io(format!("writing blob {digest}"), e))?;
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            match broken {
                None if writer.written() < size => {
                    return Err(repository
                        .verification_error(digest, format!("body ended at {} of {size} bytes", writer.written())));
                }
                None => {}
                Some(source) => {
                    failures += 1;
                    if failures >= retry.max_attempts {
                        return Err(Error::Body { url, source });
                    }
                    tracing::debug!(%digest, offset = writer.written(), error = %source, "download broke; resuming");
                    tokio::time::sleep(retry.backoff(failures, None)).await;
                }
            }
        }
        Ok(())
    }
}

/// `bytes=START-END/TOTAL` to START.
fn range_start(content_range: &str) -> Option<u64> {
    content_range.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

fn store_manifest(store: &ContentStore, bytes: &[u8], digest: &Digest) -> Result<()> {
    if store.exists(digest) {
        return Ok(());
    }
    let mut writer = store.writer().store_context(|| format!("storing manifest {digest}"))?;
    writer.write_all(bytes).map_err(|e| Error::store_io(format!("writing blob {digest}"), e))?;
    writer.commit(Some(digest)).store_context(|| format!("storing manifest {digest}")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_range_starts() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2"), None);
    }
}
