//! The runtime runs a process over an image's root filesystem in new Linux namespaces, for RUN steps and
//! `strata run`, without a daemon or another engine.
