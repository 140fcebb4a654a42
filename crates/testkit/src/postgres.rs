//! A throwaway PostgreSQL cluster (Debian's `postgresql` package) for tests.

use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{geteuid, User};

use crate::{free_port, skip_live, Component, Ready, TempDir};

const HINT: &str = "apt-get install postgresql, or set RAILBRIDGE_SKIP_LIVE=1";

/// The role and the database the tests use.
const ROLE: &str = "railbridge";

/// A PostgreSQL server of its own: a cluster made by `initdb` in a temporary directory, listening on a free port
/// of 127.0.0.1 (and on a unix socket in that directory), with a role `railbridge` (a password, no superuser) that
/// owns a database `railbridge`. Dropping it stops the server and removes the cluster.
///
/// When the tests run as root, the cluster belongs to the `postgres` system user (PostgreSQL refuses to run as
/// root); otherwise to the current user.
#[derive(Debug)]
pub struct Postgres {
    port: u16,
    password: String,
    data_dir: PathBuf,
    psql: PathBuf,
    // Last: the server, and the temporary directory it lives in.
    server: Component,
}

/// Debian's binaries: `/usr/lib/postgresql/<version>/bin`, the highest version with `initdb` and `postgres`.
fn bin_dir() -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let v = version(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((v, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// A random password (hex, so that it needs no escaping in a URL).
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .unwrap_or_else(|e| panic!("read /dev/urandom: {e}"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `command` with `stdin` as its input and returns its output.
fn run(mut command: Command, stdin: &str) -> Output {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().unwrap_or_else(|e| panic!("run {program}: {e}. {HINT}"));
    let mut input = child.stdin.take().unwrap_or_else(|| panic!("{program}: no stdin"));
    let stdin = stdin.to_owned();
    // Written from a thread so that a large output cannot block the child while we write.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("wait for {program}: {e}"));
    let _ = writer.join();
    output
}

impl Postgres {
    /// Makes a cluster and starts its server (a second or two). `None` when PostgreSQL is not installed and live
    /// tests are skipped ([`skip_live`]); panics when it is missing otherwise, or when it fails to start.
    #[must_use]
    pub fn start() -> Option<Postgres> {
        let bins = bin_dir();
        let psql = bins
            .as_ref()
            .map(|b| b.join("psql"))
            .filter(|p| p.is_file())
            .or_else(|| Some(PathBuf::from("/usr/bin/psql")).filter(|p| p.is_file()));
        let (Some(bins), Some(psql)) = (bins, psql) else {
            if skip_live() {
                return None;
            }
            panic!(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, postgres and psql): {HINT}"
            );
        };

        // PostgreSQL refuses to run as root: then the cluster is the `postgres` system user's.
        let owner = if geteuid().is_root() {
            let user = User::from_name("postgres").ok().flatten().unwrap_or_else(|| {
                panic!("running as root and there is no `postgres` user: {HINT}")
            });
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let as_owner = |program: PathBuf, dir: &Path| -> Command {
            let mut c = Command::new(program);
            // Its own directory as the working directory and home: the test's may not be readable by `postgres`.
            c.current_dir(dir).env("HOME", dir).env("LC_ALL", "C");
            if let Some((uid, gid)) = owner {
                // std drops the supplementary groups too when switching from root.
                c.uid(uid).gid(gid).env("USER", "postgres").env("LOGNAME", "postgres");
            }
            c
        };

        let dir = TempDir::new("postgres");
        let data_dir = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        std::fs::create_dir(&socket_dir)
            .unwrap_or_else(|e| panic!("create {}: {e}", socket_dir.display()));
        let password = random_password();
        let pwfile = dir.write("pwfile", &format!("{password}\n"));
        if let Some((uid, gid)) = owner {
            for path in [dir.path(), socket_dir.as_path(), pwfile.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
            }
        }

        // The superuser `postgres` has the same password as `railbridge`; every connection needs it.
        let mut initdb = as_owner(bins.join("initdb"), dir.path());
        initdb
            .arg("-D")
            .arg(&data_dir)
            .args([
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        let out = run(initdb, "");
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&pwfile);

        let port = free_port();
        let mut server = as_owner(bins.join("postgres"), dir.path());
        server
            .arg("-D")
            .arg(&data_dir)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&socket_dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=50"])
            .args(["-c", "logging_collector=off", "-c", "log_min_messages=warning"]);
        let server = Component::spawn("postgres", server, dir, Ready::Port(port), HINT);

        let pg = Postgres { port, password, data_dir, psql, server };
        // The port accepts connections before the server is done starting up: wait until it answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = pg.run_psql("postgres", "postgres", "SELECT 1");
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres does not answer: {}\nlog:\n{}",
                String::from_utf8_lossy(&out.stderr),
                pg.server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let setup = format!(
            "CREATE ROLE {ROLE} LOGIN PASSWORD '{}';\nCREATE DATABASE {ROLE} OWNER {ROLE};\n",
            pg.password
        );
        let out = pg.run_psql("postgres", "postgres", &setup);
        assert!(
            out.status.success(),
            "creating the role and database failed: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            pg.server.log_text()
        );
        Some(pg)
    }

    /// `postgres://railbridge:<password>@127.0.0.1:<port>/railbridge`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://{ROLE}:{}@127.0.0.1:{}/{ROLE}", self.password, self.port)
    }

    /// The port it listens on (127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password of the `railbridge` role.
    #[must_use]
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The cluster's data directory (removed when the server is dropped).
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server process (the postmaster and its backends, one process group), to freeze and thaw it.
    #[must_use]
    pub fn component(&self) -> &Component {
        &self.server
    }

    /// The server's log so far.
    #[must_use]
    pub fn log_text(&self) -> String {
        self.server.log_text()
    }

    /// Runs `sql` (one or more statements) as the `railbridge` role in the `railbridge` database with `psql`,
    /// stopping at the first error, and returns its output: unaligned, tuples only — one line per row, columns
    /// separated by `|`. Panics with `psql`'s errors when a statement fails.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.run_psql(ROLE, ROLE, sql);
        assert!(
            out.status.success(),
            "psql failed ({}): {}\nSQL:\n{sql}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `psql` over TCP with a password, without the environment's `PG*` variables or a `.psqlrc`.
    fn run_psql(&self, user: &str, database: &str, sql: &str) -> Output {
        let mut c = Command::new(&self.psql);
        c.env_clear();
        for key in ["PATH", "HOME", "TMPDIR"] {
            if let Some(v) = std::env::var_os(key) {
                c.env(key, v);
            }
        }
        c.env("LC_ALL", "C")
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", database, "-f", "-"]);
        run(c, sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn a_cluster_serves_the_railbridge_role_and_is_gone_when_dropped() {
        let started = Instant::now();
        let Some(pg) = Postgres::start() else { return };
        eprintln!("postgres started in {:?}", started.elapsed());
        let port = pg.port();
        assert_eq!(
            pg.url(),
            format!("postgres://railbridge:{}@127.0.0.1:{port}/railbridge", pg.password())
        );
        assert!(pg.data_dir().join("PG_VERSION").is_file());
        TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect: {e}"));

        let out = pg.psql(
            "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);\n\
             INSERT INTO users (email) VALUES ('a@example.com');\n\
             SELECT id, email FROM users;",
        );
        assert_eq!(out, "1|a@example.com\n");
        assert_eq!(pg.psql("SELECT current_user, current_database()"), "railbridge|railbridge\n");
        // The role is not a superuser: what an application gets.
        assert_eq!(pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"), "f\n");

        // The URL works as given (TCP, password).
        let out = Command::new(&pg.psql)
            .env_remove("PGPASSWORD")
            .args(["-X", "-A", "-t", "-c", "SELECT 2"])
            .arg(pg.url())
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n");

        let data_dir = pg.data_dir().to_owned();
        let stopping = Instant::now();
        drop(pg);
        eprintln!("postgres stopped in {:?}", stopping.elapsed());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the port is still open");
        assert!(!data_dir.exists(), "{} is still there", data_dir.display());
    }

    #[test]
    fn a_wrong_password_is_refused_and_a_failing_statement_panics_with_the_error() {
        let Some(pg) = Postgres::start() else { return };
        let wrong = pg.url().replace(pg.password(), "not-the-password");
        let out = Command::new(&pg.psql)
            .env_remove("PGPASSWORD")
            .args(["-X", "-w", "-c", "SELECT 1"])
            .arg(wrong)
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("password authentication failed"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pg.psql("SELECT * FROM no_such_table")
        }));
        let msg = r.err().and_then(|e| e.downcast_ref::<String>().cloned()).unwrap_or_default();
        assert!(msg.contains("no_such_table"), "{msg}");
    }
}
