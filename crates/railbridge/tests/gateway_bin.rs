//! The `railbridge serve` binary itself: the committed default configuration, `--check`, SIGHUP reload and
//! SIGTERM shutdown.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::*;

const ENV_VARS: [&str; 10] = [
    "SECRET_KEY_BASE",
    "SECRET_KEY_BASE_FILE",
    "SESSION_KEY",
    "RAILS_VERSION",
    "RAILBRIDGE_LISTEN",
    "RAILBRIDGE_UPSTREAM",
    "RAILBRIDGE_PUBLIC_PATHS",
    "RAILBRIDGE_CONFIG",
    "RAILBRIDGE_JWT_KEY_FILE",
    "PORT",
];

fn railbridge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_railbridge"));
    for v in ENV_VARS {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "warn");
    c
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {signal} {pid}");
}

#[test]
fn the_default_config_checks_out_without_any_environment() {
    let out =
        railbridge().args(["serve", "--check"]).current_dir(std::env::temp_dir()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("listen 127.0.0.1:8080"), "{stdout}");
    assert!(stdout.contains("SECRET_KEY_BASE is not set"), "{stdout}");
}

#[test]
fn invalid_configuration_names_the_field_and_exits_2() {
    let dir = TempDir::new("bin-bad");
    let path = dir.write("bad.toml", "[[route]]\nprefix = \"/api\"\nupstream = \"ftp://x\"\n");
    let out = railbridge().args(["serve", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("route[0].upstream"), "{stderr}");
    let out = railbridge().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(!help.to_ascii_lowercase().contains("secret_key_base="), "no secrets in --help");
}

#[test]
fn check_names_the_login_source_and_reads_the_sessions_table() {
    let dir = TempDir::new("bin-check-db");
    let run = |env: &[(&str, &str)]| {
        let mut c = railbridge();
        c.args(["serve", "--check"]).current_dir(&dir.0).env("SECRET_KEY_BASE", SKB);
        for var in ["RAILS_AUTH", "DATABASE_URL", "RAILS_AUTH_SESSION_KEY"] {
            c.env_remove(var);
        }
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("login: devise (Warden scope user)"), "{out}");
    let (code, out) = run(&[("RAILS_AUTH", "session-key")]);
    assert_eq!((code, out.contains("login: session-key (user_id)")), (Some(0), true), "{out}");

    // A database without the table, then with it.
    let db = dir.0.join("app.sqlite3");
    let url = format!("sqlite3:{}", db.display());
    let sqlite = |sql: &str| {
        let ok = Command::new("python3")
            .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
            .arg(&db)
            .arg(sql)
            .status()
            .unwrap()
            .success();
        assert!(ok, "python3 sqlite3 ran {sql}");
    };
    sqlite("CREATE TABLE users (id INTEGER PRIMARY KEY)");
    let (code, out) = run(&[("RAILS_AUTH", "rails-authentication"), ("DATABASE_URL", &url)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("login: rails-authentication") && out.contains("database: not readable"),
        "{out}"
    );
    sqlite("CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL)");
    let (code, out) = run(&[("RAILS_AUTH", "rails-authentication"), ("DATABASE_URL", &url)]);
    assert_eq!((code, out.contains("database: ok")), (Some(0), true), "{out}");
}

#[tokio::test]
async fn sighup_reloads_and_sigterm_drains() {
    let echo = echo().await;
    let dir = TempDir::new("bin-reload");
    let config = |policy: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[log]\naccess_log = false\n[rails]\nsession_key = \"{COOKIE}\"\n\
             [[route]]\nprefix = \"/api\"\nupstream = \"http://{}\"\npolicy = \"{policy}\"\n",
            echo.addr
        )
    };
    let path = dir.write("railbridge.toml", &config("signed-in"));
    let mut cmd = railbridge();
    cmd.args(["serve", "--config"]).arg(&path).stdout(Stdio::piped());
    let proc = Component::start_listening("railbridge serve", cmd, "the binary should start");
    assert_eq!(get(&proc.url("/_railbridge/health"), None).await.status, 200);
    assert_eq!(get(&proc.url("/api/x"), None).await.status, 401, "no secret: nobody is signed in");

    std::fs::write(&path, config("public")).unwrap();
    kill(proc.pid(), "-HUP");
    let mut status = 0;
    for _ in 0..50 {
        status = get(&proc.url("/api/x"), None).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "SIGHUP reloaded the route table");

    // A broken file on SIGHUP keeps the running configuration.
    std::fs::write(&path, "[[route]]\nprefix = 1\n").unwrap();
    kill(proc.pid(), "-HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&proc.url("/api/x"), None).await.status, 200);

    let url = proc.url("/api/slow?ms=700");
    let in_flight = tokio::spawn(async move { get(&url, None).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut proc = proc;
    kill(proc.pid(), "-TERM");
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request was drained");
    let mut exited = None;
    for _ in 0..50 {
        if let Some(s) = proc.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exited = exited.expect("exited after SIGTERM");
    assert!(exited.success(), "{exited:?}\n{}", proc.log_text());
}
