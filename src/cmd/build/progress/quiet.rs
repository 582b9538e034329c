//! `--progress=quiet`: nothing but errors, which the caller prints.

use strata_solver::Progress;

use super::{BuildProgress, End};

/// Prints nothing.
pub struct Quiet;

impl Progress for Quiet {}

impl BuildProgress for Quiet {
    fn end(&self, _end: End<'_>) {}
}
