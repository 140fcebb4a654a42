//! The `railbridge` binary as a library, so its tests can drive it: the CLI (`railbridge cookie decode|encode`) and
//! the identity gateway (`railbridge serve`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cli;
