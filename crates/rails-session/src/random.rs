//! Randomness from the operating system (ring's `SystemRandom`), for session ids, CSRF tokens and pads.

use ring::rand::{SecureRandom as _, SystemRandom};

/// `N` random bytes. The OS generator does not fail on the platforms ring supports; if it ever did, serving a
/// predictable id or token would be worse than stopping, so this aborts the request's task with a panic.
#[allow(clippy::panic)]
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if SystemRandom::new().fill(&mut out).is_err() {
        panic!("the operating system's random number generator failed");
    }
    out
}
