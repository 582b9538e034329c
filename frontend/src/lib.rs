//! The Dockerfile frontend: parses a Dockerfile into a syntax tree whose every node carries its source range,
//! expands words the way BuildKit's shell lexer does, and lowers the tree into the build graph of `strata-llb`.

pub mod error;
pub mod instructions;
pub mod lower;
pub mod parser;
pub mod shell;
mod suggest;

pub use error::{Error, Location, SourceFile};
