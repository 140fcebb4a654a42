//! Redis and memcached servers of their own for tests (Debian's `redis-server` and `memcached`): a fresh, empty
//! server on a free port of 127.0.0.1, nothing persisted, stopped by process group when dropped.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::{free_port, program, Component};

/// A Redis server: no persistence, no protected mode, on 127.0.0.1 only.
#[derive(Debug)]
pub struct Redis {
    server: Component,
}

impl Redis {
    /// Starts one; `None` when `redis-server` is missing and live tests are skipped (otherwise a missing install
    /// fails the test with what to install).
    #[must_use]
    pub fn start() -> Option<Redis> {
        let bin = program("redis-server", "apt-get install redis-server")?;
        let port = free_port();
        let mut c = Command::new(bin);
        c.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"]);
        let server = Component::start_on_port("redis", c, port, "apt-get install redis-server");
        Some(Redis { server })
    }

    /// `redis://127.0.0.1:<port>/0`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.server.port())
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The server process, to freeze and thaw it.
    #[must_use]
    pub fn component(&self) -> &Component {
        &self.server
    }

    /// Sends one command (its words, as `redis-cli` would) and returns the raw RESP reply — for tests that look at
    /// what a store wrote.
    pub fn command(&self, words: &[&[u8]]) -> Vec<u8> {
        let mut request = format!("*{}\r\n", words.len()).into_bytes();
        for w in words {
            request.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
            request.extend_from_slice(w);
            request.extend_from_slice(b"\r\n");
        }
        exchange(self.port(), &request, resp_complete)
    }
}

/// A memcached server: 64 MiB, on 127.0.0.1 only.
#[derive(Debug)]
pub struct Memcached {
    server: Component,
}

impl Memcached {
    /// Starts one; `None` when `memcached` is missing and live tests are skipped.
    #[must_use]
    pub fn start() -> Option<Memcached> {
        let bin = program("memcached", "apt-get install memcached")?;
        let port = free_port();
        let mut c = Command::new(bin);
        c.args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0", "-m", "64"]);
        // memcached refuses to run as root without a user to switch to.
        if nix::unistd::geteuid().is_root() {
            c.args(["-u", "nobody"]);
        }
        let server = Component::start_on_port("memcached", c, port, "apt-get install memcached");
        Some(Memcached { server })
    }

    /// `memcached://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("memcached://127.0.0.1:{}", self.server.port())
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Sends one text-protocol line (`get key`, `version`, …) and returns the reply up to its end line.
    pub fn command(&self, line: &str) -> Vec<u8> {
        let request = format!("{line}\r\n").into_bytes();
        exchange(self.port(), &request, |reply| {
            [
                &b"END\r\n"[..],
                b"STORED\r\n",
                b"DELETED\r\n",
                b"NOT_FOUND\r\n",
                b"ERROR\r\n",
                b"OK\r\n",
            ]
            .iter()
            .any(|end| reply.ends_with(end))
                || (reply.starts_with(b"VERSION ") && reply.ends_with(b"\r\n"))
        })
    }
}

/// Writes `request` and reads until `done` says the reply is whole (5 s at most).
fn exchange(port: u16, request: &[u8], done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect {port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    stream.write_all(request).unwrap_or_else(|e| panic!("write: {e}"));
    let mut reader = BufReader::new(stream);
    let mut reply = Vec::new();
    while !done(&reply) {
        let n = reader.read_until(b'\n', &mut reply).unwrap_or_else(|e| panic!("read: {e}"));
        if n == 0 {
            break;
        }
    }
    reply
}

/// Whether `reply` holds one whole RESP value (simple strings, errors, integers, bulk strings, arrays of those).
fn resp_complete(reply: &[u8]) -> bool {
    fn value(b: &[u8]) -> Option<usize> {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let (kind, head) = (b.first()?, std::str::from_utf8(&b[1..line_end]).ok()?);
        let after = line_end + 2;
        match kind {
            b'+' | b'-' | b':' => Some(after),
            b'$' => {
                let n: i64 = head.parse().ok()?;
                if n < 0 {
                    return Some(after);
                }
                let end = after + usize::try_from(n).ok()? + 2;
                (b.len() >= end).then_some(end)
            }
            b'*' => {
                let n: i64 = head.parse().ok()?;
                let mut at = after;
                for _ in 0..n.max(0) {
                    at += value(&b[at..])?;
                }
                Some(at)
            }
            _ => None,
        }
    }
    value(reply).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_answers_and_is_gone_after_drop() {
        let Some(redis) = Redis::start() else { return };
        assert_eq!(redis.command(&[b"SET", b"k", b"v\r\nx"]), b"+OK\r\n");
        assert_eq!(redis.command(&[b"GET", b"k"]), b"$4\r\nv\r\nx\r\n");
        assert_eq!(redis.command(&[b"GET", b"nope"]), b"$-1\r\n");
        assert!(redis.url().starts_with("redis://127.0.0.1:"));
        let port = redis.port();
        drop(redis);
        std::thread::sleep(Duration::from_millis(200));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn memcached_answers_and_is_gone_after_drop() {
        let Some(mc) = Memcached::start() else { return };
        assert_eq!(mc.command("set k 0 0 1\r\nv"), b"STORED\r\n");
        assert_eq!(mc.command("get k"), b"VALUE k 0 1\r\nv\r\nEND\r\n");
        assert_eq!(mc.command("get nope"), b"END\r\n");
        let port = mc.port();
        drop(mc);
        std::thread::sleep(Duration::from_millis(200));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn resp_replies_are_read_whole() {
        assert!(resp_complete(b"+OK\r\n"));
        assert!(!resp_complete(b"$5\r\nab"));
        assert!(resp_complete(b"*2\r\n$1\r\na\r\n:3\r\n"));
        assert!(!resp_complete(b"*2\r\n$1\r\na\r\n"));
    }
}
