//! Test-only: starts the real components railbridge's tests run against — the Rails 6.1 + Devise app (Debian
//! bookworm's Ruby), the Rails 7.2 app (Debian trixie's, in the root `interop/trixie/setup.sh` makes), nginx,
//! PostgreSQL (a throwaway cluster of Debian's `postgresql`, see [`Postgres`]), Redis and memcached (empty servers
//! of Debian's `redis-server` and `memcached`, see [`Redis`] and [`Memcached`]) — each on a free loopback port, with
//! its log kept in a temporary directory and printed when the test fails, and stops them by process group when
//! dropped (a chroot'ed Rails is several processes deep).
//!
//! ```no_run
//! let rails = testkit::RailsApp::rails_7_2().env("RAILS_AUTH", "session-key").start();
//! let up = rails.url("/up");
//! # drop(up);
//! ```
//!
//! Set `RAILBRIDGE_SKIP_LIVE=1` to skip the live tests on a machine without Ruby or PostgreSQL (see [`skip_live`]).

// A test kit reports a component that cannot start by failing the test, with the log: panicking is its job.
#![allow(clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

mod kv;
mod postgres;
pub use kv::{Memcached, Redis};
pub use postgres::Postgres;

/// The repository's root.
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the live tests are skipped on purpose (`RAILBRIDGE_SKIP_LIVE=1`). A live test that is not skipped fails
/// when its component cannot start, with a message saying what to install.
#[must_use]
pub fn skip_live() -> bool {
    if std::env::var_os("RAILBRIDGE_SKIP_LIVE").is_some_and(|v| v == "1") {
        eprintln!("RAILBRIDGE_SKIP_LIVE=1: skipping a live test");
        return true;
    }
    false
}

/// A loopback port nobody listens on right now (the OS picks it; a component started on it soon after gets it).
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A temporary directory, removed on drop unless the test is failing (so its logs stay to be read).
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory under the system's temporary directory, named after `tag`, this process and a counter.
    #[must_use]
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("railbridge-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running component: a child process in a process group of its own, its log file, and the URL it serves.
/// Dropping it stops the whole group (TERM, then KILL after 5 s) and, when the test is failing, prints the log.
#[derive(Debug)]
pub struct Component {
    child: Child,
    name: String,
    log: PathBuf,
    url: String,
    /// Whether the test reaped the main process itself (through [`Component::try_wait`]).
    reaped: bool,
    // Kept for the component's lifetime: its log and files live there.
    _dir: TempDir,
}

/// How a component tells it is ready.
enum Ready {
    /// It prints `listening on <url>` on stdout.
    ListeningLine,
    /// It accepts TCP connections on this port.
    Port(u16),
}

impl Component {
    fn spawn(
        name: &str,
        mut command: Command,
        dir: TempDir,
        ready: Ready,
        hint: &str,
    ) -> Component {
        let log = dir.path().join(format!("{}.log", name.replace([' ', '/'], "-")));
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let stdout = match ready {
            Ready::ListeningLine => Stdio::piped(),
            Ready::Port(_) => {
                Stdio::from(log_file.try_clone().unwrap_or_else(|e| panic!("log: {e}")))
            }
        };
        command.stdin(Stdio::null()).stdout(stdout).stderr(log_file).process_group(0);
        let mut child =
            command.spawn().unwrap_or_else(|e| panic!("could not start {name} ({e}). {hint}"));
        let timeout = Duration::from_secs(120);
        let url = match ready {
            Ready::ListeningLine => {
                let stdout = child.stdout.take().unwrap_or_else(|| panic!("{name}: no stdout"));
                let (tx, rx) = mpsc::channel();
                std::thread::spawn(move || {
                    let mut lines = BufReader::new(stdout).lines();
                    for line in lines.by_ref() {
                        let Ok(line) = line else { break };
                        if let Some(url) = line.strip_prefix("listening on ") {
                            let _ = tx.send(url.trim().to_owned());
                            break;
                        }
                    }
                    // Keep draining so the child never blocks on a full pipe.
                    for _ in lines {}
                });
                rx.recv_timeout(timeout).ok()
            }
            Ready::Port(port) => {
                let deadline = Instant::now() + timeout;
                let mut up = None;
                while Instant::now() < deadline {
                    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                        up = Some(format!("http://127.0.0.1:{port}"));
                        break;
                    }
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                up
            }
        };
        let mut component = Component {
            child,
            name: name.to_owned(),
            log,
            url: String::new(),
            reaped: false,
            _dir: dir,
        };
        match url {
            Some(url) => component.url = url,
            None => panic!(
                "{name} did not start within {} s; log ({}):\n{}",
                timeout.as_secs(),
                component.log.display(),
                component.log_text()
            ),
        }
        component
    }

    /// Starts any program that prints `listening on <url>` on stdout once it serves (the railbridge binary, a test's
    /// helper script), with the environment `command` has; `hint` says what to install when it cannot start.
    pub fn start_listening(name: &str, command: Command, hint: &str) -> Component {
        Component::spawn(
            name,
            command,
            TempDir::new(&name.replace(' ', "-")),
            Ready::ListeningLine,
            hint,
        )
    }

    /// Starts a program that listens on `port` (given to it by the caller, see [`free_port`]).
    pub fn start_on_port(name: &str, command: Command, port: u16, hint: &str) -> Component {
        Component::spawn(
            name,
            command,
            TempDir::new(&name.replace(' ', "-")),
            Ready::Port(port),
            hint,
        )
    }

    /// The component's base URL, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// `base_url` + `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }

    /// Everything the component wrote to its log so far.
    #[must_use]
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// The process id of the component's main process (also its process group's id).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        let status = self.child.try_wait();
        if let Ok(Some(_)) = status {
            self.reaped = true;
        }
        status
    }

    /// Whether its process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops its whole process group (SIGSTOP): a server that hangs with its connections open, as one stuck on a
    /// disk or swapped out would — its clients wait rather than being refused. [`Component::thaw`] resumes it.
    pub fn freeze(&self) {
        self.signal_group(Signal::SIGSTOP);
    }

    /// Resumes a frozen component (SIGCONT).
    pub fn thaw(&self) {
        self.signal_group(Signal::SIGCONT);
    }

    /// Signals the process group and every descendant: servers such as PostgreSQL put each backend in a session of
    /// its own, out of the group.
    fn signal_group(&self, signal: Signal) {
        if self.reaped {
            return;
        }
        let Ok(pid) = i32::try_from(self.child.id()) else { return };
        let _ = killpg(Pid::from_raw(pid), signal);
        for child in descendants(pid) {
            let _ = nix::sys::signal::kill(Pid::from_raw(child), signal);
        }
    }

    fn stop(&mut self) {
        // A frozen group would ignore SIGTERM until resumed.
        self.signal_group(Signal::SIGCONT);
        // A leader the test already reaped may have had its pid handed to an unrelated process: signal nothing.
        if self.reaped {
            return;
        }
        let Ok(pid) = i32::try_from(self.child.id()) else { return };
        let group = Pid::from_raw(pid);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // The leader is gone; make sure nothing of its group stays behind.
                let _ = killpg(group, Signal::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Every process descended from `root`, from `/proc` (parents first).
fn descendants(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter_map(|pid| {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    // `pid (comm) state ppid …`: the command may hold spaces and parentheses.
                    let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
                    Some((pid, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found.remove(0);
    found
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- {} log ({}) ---\n{}", self.name, self.log.display(), self.log_text());
        }
    }
}

/// A Ruby program of `interop/` started as a component: the Rails 6.1 + Devise app, the Rails 7.2 app, or a helper
/// script (the User API), with the environment given here and nothing of the developer's.
#[derive(Debug)]
#[must_use]
pub struct RailsApp {
    name: String,
    script: PathBuf,
    trixie: bool,
    env: Vec<(String, String)>,
}

/// Where `interop/trixie/setup.sh` makes the Debian trixie root (`RAILBRIDGE_TRIXIE_ROOT` overrides).
#[must_use]
pub fn trixie_root() -> PathBuf {
    std::env::var_os("RAILBRIDGE_TRIXIE_ROOT")
        .map_or_else(|| PathBuf::from("/var/cache/railbridge/trixie"), PathBuf::from)
}

const HINT_6_1: &str =
    "Install Ruby with Rails 6.1, Devise and puma (Debian bookworm: ruby-rails ruby-devise \
                        ruby-sqlite3 puma), or set RAILBRIDGE_SKIP_LIVE=1 to skip the live tests";
const HINT_7_2: &str =
    "Make the Debian trixie root with Rails 7.2 (as root: interop/trixie/setup.sh), or set \
                        RAILBRIDGE_SKIP_LIVE=1 to skip the live tests";

impl RailsApp {
    /// `interop/app/app.rb`: Rails 6.1 + Devise on the host's Ruby.
    pub fn rails_6_1() -> RailsApp {
        RailsApp::script("rails 6.1 app", workspace_root().join("interop/app/app.rb"))
    }

    /// `interop/app72/app.rb`: Rails 7.2 (no Devise) in the Debian trixie root.
    pub fn rails_7_2() -> RailsApp {
        RailsApp {
            name: "rails 7.2 app".into(),
            script: workspace_root().join("interop/app72/app.rb"),
            trixie: true,
            env: Vec::new(),
        }
    }

    /// Any Ruby script on the host's Ruby (Rails 6.1), such as a test's User API.
    pub fn script(name: &str, script: impl Into<PathBuf>) -> RailsApp {
        RailsApp { name: name.into(), script: script.into(), trixie: false, env: Vec::new() }
    }

    /// Sets an environment variable of the app.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> RailsApp {
        self.env.push((key.to_owned(), value.as_ref().to_string_lossy().into_owned()));
        self
    }

    /// Starts it on a free port (`PORT=0`; the app prints `listening on <url>`) and waits until it listens.
    pub fn start(self) -> Component {
        let dir = TempDir::new(&self.name.replace(' ', "-"));
        let root = workspace_root();
        let mut env: Vec<(String, String)> = vec![("PORT".into(), "0".into())];
        env.extend(self.env);
        let (command, hint) = if self.trixie {
            let ready = trixie_root().join(".railbridge-ready");
            assert!(ready.exists(), "no Rails 7.2 root at {}. {HINT_7_2}", trixie_root().display());
            // run.sh starts the program with an empty environment inside the root: the variables go as arguments.
            let mut c = Command::new(root.join("interop/trixie/run.sh"));
            c.arg("env");
            for (k, v) in &env {
                c.arg(format!("{k}={v}"));
            }
            c.arg("ruby").arg(&self.script);
            (c, HINT_7_2)
        } else {
            let mut c = Command::new("ruby");
            c.arg(&self.script).env_clear();
            for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
                if let Some(v) = std::env::var_os(key) {
                    c.env(key, v);
                }
            }
            c.envs(env);
            (c, HINT_6_1)
        };
        let mut command = command;
        command.current_dir(&root);
        Component::spawn(&self.name, command, dir, Ready::ListeningLine, hint)
    }
}

/// A Debian package's program: its path, or `None` when it is missing and live tests are skipped (otherwise a
/// missing install fails the test, saying what to install).
pub(crate) fn program(name: &str, hint: &str) -> Option<String> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let path = format!("{dir}/{name}");
        if Path::new(&path).exists() {
            return Some(path);
        }
    }
    if skip_live() {
        return None;
    }
    panic!("{name} is not installed ({hint}, or set RAILBRIDGE_SKIP_LIVE=1)");
}

/// Debian's nginx (`nginx-light`) as a non-daemon child with a temporary prefix.
#[derive(Debug)]
pub struct Nginx;

impl Nginx {
    /// Starts nginx with `server_body` (the inside of a `server { … }` block; `{port}` is replaced with its port)
    /// as its only server, listening on 127.0.0.1. `None` when nginx is missing and live tests are skipped.
    #[must_use]
    pub fn start(server_body: &str) -> Option<Component> {
        let bin = program("nginx", "apt-get install nginx-light")?;
        let dir = TempDir::new("nginx");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/nginx.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n{}\n  }}\n}}\n",
            server_body.replace("{port}", &port.to_string())
        );
        let conf_path = dir.write("nginx.conf", &conf);
        let mut c = Command::new(bin);
        c.arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("nginx.log"))
            .arg("-c")
            .arg(conf_path);
        Some(Component::spawn("nginx", c, dir, Ready::Port(port), "install nginx-light"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_is_stopped_with_its_whole_process_group() {
        // A shell that starts a grandchild listening on a port: dropping the component must stop both.
        let port = free_port();
        let script = format!(
            "python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
             s.bind((\"127.0.0.1\",{port})); s.listen(); time.sleep(60)' & wait"
        );
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        let component =
            Component::spawn("sleeper", c, TempDir::new("kit"), Ready::Port(port), "needs python3");
        assert_eq!(component.port(), port);
        drop(component);
        std::thread::sleep(Duration::from_millis(200));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the grandchild still listens");
    }

    #[test]
    fn a_component_that_never_listens_fails_with_its_log() {
        let r = std::panic::catch_unwind(|| {
            let mut c = Command::new("sh");
            c.arg("-c").arg("echo boot failed >&2; exit 3");
            Component::spawn("broken", c, TempDir::new("kit"), Ready::Port(free_port()), "hint")
        });
        let msg = r.err().and_then(|e| e.downcast_ref::<String>().cloned()).unwrap_or_default();
        assert!(msg.contains("boot failed"), "{msg}");
    }
}
