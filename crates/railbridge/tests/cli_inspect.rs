//! `railbridge cookie inspect` and `railbridge serve --check --sample-cookie`, driven as a user would: stdin,
//! stdout, exit code, on cookies real Rails wrote.

use serde_json::{json, Value as Json};

use super::cli::{railbridge, vector};

const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
const AT: &str = "2026-01-01T00:00:00Z";

fn cookie(profile: &str, case: &str) -> String {
    vector(profile, case)["cookie"].as_str().unwrap().to_owned()
}

fn inspect(stdin: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let args = [&["cookie", "inspect", "--at", AT][..], extra].concat();
    let out = railbridge(&args, stdin, env);
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

fn inspect_json(stdin: &str, env: &[(&str, &str)]) -> (i32, Json) {
    let (code, out) = inspect(stdin, &["--json"], env);
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

#[test]
fn text_names_the_configuration_the_login_and_what_to_set() {
    let (code, out) =
        inspect(&cookie("rails_6_1_json", "devise_login"), &[], &[("SECRET_KEY_BASE", SKB)]);
    assert_eq!(code, 0, "{out}");
    for line in [
        "cookie _app_session: 578 bytes as given (value, percent-encoded), 540 after decoding",
        "shape: encrypted, AES-256-GCM (ciphertext--iv--tag): ciphertext 372 bytes, IV 12 bytes, tag 16 bytes",
        "readable: yes (2 configurations tried, 2 keys derived)",
        "  cipher           aes-256-gcm",
        "  key              PBKDF2-HMAC-SHA1 of secret_key_base (1000 iterations), authenticated_encrypted_cookie_salt \
         (Rails' default)",
        "  envelope         purpose \"cookie._app_session\", no expiry",
        "  serializer       json",
        "  Rails versions   6.0 – 6.1 (their defaults read it as their own); the defaults of 6.0 – 6.1 write exactly \
         this",
        "  session_id                String, 32 characters",
        "login: Devise/Warden, scope user, user id 1",
        "configure (for Rails 6.1; 6.0 – 6.1 all read it: give the app's own)",
        "    SESSION_KEY=_app_session",
        "    RAILS_VERSION=6.1",
        "    rails_version = \"6.1\"",
        "    Profile::rails_6_1()",
        "    railbridge cookie decode --rails 6.1 --cookie-name _app_session",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in:\n{out}");
    }
    // Values stay hidden unless asked for.
    assert!(!out.contains("0123456789abcdef") && !out.contains("$2a$"), "{out}");
    let (_, shown) = inspect(
        &cookie("rails_6_1_json", "devise_login"),
        &["--show-values"],
        &[("SECRET_KEY_BASE", SKB)],
    );
    assert!(
        shown.contains("  session_id                \"0123456789abcdef0123456789abcdef\""),
        "{shown}"
    );
}

#[test]
fn json_has_exactly_the_documented_fields() {
    let (code, json) =
        inspect_json(&cookie("rails_7_0_json", "devise_login"), &[("SECRET_KEY_BASE", SKB)]);
    assert_eq!(code, 0);
    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "candidates",
            "cipher",
            "cookie_name",
            "decode",
            "diagnosis",
            "diagnosis_kind",
            "env",
            "envelope",
            "expires_at",
            "hints",
            "hmac_digest",
            "identity",
            "kdf_digest",
            "key_derivations",
            "kind",
            "profile",
            "purpose",
            "rails_versions",
            "readable",
            "secret_token",
            "serializer",
            "session",
            "session_keys",
            "settings",
            "shape",
            "toml",
            "unsupported",
            "written_by",
        ]
    );
    let pick = |k: &str| json[k].clone();
    assert_eq!(
        [
            "readable",
            "kind",
            "cipher",
            "kdf_digest",
            "serializer",
            "envelope",
            "purpose",
            "expires_at",
            "rails_versions",
            "identity",
            "env",
            "diagnosis"
        ]
        .map(pick),
        [
            json!(true),
            json!("encrypted"),
            json!("aes-256-gcm"),
            json!("sha256"),
            json!("json"),
            json!("purpose"),
            json!("cookie._app_session"),
            Json::Null,
            json!(["7.0", "7.1", "7.2", "8.0", "8.1"]),
            json!({"source": "devise", "scope": "user", "user_id": 1}),
            json!({"SESSION_KEY": "_app_session", "RAILS_VERSION": "8.1"}),
            Json::Null,
        ]
    );
    assert_eq!(json["toml"], "[rails]\nsession_key = \"_app_session\"\nrails_version = \"8.1\"\n");
    assert_eq!(json["profile"], "Profile::rails_8_1()");
    assert_eq!(json["session"], Json::Null, "values only with --show-values");
    assert_eq!(json["key_derivations"], 1, "a SHA256 key is tried first");
}

#[test]
fn json_envelope_expiry_and_rails_8_login() {
    let (code, json) = inspect_json(
        vector("rails_7_2_signed_session_id", "permanent_42")["set_cookie"].as_str().unwrap(),
        &[("SECRET_KEY_BASE", SKB)],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (
            &json["kind"],
            &json["cipher"],
            &json["envelope"],
            &json["expires_at"],
            &json["hmac_digest"]
        ),
        (
            &json!("signed"),
            &Json::Null,
            &json!("purpose"),
            &json!("2046-01-01T00:00:00Z"),
            &json!("sha1")
        )
    );
    assert_eq!(
        json["identity"],
        json!({"source": "rails-authentication", "cookie": "session_id", "sessions_row": 42})
    );
    assert_eq!(json["env"], json!({"RAILS_VERSION": "8.1", "RAILS_AUTH": "rails-authentication"}));
}

#[test]
fn input_forms_cookie_and_set_cookie_lines_and_pairs() {
    let value = cookie("rails_6_1_json", "devise_login");
    let env = [("SECRET_KEY_BASE", SKB)];
    for input in [
        value.clone(),
        format!("_app_session={value}\n"),
        format!("Cookie: theme=dark; _app_session={value}; locale=fr"),
        format!("Set-Cookie: _app_session={value}; path=/; HttpOnly; SameSite=Lax"),
        format!("cookie: _app_session={value}"),
    ] {
        let (code, json) = inspect_json(&input, &env);
        assert_eq!(
            (code, &json["cookie_name"], &json["readable"]),
            (0, &json!("_app_session"), &json!(true))
        );
    }
    // Several Rails-shaped cookies: SESSION_KEY or --cookie-name chooses.
    let other = cookie("rails_6_1_json", "wrong_purpose");
    let header = format!("Cookie: _other_session={other}; _app_session={value}");
    let (code, json) = inspect_json(&header, &env);
    assert_eq!((code, json["diagnosis_kind"].as_str()), (1, Some("input")));
    let (code, json) =
        inspect_json(&header, &[("SECRET_KEY_BASE", SKB), ("SESSION_KEY", "_app_session")]);
    assert_eq!((code, &json["cookie_name"]), (0, &json!("_app_session")));
    let (code, out) = inspect(&header, &["--cookie-name", "_other_session"], &env);
    assert_eq!(code, 0, "{out}");
    // A name that contradicts the purpose: the diagnosis says whose cookie it is.
    let (code, json) = inspect_json(&format!("_app_session={other}"), &env);
    assert_eq!(
        (code, json["diagnosis_kind"].as_str(), &json["purpose"]),
        (1, Some("purpose"), &json!("cookie._other_session"))
    );
    assert_eq!(json["hints"], json!(["railbridge cookie inspect --cookie-name _other_session"]));
}

#[test]
fn unreadable_cookies_exit_1_with_the_diagnosis() {
    let env = [("SECRET_KEY_BASE", SKB)];
    let other_secret = "f".repeat(128);
    for (input, env, kind, starts) in [
        (cookie("rails_6_1_json", "devise_login"), &[("SECRET_KEY_BASE", other_secret.as_str())][..], "not_verified",
         "An encrypted AES-256-GCM cookie (ciphertext--iv--tag) whose tag does not verify"),
        (cookie("rails_6_1_json", "truncated_tag"), &env[..], "damaged",
         "An encrypted AES-256-GCM cookie (ciphertext--iv--tag), damaged: the tag is 12 bytes"),
        (cookie("rails_6_1_json", "expired"), &env[..], "expired", "verifies, but expired at 2020-01-02T03:04:05.000Z"),
        (cookie("rails_4_2_json", "truncated"), &env[..], "damaged", "An encrypted AES-256-CBC cookie (data--digest), damaged: the digest is 38 hex characters"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2ln".into(), &env[..], "not_rails", "not a Rails cookie: three dot-separated"),
        (cookie("rails_6_1_json", "devise_login"), &[][..], "no_secret", "An encrypted AES-256-GCM cookie (ciphertext--iv--tag); no secret_key_base"),
        (format!("A{}--0123456789abcdef0123456789abcdef01234567", "A".repeat(5200)), &env[..], "too_large", "the value is 5243 bytes"),
    ] {
        let (code, json) = inspect_json(&input, env);
        assert_eq!((code, json["readable"].as_bool(), json["diagnosis_kind"].as_str()), (1, Some(false), Some(kind)), "{json}");
        let diagnosis = json["diagnosis"].as_str().unwrap();
        assert!(diagnosis.starts_with(starts), "{diagnosis}");
    }
    // Custom salts: without them the diagnosis names the setting, with them the cookie reads.
    let c = cookie("custom_salts", "devise_login");
    let (code, json) = inspect_json(&c, &env);
    assert_eq!(code, 1);
    assert!(json["diagnosis"]
        .as_str()
        .unwrap()
        .contains("config.action_dispatch.authenticated_encrypted_cookie_salt"));
    assert!(json["hints"][0]
        .as_str()
        .unwrap()
        .contains("SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT"));
    let salted =
        [("SECRET_KEY_BASE", SKB), ("SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT", "my auth salt")];
    let (code, json) = inspect_json(&c, &salted);
    assert_eq!(code, 0);
    assert_eq!(json["env"]["SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT"], "my auth salt");
    assert_eq!(
        json["settings"],
        json!(["config.action_dispatch.authenticated_encrypted_cookie_salt = \"my auth salt\""])
    );
    // More than any header holds is refused unread.
    let out = railbridge(&["cookie", "inspect"], &"x".repeat(70_000), &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over 65536 bytes"));
}

#[test]
fn the_suggested_decode_command_reads_the_cookie() {
    let env = [("SECRET_KEY_BASE", SKB)];
    for (profile, case) in [
        ("rails_4_2_marshal", "devise_login"),
        ("cbc_sha256_digest", "devise_login"),
        ("rotation_sha1_to_sha256", "sha256_cbc_legacy"),
        ("signed_sha256_digest", "spec_t10"),
        ("rails_7_2_message_pack", "devise_login"),
        ("rails_5_2_json", "spec_t6"),
    ] {
        let c = vector(profile, case);
        let (code, json) = inspect_json(c["cookie"].as_str().unwrap(), &env);
        assert_eq!(code, 0, "{profile}/{case}: {json}");
        let decode = json["decode"].as_str().unwrap();
        let args: Vec<&str> = decode.split_whitespace().skip(1).collect();
        let args = [&args[..], &["--at", AT]].concat();
        let out = railbridge(&args, c["cookie"].as_str().unwrap(), &env);
        assert!(out.status.success(), "{decode}: {}", String::from_utf8_lossy(&out.stderr));
        let session: Json = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(session, c["expected"]["session"], "{decode}");
    }
}

#[test]
fn help_describes_inspect_without_secrets() {
    let out = railbridge(&["cookie", "--help"], "", &[]);
    assert!(String::from_utf8(out.stdout).unwrap().contains("inspect"));
    let out = railbridge(&["cookie", "inspect", "--help"], "", &[("SECRET_KEY_BASE", SKB)]);
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--show-values",
        "--json",
        "Set-Cookie",
        "SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT",
        "Exits 0",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    assert!(!help.contains(SKB));
    let out = railbridge(&["serve", "--help"], "", &[]);
    assert!(String::from_utf8(out.stdout).unwrap().contains("--sample-cookie"));
}

#[test]
fn serve_check_reads_a_sample_cookie_or_says_why_not() {
    let dir = std::env::temp_dir().join(format!("railbridge-sample-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cookie.txt");
    let set_cookie =
        vector("rails_6_1_json", "devise_login")["set_cookie"].as_str().unwrap().to_owned();
    std::fs::write(&file, &set_cookie).unwrap();
    let file = file.to_str().unwrap();
    let check = |version: &str| {
        let env =
            [("SECRET_KEY_BASE", SKB), ("SESSION_KEY", "_app_session"), ("RAILS_VERSION", version)];
        let out = railbridge(&["serve", "--check", "--sample-cookie", file], "", &env);
        (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, out) = check("6.1");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sample cookie: read by the configured profile (user 1 signed in, Warden scope user): ok"), "{out}");
    // A 7.0 gateway derives SHA256 keys: it cannot read the 6.1 cookie, and the report says what would.
    let (code, out) = check("7.0");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("sample cookie: not read by the configured profile: invalid_signature"),
        "{out}"
    );
    assert!(
        out.contains("Rails versions   6.0 – 6.1") && out.contains("RAILS_VERSION=6.1"),
        "{out}"
    );
    // A 4.2 CBC cookie read by a 6.1 gateway: only through Rails' upgrade path, which would rewrite it as GCM.
    std::fs::write(file, cookie("rails_4_2_json", "devise_login")).unwrap();
    let (code, out) = check("6.1");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("only through an upgrade path") && out.contains("RAILS_VERSION=5.1"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
