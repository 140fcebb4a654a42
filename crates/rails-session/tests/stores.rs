//! The server-side stores against real servers started by the test kit (Debian's redis-server and memcached,
//! SQLite, PostgreSQL), fed with the spec's records as Rails wrote them: what is read, what is written back (bytes
//! and format), the record deleted while a request ran, renew, a store that is down. The Rails apps themselves
//! write and read these stores in `live_stores`.

use std::time::{Duration, Instant};

use rails_session::cache_entry::{self, EntryFormat};
use rails_session::rails_cookie::{Hash, Serializer, Value};
use rails_session::{
    LoadedSession, ServerStore, SessionStore, StoreError, StoreKind, StoreSettings,
};
use testkit::{skip_live, Memcached, Redis};

/// Marshal(D) of the spec (§8), as Rails 6.1–8.0 write it.
const MARSHAL_D: &str = "04087b084922105f637372665f746f6b656e063a064554492231494345694979516c4a69636f4b536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d063b004649221977617264656e2e757365722e757365722e6b6579063b00545b075b066906492222243261243132244b49586530735966584a307831595130623163326465063b005449221d77617264656e2e757365722e757365722e73657373696f6e063b00547b064922146c6173745f726571756573745f6174063b00546c2b07cd3c086b";
const PUBLIC: &str = "0123456789abcdef0123456789abcdef";
const PRIVATE: &str = "2::3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9";

fn d() -> Value {
    Serializer::Marshal.load(&hex::decode(MARSHAL_D).unwrap()).unwrap().0
}

fn build(
    kind: StoreKind,
    url: &str,
    namespace: Option<&str>,
    f: impl FnOnce(&mut StoreSettings),
) -> ServerStore {
    let mut settings = StoreSettings::new(kind, url);
    settings.namespace = namespace.map(str::to_owned);
    settings.timeout = Duration::from_secs(2);
    f(&mut settings);
    settings
        .build(rails_session::rails_cookie::RailsVersion::V7_2, Some(Duration::from_secs(3600)))
        .unwrap()
}

fn redis_get(redis: &Redis, key: &str) -> Option<Vec<u8>> {
    let reply = redis.command(&[b"GET", key.as_bytes()]);
    if reply.starts_with(b"$-1") {
        return None;
    }
    let header_end = reply.windows(2).position(|w| w == b"\r\n").unwrap();
    Some(reply[header_end + 2..reply.len() - 2].to_vec())
}

fn redis_pttl(redis: &Redis, key: &str) -> i64 {
    let reply = String::from_utf8(redis.command(&[b"PTTL", key.as_bytes()])).unwrap();
    reply.trim_start_matches(':').trim().parse().unwrap()
}

fn with_counter(loaded: &LoadedSession, n: i64) -> Hash {
    let mut h = (*loaded.data).clone();
    h.insert("counter", n.into());
    h
}

fn warden_salt(data: &Hash) -> Value {
    data.get("warden.user.user.key").unwrap().as_array().unwrap()[1].clone()
}

/// The common story for a store whose records we can plant and read back: `plant` writes raw bytes under a key,
/// `read` returns them.
async fn story(
    store: &ServerStore,
    key: &str,
    plant: impl Fn(&str, &[u8]),
    read: impl Fn(&str) -> Option<Vec<u8>>,
    record: &[u8],
) -> Vec<u8> {
    assert_eq!(store.record_key(PUBLIC), key);
    // Unknown id: nothing read, nothing created.
    assert!(store.load(PUBLIC).await.unwrap().is_none());
    assert!(store.load(PRIVATE).await.unwrap().is_none(), "a store key is never a cookie");
    assert!(read(key).is_none());
    plant(key, record);
    let loaded = store.load(PUBLIC).await.unwrap().unwrap();
    assert_eq!(loaded.data.get("session_id"), Some(&Value::String(PUBLIC.into())));
    assert_eq!(warden_salt(&loaded.data), Value::String("$2a$12$KIXe0sYfXJ0x1YQ0b1c2de".into()));
    // Changed in Rust: written back where it was.
    let id =
        store.save_loaded(&with_counter(&loaded, 1), None, loaded.state.as_deref()).await.unwrap();
    assert_eq!(id.as_deref(), Some(PUBLIC));
    let written = read(key).unwrap();
    let again = store.load(PUBLIC).await.unwrap().unwrap();
    assert_eq!(again.data.get("counter"), Some(&Value::Integer(1)));
    // Rails signs out meanwhile (Devise's reset_session deletes the record): never written back.
    let loaded = store.load(PUBLIC).await.unwrap().unwrap();
    plant(key, b"");
    let id =
        store.save_loaded(&with_counter(&loaded, 2), None, loaded.state.as_deref()).await.unwrap();
    assert_eq!(id, None);
    assert!(read(key).is_none(), "a deleted session stays deleted");
    // Renew: the data moves to a new id, the old record goes.
    plant(key, &written);
    let loaded = store.load(PUBLIC).await.unwrap().unwrap();
    let mut renewed = (*loaded.data).clone();
    renewed.insert("session_id", Value::String("f".repeat(32)));
    let id = store.save_loaded(&renewed, None, loaded.state.as_deref()).await.unwrap().unwrap();
    assert_eq!(id, "f".repeat(32));
    assert!(read(key).is_none());
    let moved = store.load(&id).await.unwrap().unwrap();
    assert_eq!(moved.data.get("counter"), Some(&Value::Integer(1)));
    written
}

#[tokio::test]
async fn cache_store_on_redis_in_each_format() {
    let Some(redis) = Redis::start() else { return };
    let key = format!("myapp:_session_id:{PRIVATE}");
    let plant = |k: &str, v: &[u8]| {
        if v.is_empty() {
            redis.command(&[b"DEL", k.as_bytes()]);
        } else {
            redis.command(&[b"SET", k.as_bytes(), v]);
        }
    };
    let now = 4_000_000_000.0;
    for (format, prefix) in [
        (EntryFormat::F61, &[4u8, 8, b'o'][..]),
        (EntryFormat::F70, &[0u8, 4, 8][..]),
        (EntryFormat::F71, &[0u8, 0x11, 1][..]),
    ] {
        let store = build(StoreKind::CacheStore, &redis.url(), Some("myapp"), |_| {});
        let record =
            cache_entry::encode(&d(), format, cache_entry::Stamp { now, expires_in: None })
                .unwrap();
        let written = story(&store, &key, plant, |k| redis_get(&redis, k), &record).await;
        assert!(
            written.starts_with(prefix),
            "{format:?} written back as read: {:02x?}",
            &written[..4]
        );
        let entry = cache_entry::decode(&written, 1 << 20).unwrap();
        assert_eq!(entry.format, format);
        assert!(entry.expires_at.is_some(), "expire_after is the entry's expiry too");
        let renewed_key = format!(
            "myapp:_session_id:{}",
            rails_session::SessionId::from_cookie(&"f".repeat(32)).unwrap().private_id()
        );
        let pttl = redis_pttl(&redis, &renewed_key);
        assert!((3_590_000..=3_600_000).contains(&pttl), "PX from expire_after: {pttl}");
        redis.command(&[b"FLUSHALL"]);
    }
}

#[tokio::test]
async fn redis_store_and_redis_session_store() {
    let Some(redis) = Redis::start() else { return };
    let plant = |k: &str, v: &[u8]| {
        if v.is_empty() {
            redis.command(&[b"DEL", k.as_bytes()]);
        } else {
            redis.command(&[b"SET", k.as_bytes(), v]);
        }
    };
    let marshal = hex::decode(MARSHAL_D).unwrap();
    // redis-actionpack: "<namespace>:<id>", raw Marshal.
    let store = build(StoreKind::RedisStore, &redis.url(), Some("myapp:session"), |_| {});
    let written = story(
        &store,
        &format!("myapp:session:{PRIVATE}"),
        plant,
        |k| redis_get(&redis, k),
        &marshal,
    )
    .await;
    assert!(written.starts_with(&[4, 8, b'{']));
    // Default namespace.
    assert_eq!(
        build(StoreKind::RedisStore, &redis.url(), None, |_| {}).record_key(PUBLIC),
        format!("rack:session:{PRIVATE}")
    );
    // redis-session-store: "<key_prefix><id>", JSON.
    let json = br#"{"_csrf_token":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","warden.user.user.key":[[1],"$2a$12$KIXe0sYfXJ0x1YQ0b1c2de"],"warden.user.user.session":{"last_request_at":1795701965}}"#;
    let store = build(StoreKind::RedisSessionStore, &redis.url(), Some("myapp:session:"), |s| {
        s.serializer = rails_session::StoreSerializer::Json;
    });
    let written =
        story(&store, &format!("myapp:session:{PRIVATE}"), plant, |k| redis_get(&redis, k), json)
            .await;
    assert!(written.starts_with(br#"{"_csrf_token":"#));
    assert!(written.ends_with(br#","counter":1}"#));
}

#[tokio::test]
async fn cache_store_on_memcached_with_dallis_wrapping() {
    let Some(memcached) = Memcached::start() else { return };
    let key = format!("myapp:_session_id:{PRIVATE}");
    let get_raw = |k: &str| -> Option<(u32, Vec<u8>)> {
        let reply = memcached.command(&format!("get {k}"));
        if reply.starts_with(b"END") {
            return None;
        }
        let line_end = reply.windows(2).position(|w| w == b"\r\n").unwrap();
        let header = std::str::from_utf8(&reply[..line_end]).unwrap();
        let flags: u32 = header.split(' ').nth(2).unwrap().parse().unwrap();
        let len: usize = header.split(' ').nth(3).unwrap().parse().unwrap();
        Some((flags, reply[line_end + 2..line_end + 2 + len].to_vec()))
    };
    let plant = |k: &str, v: &[u8]| {
        if v.is_empty() {
            memcached.command(&format!("delete {k}"));
            return;
        }
        // Dalli: flags 1, the 6.1 entry as is, 7.x entries as a marshalled binary String.
        let wrapped = if v.starts_with(&[4, 8]) {
            v.to_vec()
        } else {
            Serializer::Marshal
                .dump(&Value::RubyString(rails_session::rails_cookie::RString::new(
                    v.to_vec(),
                    rails_session::rails_cookie::Encoding::Binary,
                )))
                .unwrap()
        };
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", memcached.port())).unwrap();
        use std::io::{Read as _, Write as _};
        stream.write_all(format!("set {k} 1 0 {}\r\n", wrapped.len()).as_bytes()).unwrap();
        stream.write_all(&wrapped).unwrap();
        stream.write_all(b"\r\n").unwrap();
        let mut ok = [0u8; 8];
        stream.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"STORED\r\n");
    };
    let unwrap = |k: &str| -> Option<Vec<u8>> {
        let (flags, v) = get_raw(k)?;
        assert_eq!(flags, 1, "Dalli's serialized flag");
        if v.starts_with(&[4, 8, b'o']) {
            return Some(v);
        }
        match Serializer::Marshal.load(&v).unwrap().0 {
            Value::RubyString(s) => Some(s.bytes),
            other => panic!("not a wrapped entry: {other:?}"),
        }
    };
    for format in [EntryFormat::F61, EntryFormat::F71] {
        let store = build(StoreKind::CacheStore, &memcached.url(), Some("myapp"), |_| {});
        let record =
            cache_entry::encode(&d(), format, cache_entry::Stamp { now: 4e9, expires_in: None })
                .unwrap();
        let written = story(&store, &key, plant, unwrap, &record).await;
        assert_eq!(cache_entry::decode(&written, 1 << 20).unwrap().format, format);
        memcached.command("flush_all");
    }
}

#[tokio::test]
async fn active_record_store_on_sqlite_and_postgresql() {
    if skip_live() && testkit::Postgres::start().is_none() {
        return;
    }
    let dir = testkit::TempDir::new("ar-store");
    let db = dir.path().join("sessions.sqlite3");
    let schema = "CREATE TABLE sessions (id INTEGER PRIMARY KEY, session_id varchar NOT NULL, data text, created_at datetime(6) NOT NULL, updated_at datetime(6) NOT NULL); CREATE UNIQUE INDEX index_sessions_on_session_id ON sessions (session_id);";
    let status = std::process::Command::new("sqlite3").arg(&db).arg(schema).status();
    let sqlite_ready = status.is_ok_and(|s| s.success());
    let marshal_column = "BAh7CEkiEF9jc3JmX3Rva2VuBjoGRVRJIjFJQ0VpSXlRbEppY29LU29yTEMw\ndUx6QXhNak0wTlRZM09EazZPenc5UGo4PQY7AEZJIhl3YXJkZW4udXNlci51\nc2VyLmtleQY7AFRbB1sGaQZJIiIkMmEkMTIkS0lYZTBzWWZYSjB4MVlRMGIx\nYzJkZQY7AFRJIh13YXJkZW4udXNlci51c2VyLnNlc3Npb24GOwBUewZJIhRs\nYXN0X3JlcXVlc3RfYXQGOwBUbCsHzTwIaw==\n";
    if sqlite_ready {
        let url = format!("sqlite3:{}", db.display());
        let store = build(StoreKind::ActiveRecordStore, &url, None, |_| {});
        let sql = |q: &str| {
            let out = std::process::Command::new("sqlite3").arg(&db).arg(q).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        };
        let plant = |k: &str, v: &[u8]| {
            sql(&format!("DELETE FROM sessions WHERE session_id = '{k}'"));
            if !v.is_empty() {
                let v = String::from_utf8(v.to_vec()).unwrap().replace('\'', "''");
                sql(&format!("INSERT INTO sessions (session_id, data, created_at, updated_at) VALUES ('{k}', '{v}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"));
            }
        };
        let read = |k: &str| {
            let out = sql(&format!("SELECT hex(data) FROM sessions WHERE session_id = '{k}'"));
            let hex_text = String::from_utf8(out).unwrap();
            (!hex_text.trim().is_empty()).then(|| hex::decode(hex_text.trim()).unwrap())
        };
        let written = story(&store, PRIVATE, plant, read, marshal_column.as_bytes()).await;
        assert!(written.starts_with(b"BAh7"), "base64 Marshal");
        assert!(written.ends_with(b"\n"));
        assert!(written.split(|b| *b == b'\n').all(|line| line.len() <= 60), "60-character lines");
        let updated =
            String::from_utf8(sql("SELECT count(*) FROM sessions WHERE updated_at > '2026-06-01'"))
                .unwrap();
        assert_eq!(updated.trim(), "1", "updated_at set on write");
    } else {
        assert!(
            skip_live(),
            "the sqlite3 program is needed for this test: apt-get install sqlite3"
        );
    }
    let Some(pg) = testkit::Postgres::start() else { return };
    pg.psql("CREATE TABLE sessions (id bigserial PRIMARY KEY, session_id character varying NOT NULL, data text, created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL); CREATE UNIQUE INDEX ON sessions (session_id);");
    let store = build(StoreKind::ActiveRecordStore, &pg.url(), None, |s| {
        s.serializer = rails_session::StoreSerializer::Json
    });
    let json_column = r#"{"value":{"_csrf_token":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","warden.user.user.key":[[1],"$2a$12$KIXe0sYfXJ0x1YQ0b1c2de"],"warden.user.user.session":{"last_request_at":1795701965}}}"#;
    let plant = |k: &str, v: &[u8]| {
        pg.psql(&format!("DELETE FROM sessions WHERE session_id = '{k}'"));
        if !v.is_empty() {
            let v = String::from_utf8(v.to_vec()).unwrap().replace('\'', "''");
            pg.psql(&format!("INSERT INTO sessions (session_id, data, created_at, updated_at) VALUES ('{k}', '{v}', now(), now())"));
        }
    };
    let read = |k: &str| {
        let out = pg.psql(&format!(
            "SELECT encode(convert_to(data, 'UTF8'), 'hex') FROM sessions WHERE session_id = '{k}'"
        ));
        let hex_text = out.trim().to_owned();
        (!hex_text.is_empty()).then(|| hex::decode(hex_text).unwrap())
    };
    let written = story(&store, PRIVATE, plant, read, json_column.as_bytes()).await;
    assert!(written.starts_with(br#"{"value":{"_csrf_token""#));
}

#[tokio::test]
async fn a_store_that_is_down_fails_closed_within_its_timeout() {
    // A port nobody listens on, and a listener that accepts and never answers.
    let closed = testkit::free_port();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for url in [
        format!("redis://127.0.0.1:{closed}/0"),
        format!("redis://127.0.0.1:{silent_port}/0"),
        format!("memcached://127.0.0.1:{closed}"),
        format!("memcached://127.0.0.1:{silent_port}"),
    ] {
        let store =
            build(StoreKind::CacheStore, &url, None, |s| s.timeout = Duration::from_millis(300));
        let started = Instant::now();
        let e = store.load(PUBLIC).await.unwrap_err();
        assert!(matches!(e, StoreError::Backend(_)), "{url}: {e}");
        assert!(store.check().await.is_err(), "{url}");
        // Bounded: a request never hangs on the store (generous, to stay clear of a loaded machine).
        assert!(started.elapsed() < Duration::from_secs(10), "{url}: {:?}", started.elapsed());
    }
    drop(silent);
}

#[tokio::test]
async fn the_example_api_answers_503_while_the_store_is_down_and_writes_nothing() {
    let closed = format!("redis://127.0.0.1:{}/0", testkit::free_port());
    let env = crate::common::env(&[
        ("SESSION_STORE", "cache_store"),
        ("SESSION_STORE_URL", &closed),
        ("SESSION_STORE_TIMEOUT", "0.3"),
    ]);
    let api = crate::common::spawn_axum(env).await;
    let mut b = crate::common::Browser::new();
    // No cookie: nobody is signed in, and the store is not asked.
    assert_eq!(b.get(&api.url("/api/me")).await.status, 401);
    b.set_cookie_pair(&format!("{}={PUBLIC}", crate::common::COOKIE_NAME));
    let me = b.get(&api.url("/api/me")).await;
    assert_eq!(me.status, 503, "{}", me.body);
    assert_eq!(me.json()["error"], "session store unavailable");
    assert!(me.session_cookies().is_empty(), "never a new session over one that could not be read");
    let write = b.post(&api.url("/api/counter"), &[("x-csrf-token", "x")], &[]).await;
    assert_eq!(
        (write.status, write.json()["error"].clone()),
        (503, serde_json::json!("session store unavailable"))
    );
}
