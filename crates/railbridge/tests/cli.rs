//! `railbridge cookie decode|encode`, driven as a user would: stdin, stdout, stderr, exit code.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;

const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

pub(crate) fn vector(profile: &str, case: &str) -> Json {
    let path =
        format!("{}/../rails-cookie/tests/vectors/{profile}.json", env!("CARGO_MANIFEST_DIR"));
    let doc: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["cases"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap().clone()
}

pub(crate) fn railbridge(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_railbridge"));
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A clean environment: only what the test gives (plus PATH), so a developer's RAILS_VERSION cannot leak in.
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // A command that exits without reading stdin (`--help`, a config error) closes the pipe: not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn decodes_a_rails_cookie_to_json() {
    let case = vector("rails_6_1_json", "devise_login");
    let out = railbridge(
        &["cookie", "decode", "--rails", "6.1"],
        case["cookie"].as_str().unwrap(),
        &[("SECRET_KEY_BASE", SKB)],
    );
    let json: Json = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(json, case["expected"]["session"]);
}

#[test]
fn accepts_a_whole_cookie_pair_and_env_configuration() {
    let case = vector("rails_7_0_json", "devise_login");
    let input = format!("_app_session={}\n", case["cookie"].as_str().unwrap());
    let env = [("SECRET_KEY_BASE", SKB), ("RAILS_VERSION", "7.0"), ("SESSION_KEY", "_app_session")];
    let json: Json =
        serde_json::from_str(&ok(&railbridge(&["cookie", "decode"], &input, &env))).unwrap();
    assert_eq!(json, case["expected"]["session"]);
}

#[test]
fn refusals_exit_1_with_one_line_naming_the_reason() {
    let env = [("SECRET_KEY_BASE", SKB)];
    for (profile, case, word) in [
        ("rails_6_1_json", "tampered_tag", "invalid_signature"),
        ("rails_6_1_json", "wrong_purpose", "purpose"),
        ("rails_6_1_json", "expired", "expired"),
        ("rails_6_1_json", "no_separators", "malformed"),
    ] {
        let c = vector(profile, case);
        let out = railbridge(
            &["cookie", "decode", "--at", "2026-01-01T00:00:00Z"],
            c["cookie"].as_str().unwrap(),
            &env,
        );
        assert_eq!(out.status.code(), Some(1), "{case}");
        assert!(out.stdout.is_empty(), "{case}: nothing on stdout");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{case}: {stderr}");
        assert!(stderr.starts_with(&format!("railbridge: {word}: ")), "{case}: {stderr}");
    }
    let out = railbridge(&["cookie", "decode"], "", &env);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_secret_is_a_config_error_and_help_shows_no_secret() {
    let out = railbridge(&["cookie", "decode"], "x", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SECRET_KEY_BASE is not set"));
    let help = railbridge(&["cookie", "decode", "--help"], "", &[("SECRET_KEY_BASE", SKB)]);
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.contains("--accept-rails") && !text.contains(SKB), "{text}");
}

#[test]
fn encode_reproduces_rails_bytes_with_the_same_iv() {
    // Spec vector T3: the same session and IV give Rails' exact cookie.
    let case = vector("rails_6_1_json", "spec_t3");
    let session = case["expected"]["session"].to_string();
    let args =
        ["cookie", "encode", "--rails", "6.1", "--dangerous-fixed-iv", "000102030405060708090a0b"];
    let out = ok(&railbridge(&args, &session, &[("SECRET_KEY_BASE", SKB)]));
    assert_eq!(out.trim(), case["cookie"].as_str().unwrap());
}

#[test]
fn marshal_session_round_trips_through_the_cli() {
    let case = vector("rails_6_1_marshal", "symbols");
    let env = [("SECRET_KEY_BASE", SKB)];
    let flags = ["--rails", "6.1", "--serializer", "marshal"];
    let decoded = ok(&railbridge(
        &[&["cookie", "decode"][..], &flags].concat(),
        case["cookie"].as_str().unwrap(),
        &env,
    ));
    let cookie = ok(&railbridge(&[&["cookie", "encode"][..], &flags].concat(), &decoded, &env));
    let again = ok(&railbridge(&[&["cookie", "decode"][..], &flags].concat(), cookie.trim(), &env));
    assert_eq!(decoded, again);
    let json: Json = serde_json::from_str(&decoded).unwrap();
    assert_eq!(json, case["expected"]["session"]);
}

#[test]
fn accept_rails_reads_older_cookies_and_reports_the_rewrite() {
    let case = vector("rails_4_2_json", "devise_login");
    let args = ["cookie", "decode", "--rails", "7.0", "--accept-rails", "4.2", "--with-rewrite"];
    let out: Json = serde_json::from_str(&ok(&railbridge(
        &args,
        case["cookie"].as_str().unwrap(),
        &[("SECRET_KEY_BASE", SKB)],
    )))
    .unwrap();
    assert_eq!(out["session"], case["expected"]["session"]);
    assert_eq!(out["rewrite"], true);
    let plain = railbridge(
        &["cookie", "decode", "--rails", "7.0"],
        case["cookie"].as_str().unwrap(),
        &[("SECRET_KEY_BASE", SKB)],
    );
    assert_eq!(plain.status.code(), Some(1));
}

#[test]
fn options_override_the_preset_under_rails_names() {
    let case = vector("custom_salts_cbc", "devise_login");
    let args = [
        "cookie",
        "decode",
        "--rails",
        "6.1",
        "--cipher",
        "aes-256-cbc",
        "--encrypted-cookie-salt",
        "my encrypted salt",
        "--encrypted-signed-cookie-salt",
        "my signed encrypted salt",
    ];
    let json: Json = serde_json::from_str(&ok(&railbridge(
        &args,
        case["cookie"].as_str().unwrap(),
        &[("SECRET_KEY_BASE", SKB)],
    )))
    .unwrap();
    assert_eq!(json, case["expected"]["session"]);
    let signed = vector("signed_sha256_digest", "user_pref");
    let args = [
        "cookie",
        "decode",
        "--signed",
        "--signed-cookie-digest",
        "sha256",
        "--no-metadata",
        "--cookie-name",
        "user_pref",
    ];
    let out = railbridge(&args, signed["cookie"].as_str().unwrap(), &[("SECRET_KEY_BASE", SKB)]);
    let json: Json = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(json, signed["expected"]["session"]);
}

#[test]
fn encode_with_expiry_writes_the_envelope_and_bad_input_is_refused() {
    let env = [("SECRET_KEY_BASE", SKB)];
    let cookie = ok(&railbridge(&["cookie", "encode", "--expires-in", "60"], r#"{"a":1}"#, &env));
    let back = ok(&railbridge(&["cookie", "decode"], cookie.trim(), &env));
    assert_eq!(back.trim(), r#"{"a":1}"#);
    let expired = ok(&railbridge(
        &["cookie", "encode", "--expires-at", "2020-01-01T00:00:00Z"],
        r#"{"a":1}"#,
        &env,
    ));
    let out = railbridge(&["cookie", "decode"], expired.trim(), &env);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("railbridge: expired"));
    for bad in ["not json", r#"{"$symbl":"x"}"#] {
        let out = railbridge(&["cookie", "encode"], bad, &env);
        assert_eq!(out.status.code(), Some(1), "{bad}");
    }
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(5000));
    let out = railbridge(&["cookie", "encode"], &big, &env);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("railbridge: overflow"));
}

#[test]
fn integers_beyond_64_bits_stay_integers_both_ways() {
    let env = [("SECRET_KEY_BASE", SKB)];
    let session = r#"{"session_id":"0123456789abcdef0123456789abcdef","huge":18446744073709551617,"neg":-123456789012345678901234567890,"f":1.0e+20}"#;
    let cookie = ok(&railbridge(&["cookie", "encode", "--rails", "7.2"], session, &env));
    let decoded = ok(&railbridge(&["cookie", "decode", "--rails", "7.2"], cookie.trim(), &env));
    assert_eq!(
        decoded.trim(),
        r#"{"session_id":"0123456789abcdef0123456789abcdef","huge":18446744073709551617,"neg":-123456789012345678901234567890,"f":1e+20}"#
    );
    // The tagged form is read too.
    let tagged = r#"{"huge":{"$integer":"18446744073709551617"}}"#;
    let cookie = ok(&railbridge(&["cookie", "encode", "--rails", "7.2"], tagged, &env));
    let decoded = ok(&railbridge(&["cookie", "decode", "--rails", "7.2"], cookie.trim(), &env));
    assert_eq!(decoded.trim(), r#"{"huge":18446744073709551617}"#);
}

#[test]
fn a_short_secret_key_base_is_accepted_as_rails_accepts_it() {
    // Rails only requires a non-empty secret_key_base; a real Rails 8.0.1 app ran with this 24-byte one.
    let env = [("SECRET_KEY_BASE", "0123456789abcdef01234567")];
    let cookie = ok(&railbridge(&["cookie", "encode", "--rails", "8.0"], r#"{"user_id":1}"#, &env));
    let decoded = ok(&railbridge(&["cookie", "decode", "--rails", "8.0"], cookie.trim(), &env));
    assert_eq!(decoded.trim(), r#"{"user_id":1}"#);
    // A blank one is refused, as Rails refuses it.
    let out = railbridge(
        &["cookie", "decode", "--rails", "8.0"],
        cookie.trim(),
        &[("SECRET_KEY_BASE", "  ")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("blank"), "{err}");
}

#[test]
fn message_pack_sessions_with_activesupport_extensions_round_trip_through_the_cli() {
    // Cookies written by Rails 7.2.2.2 with msgpack 1.7: decode prints `$packed` values, encode writes them back.
    let env = [("SECRET_KEY_BASE", SKB)];
    let args = ["--rails", "7.2", "--serializer", "message_pack"];
    for name in
        ["mp_date", "mp_time_with_zone", "mp_duration", "mp_set", "mp_bigdecimal", "mp_nested_ext"]
    {
        let case = vector("rails_7_2_message_pack", name);
        let decode = |cookie: &str| {
            let out = railbridge(&[&["cookie", "decode"][..], &args].concat(), cookie, &env);
            serde_json::from_str::<Json>(&ok(&out)).unwrap()
        };
        let session = decode(case["cookie"].as_str().unwrap());
        assert_eq!(session, case["expected"]["session"], "{name}");
        assert!(session.to_string().contains("$packed"), "{name}: {session}");
        let again = ok(&railbridge(
            &[&["cookie", "encode"][..], &args].concat(),
            &session.to_string(),
            &env,
        ));
        assert_eq!(decode(again.trim()), session, "{name}");
    }
    // The generic object extension (127) is refused with a reason, as Rails refuses it.
    let case = vector("rails_7_2_message_pack", "ext_127_object");
    let out = railbridge(
        &[&["cookie", "decode"][..], &args].concat(),
        case["cookie"].as_str().unwrap(),
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unknown_rails_version_is_an_error_naming_the_known_ones() {
    let out = railbridge(&["cookie", "decode", "--rails", "8.2"], "x", &[("SECRET_KEY_BASE", SKB)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("8.2") && err.contains("8.0, 8.1"), "{err}");
}
