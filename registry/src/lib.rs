//! A thin OCI distribution client: references, pull, push, cross-repository mounts and docker-compatible auth,
//! streaming blobs through the content store rather than holding them in memory.
