//! The build graph shared by the frontend (which produces it) and the solver (which runs it): source, exec,
//! file and merge ops, each with a stable canonical encoding and digest.
