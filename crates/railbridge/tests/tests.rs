//! Integration tests of the `railbridge` binary.

mod cli;
