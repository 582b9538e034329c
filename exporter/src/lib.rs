//! The exporter assembles OCI images from solved builds and writes them as an OCI layout, a `docker load`
//! tarball, a plain directory or tar, or pushes them to a registry.
