//! BuildKit's shell-word lexer: quote removal, escapes, `$VAR`/`${VAR...}` expansion and word splitting.

mod env;
mod lexer;
mod pattern;

pub use env::{Env, EnvMap};
pub use lexer::{Expanded, Lexer};
