//! The key layout and the hash fields a record is stored as.
//!
//! A session is one hash at `{prefix}{<id>}`; a user's index is one sorted
//! set at `{prefix}user:{<user>}`. The Lua scripts build the same names, so
//! the two must change together.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use session_core::{Error, ExpiryOverrides, Metadata, Record, SessionId, Timestamp};

/// Hash field: when the session was created (Unix milliseconds).
pub(crate) const CREATED: &str = "m:created";
/// Hash field: the last activity (Unix milliseconds).
pub(crate) const LAST: &str = "m:last";
/// Hash field: when the session expires (Unix milliseconds).
pub(crate) const EXPIRES: &str = "m:exp";
/// Hash field: the user, absent when there is none.
pub(crate) const USER: &str = "m:user";
/// Hash field: when the user logged in (Unix milliseconds), absent when
/// never.
pub(crate) const AUTHENTICATED: &str = "m:auth";
/// Hash field: the idle timeout override (milliseconds), if any.
pub(crate) const IDLE: &str = "m:idle";
/// Hash field: the lifetime override (milliseconds), if any.
pub(crate) const LIFETIME: &str = "m:life";
/// Hash field: the persistent-cookie override (`1` or `0`), if any.
pub(crate) const PERSISTENT: &str = "m:pers";
/// Prefix of the field that holds one value: `d:<key>`.
pub(crate) const DATA: &str = "d:";
/// The bytes of the values (keys plus JSON text), kept by every write so
/// that the size limit is checked without reading the values.
pub(crate) const SIZE: &str = "m:size";

/// The latest instant given to Redis as a TTL or an index score: 14 digits,
/// so Lua (which prints numbers with 14 significant digits) and Redis agree
/// on it exactly. It is in the year 5138; `m:exp` keeps the exact instant.
const MAX_REDIS_MILLIS: u64 = 99_999_999_999_999;

/// The key of a session's hash.
pub(crate) fn session_key(prefix: &str, id: &SessionId) -> String {
    format!("{prefix}{{{id}}}")
}

/// The key of a user's index.
pub(crate) fn user_key(prefix: &str, user: &str) -> String {
    format!("{prefix}user:{{{user}}}")
}

/// The hash field of a value's key.
pub(crate) fn data_field(key: &str) -> String {
    format!("{DATA}{key}")
}

/// `expires_at` as Redis gets it for `PEXPIREAT` and index scores.
pub(crate) fn redis_millis(at: Timestamp) -> u64 {
    at.unix_millis().min(MAX_REDIS_MILLIS)
}

/// A duration as stored: whole milliseconds, saturating.
pub(crate) fn duration_text(d: Duration) -> String {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string()
}

/// The hash fields of a record, as field-value pairs.
pub(crate) fn record_fields(record: &Record) -> Vec<(String, String)> {
    let meta = &record.meta;
    let mut fields = Vec::with_capacity(8 + record.data.len());
    fields.push((CREATED.into(), meta.created_at.unix_millis().to_string()));
    fields.push((LAST.into(), meta.last_activity.unix_millis().to_string()));
    fields.push((EXPIRES.into(), record.expires_at.unix_millis().to_string()));
    if let Some(user) = &meta.user {
        fields.push((USER.into(), user.to_string()));
    }
    if let Some(at) = meta.authenticated_at {
        fields.push((AUTHENTICATED.into(), at.unix_millis().to_string()));
    }
    if let Some(idle) = meta.expiry.idle {
        fields.push((IDLE.into(), duration_text(idle)));
    }
    if let Some(lifetime) = meta.expiry.lifetime {
        fields.push((LIFETIME.into(), duration_text(lifetime)));
    }
    if let Some(persistent) = meta.expiry.persistent {
        fields.push((PERSISTENT.into(), flag(persistent).into()));
    }
    fields.push((SIZE.into(), record.data.bytes().to_string()));
    for (key, value) in record.data.iter() {
        fields.push((data_field(key), value.to_owned()));
    }
    fields
}

/// `"1"` or `"0"`.
pub(crate) fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

/// A hash's field-value pairs, as Redis holds them.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The field-value pairs of an `HGETALL` reply (an array in RESP2, a map in
/// RESP3).
pub(crate) fn hash_pairs(reply: Value) -> Result<Pairs, Error> {
    let pairs = match reply {
        Value::Nil => Vec::new(),
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(unexpected("a hash reply with an odd number of items"));
            }
            let mut items = items.into_iter();
            let mut pairs = Vec::with_capacity(items.len() / 2);
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                pairs.push((field, value));
            }
            pairs
        }
        _ => return Err(unexpected("a hash reply that is not an array")),
    };
    pairs
        .into_iter()
        .map(|(field, value)| Ok((bytes(field)?, bytes(value)?)))
        .collect()
}

/// The bytes of a string reply.
pub(crate) fn bytes(value: Value) -> Result<Vec<u8>, Error> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.into_bytes()),
        Value::Int(n) => Ok(n.to_string().into_bytes()),
        _ => Err(unexpected("a string reply of another type")),
    }
}

/// A reply that our own commands and scripts never give: the server is not
/// the Redis this crate was written for, or something else wrote the keys.
pub(crate) fn unexpected(what: &str) -> Error {
    Error::store(format!("unexpected reply from Redis: {what}"))
}

fn corrupt(why: impl Into<String>) -> Error {
    Error::corrupt(why.into())
}

fn text(bytes: Vec<u8>, what: &str) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|_| corrupt(format!("{what} is not UTF-8")))
}

fn millis(bytes: &[u8], field: &str) -> Result<u64, Error> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| corrupt(format!("field {field} is not a whole number")))
}

/// Decodes a session hash. An empty hash (no key) is `None`; a hash that
/// does not follow the layout is [`Error::Corrupt`]. Unknown `m:` fields are
/// ignored, so that a later version may add some.
pub(crate) fn decode_record(pairs: Pairs) -> Result<Option<Record>, Error> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let (mut created, mut last, mut expires) = (None, None, None);
    let mut user = None;
    let mut authenticated = None;
    let mut expiry = ExpiryOverrides::default();
    let mut data: Vec<(String, String)> = Vec::with_capacity(pairs.len().saturating_sub(3));
    for (field, value) in pairs {
        if let Some(key) = field.strip_prefix(DATA.as_bytes()) {
            let key = text(key.to_vec(), "a value's key")?;
            let value = text(value, "a value")?;
            data.push((key, value));
            continue;
        }
        match std::str::from_utf8(&field).unwrap_or("") {
            CREATED => created = Some(millis(&value, CREATED)?),
            LAST => last = Some(millis(&value, LAST)?),
            EXPIRES => expires = Some(millis(&value, EXPIRES)?),
            USER => user = Some(Arc::from(text(value, "the user")?)),
            AUTHENTICATED => authenticated = Some(millis(&value, AUTHENTICATED)?),
            IDLE => expiry.idle = Some(Duration::from_millis(millis(&value, IDLE)?)),
            LIFETIME => expiry.lifetime = Some(Duration::from_millis(millis(&value, LIFETIME)?)),
            PERSISTENT => {
                expiry.persistent = Some(match value.as_slice() {
                    b"1" => true,
                    b"0" => false,
                    _ => return Err(corrupt(format!("field {PERSISTENT} is not 0 or 1"))),
                })
            }
            other if other.starts_with("m:") => {}
            _ => return Err(corrupt("a field outside the layout")),
        }
    }
    let missing = |field: &str| corrupt(format!("field {field} is missing"));
    Ok(Some(Record {
        meta: Metadata {
            created_at: Timestamp::from_unix_millis(created.ok_or_else(|| missing(CREATED))?),
            last_activity: Timestamp::from_unix_millis(last.ok_or_else(|| missing(LAST))?),
            user,
            authenticated_at: authenticated.map(Timestamp::from_unix_millis),
            expiry,
        },
        expires_at: Timestamp::from_unix_millis(expires.ok_or_else(|| missing(EXPIRES))?),
        data: data.into_iter().collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(fields: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        fields
            .iter()
            .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn sample() -> Record {
        Record {
            meta: Metadata {
                created_at: Timestamp::from_unix_millis(1_000),
                last_activity: Timestamp::from_unix_millis(2_000),
                user: Some(Arc::from("ann")),
                authenticated_at: Some(Timestamp::from_unix_millis(1_500)),
                expiry: ExpiryOverrides {
                    idle: Some(Duration::from_secs(60)),
                    lifetime: Some(Duration::from_secs(3600)),
                    persistent: Some(true),
                },
            },
            expires_at: Timestamp::from_unix_millis(62_000),
            data: [("cart", "[1,2]")].into_iter().collect(),
        }
    }

    #[test]
    fn keys_put_each_session_and_each_user_in_its_own_slot() {
        let id = SessionId::from_bytes([0; 16]);
        assert_eq!(
            session_key("session:", &id),
            "session:{AAAAAAAAAAAAAAAAAAAAAA}"
        );
        assert_eq!(user_key("session:", "ann"), "session:user:{ann}");
    }

    #[test]
    fn records_round_trip_through_their_fields() {
        for record in [sample(), {
            let mut plain = sample();
            plain.meta.user = None;
            plain.meta.authenticated_at = None;
            plain.meta.expiry = ExpiryOverrides::default();
            plain
        }] {
            let fields: Vec<(Vec<u8>, Vec<u8>)> = record_fields(&record)
                .into_iter()
                .map(|(f, v)| (f.into_bytes(), v.into_bytes()))
                .collect();
            assert_eq!(decode_record(fields).unwrap(), Some(record));
        }
    }

    #[test]
    fn an_empty_hash_is_no_record() {
        assert_eq!(decode_record(Vec::new()).unwrap(), None);
    }

    #[test]
    fn records_that_break_the_layout_are_corrupt() {
        let good = [("m:created", "1"), ("m:last", "2"), ("m:exp", "3")];
        let cases: [&[(&str, &str)]; 6] = [
            &good[..2],
            &[("m:created", "1"), ("m:last", "2"), ("m:exp", "soon")],
            &[("m:created", "1"), ("m:last", "-2"), ("m:exp", "3")],
            &[
                ("m:created", "1"),
                ("m:last", "2"),
                ("m:exp", "3"),
                ("x", "y"),
            ],
            &[
                ("m:created", "1"),
                ("m:last", "2"),
                ("m:exp", "3"),
                ("m:pers", "yes"),
            ],
            &[("garbage", "1")],
        ];
        for case in cases {
            assert!(
                matches!(decode_record(pairs(case)), Err(Error::Corrupt(_))),
                "{case:?}"
            );
        }
        let mut with_unknown_meta = good.to_vec();
        with_unknown_meta.push(("m:later", "anything"));
        assert!(decode_record(pairs(&with_unknown_meta)).unwrap().is_some());
    }

    #[test]
    fn non_utf8_values_are_corrupt() {
        let mut fields = pairs(&[("m:created", "1"), ("m:last", "2"), ("m:exp", "3")]);
        fields.push((b"d:k".to_vec(), vec![0xff]));
        assert!(matches!(decode_record(fields), Err(Error::Corrupt(_))));
    }

    #[test]
    fn hash_replies_come_as_arrays_or_maps() {
        let field = || Value::BulkString(b"m:exp".to_vec());
        let value = || Value::BulkString(b"3".to_vec());
        let expected = vec![(b"m:exp".to_vec(), b"3".to_vec())];
        assert_eq!(
            hash_pairs(Value::Array(vec![field(), value()])).unwrap(),
            expected
        );
        assert_eq!(
            hash_pairs(Value::Map(vec![(field(), value())])).unwrap(),
            expected
        );
        assert!(hash_pairs(Value::Array(vec![field()])).is_err());
        assert!(hash_pairs(Value::Int(1)).is_err());
    }

    #[test]
    fn redis_sees_clamped_instants() {
        assert_eq!(redis_millis(Timestamp::from_unix_millis(5)), 5);
        assert_eq!(
            redis_millis(Timestamp::from_unix_millis(u64::MAX)),
            MAX_REDIS_MILLIS
        );
    }
}
