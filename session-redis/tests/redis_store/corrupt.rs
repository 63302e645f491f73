//! Keys that do not hold a valid session read as corrupt, never panic.

use std::time::SystemTime;

use session_core::testing::{record_at, update_at};
use session_core::{Error, SessionId, SessionStore, Timestamp, WriteOutcome};
use session_redis::RedisStore;

use session_redis::testing::{TestRedis, admin, unique_prefix};

fn is_corrupt<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::Corrupt(_)))
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_records_are_errors_not_panics() {
    let Some(redis) = TestRedis::try_get() else {
        return;
    };
    let prefix = unique_prefix("corrupt");
    let store = RedisStore::new(redis.url()).unwrap().with_prefix(&prefix);
    let mut conn = admin(&redis.url());
    let now = Timestamp::from(SystemTime::now());
    let key = |id: &SessionId| format!("{prefix}{{{id}}}");
    let exp = now.unix_millis() + 3_600_000;

    // Not a hash at all: a string, and a list.
    let string = SessionId::generate();
    let list = SessionId::generate();
    let _: () = redis::cmd("SET")
        .arg(key(&string))
        .arg("not a hash")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(key(&list))
        .arg("x")
        .query(&mut conn)
        .unwrap();
    // Hashes that break the layout.
    let exp_text = exp.to_string();
    let mut plant_hash = |id: &SessionId, fields: &[(&str, &[u8])]| {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key(id));
        for (field, value) in fields {
            cmd.arg(*field).arg(*value);
        }
        let _: () = cmd.query(&mut conn).unwrap();
    };
    let times: [(&str, &[u8]); 2] = [("m:created", b"1"), ("m:last", b"1")];
    let garbage_exp = SessionId::generate();
    plant_hash(&garbage_exp, &[times[0], times[1], ("m:exp", b"soon")]);
    let no_exp = SessionId::generate();
    plant_hash(&no_exp, &[times[0], times[1], ("d:a", b"1")]);
    let stray_field = SessionId::generate();
    let valid_exp = ("m:exp", exp_text.as_bytes());
    plant_hash(
        &stray_field,
        &[times[0], times[1], valid_exp, ("junk", b"?")],
    );
    let bad_utf8 = SessionId::generate();
    plant_hash(
        &bad_utf8,
        &[times[0], times[1], valid_exp, ("d:a", &[0xff, 0xfe])],
    );

    for id in [
        &string,
        &list,
        &garbage_exp,
        &no_exp,
        &stray_field,
        &bad_utf8,
    ] {
        assert!(is_corrupt(store.load(id, now).await), "load");
    }
    // Writes refuse records whose type or times are broken...
    let update = update_at(now, &[("b", "2")], &[]);
    for id in [&string, &list, &garbage_exp, &no_exp] {
        assert!(is_corrupt(store.update(id, update.clone()).await), "update");
        assert!(
            is_corrupt(store.renew(id, &SessionId::generate(), &update).await),
            "renew"
        );
    }
    // ...and creating over any of them is refused, never overwrites.
    for id in [&string, &garbage_exp] {
        let outcome = store.create(id, &record_at(now, None, &[])).await.unwrap();
        assert_eq!(outcome, WriteOutcome::IdTaken);
    }

    // An index entry pointing at a corrupt key is not listed, and ending
    // the user's sessions leaves a key that is no session of theirs alone.
    let _: () = redis::cmd("ZADD")
        .arg(format!("{prefix}user:{{mallory}}"))
        .arg(exp)
        .arg(string.to_string())
        .query(&mut conn)
        .unwrap();
    assert!(
        store
            .user_sessions("mallory", now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.delete_user("mallory").await.unwrap(), 0);

    // Deleting clears a corrupt key, so its id can be used again.
    for id in [
        &string,
        &list,
        &garbage_exp,
        &no_exp,
        &stray_field,
        &bad_utf8,
    ] {
        assert!(store.delete(id).await.unwrap(), "delete");
        assert!(store.load(id, now).await.unwrap().is_none());
    }
    let fresh = record_at(now, None, &[("ok", "true")]);
    assert_eq!(
        store.create(&string, &fresh).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(store.load(&string, now).await.unwrap(), Some(fresh));
    assert!(store.delete(&string).await.unwrap());
}
