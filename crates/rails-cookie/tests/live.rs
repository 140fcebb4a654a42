//! Live round trips with real Rails: cookies we write are read by Rails' own cookie jar
//! (`interop/rails_codec.rb serve`: Rails 6.1.7.10 on the host for the 4.2–7.0 profiles, Rails 7.2.2.2 with msgpack
//! 1.7 in the Debian trixie root for the `rails_7_2_*` ones), and cookies Rails writes now, with fresh random IVs,
//! are read by us. Needs `ruby` with Rails and the trixie root (the README's test command makes both); set
//! `RAILBRIDGE_SKIP_LIVE=1` to skip on a machine without them.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rails_cookie::{escape, unescape, Value};
use serde_json::{json, Value as Json};

use crate::common::{codec_from_config, load, ordered_eq, vector_files};

/// The Ruby oracle as a child process, killed on drop (also when a test panics).
struct RailsOracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Which real Rails answers for a vector profile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rails {
    /// Rails 6.1 on the host's Ruby.
    V6_1,
    /// Rails 7.2 in the trixie root.
    V7_2,
}

impl Rails {
    fn for_profile(profile: &str) -> Rails {
        if profile.starts_with("rails_7_2") {
            Rails::V7_2
        } else {
            Rails::V6_1
        }
    }
}

impl RailsOracle {
    fn start(rails: Rails) -> Option<Self> {
        if testkit::skip_live() {
            return None;
        }
        let root = testkit::workspace_root();
        let mut command = match rails {
            Rails::V6_1 => Command::new("ruby"),
            Rails::V7_2 => {
                assert!(
                    testkit::trixie_root().join(".railbridge-ready").exists(),
                    "the Rails 7.2 root is missing: run interop/trixie/setup.sh as root (./scripts/test does), or set \
                     RAILBRIDGE_SKIP_LIVE=1"
                );
                // run.sh execs down to ruby itself, so killing the child ends the oracle and its mounts.
                let mut c = Command::new(root.join("interop/trixie/run.sh"));
                c.arg("ruby");
                c
            }
        };
        let profile = if rails == Rails::V7_2 { "rails_7_2_json" } else { "rails_6_1_json" };
        let mut child = command
            .arg("interop/rails_codec.rb")
            .args(["serve", "--profile", profile])
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("`ruby` must be installed for the live tests (run ./scripts/test, or set RAILBRIDGE_SKIP_LIVE=1)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut oracle = RailsOracle { child, stdin, stdout };
        assert_eq!(
            oracle.ask(&json!({"op": "ping"}))["ok"],
            true,
            "rails_codec.rb did not answer a ping"
        );
        Some(oracle)
    }

    fn ask(&mut self, request: &Json) -> Json {
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bad answer from rails_codec.rb ({e}): {line:?}"))
    }
}

impl Drop for RailsOracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rails_reads_what_we_write_and_we_read_what_rails_writes() {
    let Some(mut rails_6_1) = RailsOracle::start(Rails::V6_1) else { return };
    let Some(mut rails_7_2) = RailsOracle::start(Rails::V7_2) else { return };
    let mut round_trips = 0;
    let mut round_trips_7_2 = 0;
    for path in vector_files() {
        let doc = load(&path);
        let profile = doc["profile"].as_str().unwrap();
        let rails = match Rails::for_profile(profile) {
            Rails::V6_1 => &mut rails_6_1,
            Rails::V7_2 => &mut rails_7_2,
        };
        let config = &doc["config"];
        let codec = codec_from_config(profile, config);
        for case in doc["cases"].as_array().unwrap() {
            let expected = &case["expected"];
            if expected["ok"] != true || case.get("note").is_some() {
                continue;
            }
            let name = format!("{profile}/{}", case["name"].as_str().unwrap());
            let cookie_name = case["cookie_name"].as_str().unwrap();
            let session = Value::from_tagged_json(&expected["session"]).unwrap();

            // Ours → Rails (a fresh random IV every time).
            let ours = escape(&codec.encode(cookie_name, &session, None).unwrap());
            let answer = rails.ask(&json!({
                "op": "decode", "profile": profile, "config": config, "cookie": ours, "cookie_name": cookie_name,
            }));
            assert_eq!(answer["ok"], true, "{name}: Rails refused our cookie: {answer}");
            assert!(
                ordered_eq(&answer["session"], &expected["session"]),
                "{name}: Rails read {}",
                answer["session"]
            );
            assert_eq!(answer["rewritten"], false, "{name}: Rails wants to rewrite our cookie");

            // Rails → ours.
            let answer = rails.ask(&json!({
                "op": "encode", "profile": profile, "config": config, "session": expected["session"],
                "cookie_name": cookie_name, "expires": null,
            }));
            assert_eq!(answer["ok"], true, "{name}: Rails could not encode: {answer}");
            let theirs = answer["cookie"].as_str().unwrap();
            let decoded = codec
                .decode(cookie_name, &unescape(theirs))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                ordered_eq(&decoded.value.to_tagged_json(), &expected["session"]),
                "{name}: we read {:?}",
                decoded.value
            );
            round_trips += 1;
            if Rails::for_profile(profile) == Rails::V7_2 {
                round_trips_7_2 += 1;
            }
        }
    }
    assert!(round_trips > 200, "only {round_trips} live round trips ran");
    assert!(round_trips_7_2 > 100, "only {round_trips_7_2} live round trips with Rails 7.2 ran");
    eprintln!(
        "live: {round_trips} sessions round-tripped through real Rails in both directions ({round_trips_7_2} with \
         Rails 7.2)"
    );
}

#[test]
fn rails_refuses_our_cookie_under_another_name_or_key() {
    let Some(mut rails) = RailsOracle::start(Rails::V6_1) else { return };
    let doc = load(&crate::common::vectors_dir().join("rails_6_1_json.json"));
    let config = &doc["config"];
    let codec = codec_from_config("rails_6_1_json", config);
    let session = json!({"session_id": "0123456789abcdef0123456789abcdef", "user_id": 1});
    let cookie = escape(
        &codec.encode("_other_session", &Value::from_tagged_json(&session).unwrap(), None).unwrap(),
    );
    let answer = rails.ask(
        &json!({"op": "decode", "config": config, "cookie": cookie, "cookie_name": "_app_session"}),
    );
    assert_eq!(answer["ok"], false, "purpose must bind the cookie name: {answer}");
    let mut other = config.clone();
    other["secret_key_base"] = json!("f".repeat(128));
    let answer = rails.ask(&json!({"op": "decode", "config": other, "cookie": cookie, "cookie_name": "_other_session"}));
    assert_eq!(answer["ok"], false, "another secret must not read it: {answer}");
}
