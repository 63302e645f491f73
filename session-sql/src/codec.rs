//! How a record's parts are written to and read from a row, the same on
//! every backend: times and durations as whole milliseconds (`BIGINT`), the
//! values as one JSON object of key to the value's JSON text (a string), and
//! an update's value changes as a JSON merge patch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use session_core::{Data, Error, ExpiryOverrides, Metadata, Record, SessionId, Timestamp, Update};

/// A stored session's columns, as read from a row, before checking.
pub(crate) struct Columns {
    pub(crate) created_at: i64,
    pub(crate) last_activity: i64,
    pub(crate) expires_at: i64,
    pub(crate) user: Option<String>,
    pub(crate) idle_ms: Option<i64>,
    pub(crate) lifetime_ms: Option<i64>,
    pub(crate) persistent: Option<bool>,
    pub(crate) authenticated_at: Option<i64>,
    pub(crate) data: String,
}

/// An instant as stored (milliseconds since the Unix epoch; the far future
/// is clamped to the largest `BIGINT`).
pub(crate) fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.unix_millis()).unwrap_or(i64::MAX)
}

/// A duration as stored (whole milliseconds, clamped).
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The values column of a record: `{"key": "<JSON text>", ...}`.
pub(crate) fn data_json(data: &Data) -> String {
    let mut out = String::with_capacity(2 + data.bytes() + data.len() * 8);
    out.push('{');
    for (i, (key, value)) in data.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, key);
        out.push(':');
        push_json_string(&mut out, value);
    }
    out.push('}');
    out
}

/// The keys an update sets, as a JSON object to merge in (`||` on
/// PostgreSQL).
pub(crate) fn set_json(update: &Update) -> String {
    let mut out = String::with_capacity(2 + update.set.len() * 16);
    out.push('{');
    for (i, (key, value)) in update.set.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, key);
        out.push(':');
        push_json_string(&mut out, value);
    }
    out.push('}');
    out
}

/// An update's value changes as a JSON merge patch (RFC 7396, MySQL's
/// `JSON_MERGE_PATCH` and SQLite's `json_patch`): a removed key is `null`,
/// a set key its text. A key both removed and set ends up set, as
/// [`Update::apply`] does. Clearing is done in SQL before the patch.
pub(crate) fn merge_patch(update: &Update) -> String {
    let mut out = String::with_capacity(2 + update.set.len() * 16 + update.removed.len() * 8);
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    for key in &update.removed {
        if update.cleared || update.set.iter().any(|(k, _)| k == key) {
            continue;
        }
        sep(&mut out);
        push_json_string(&mut out, key);
        out.push_str(":null");
    }
    for (key, value) in &update.set {
        sep(&mut out);
        push_json_string(&mut out, key);
        out.push(':');
        push_json_string(&mut out, value);
    }
    out.push('}');
    out
}

fn push_json_string(out: &mut String, text: &str) {
    // Serializing a string cannot fail.
    if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}

/// The size limit an update's statement must check: `None` when the update
/// cannot grow the values (it sets no key: removing and clearing only
/// shrink them) or has no limit.
pub(crate) fn limit(update: &Update) -> Option<i64> {
    if update.set.is_empty() || update.max_bytes == usize::MAX {
        return None;
    }
    i64::try_from(update.max_bytes).ok()
}

/// An update's change of the login time: whether it changes, and to what.
pub(crate) fn authenticated_columns(update: &Update) -> (bool, Option<i64>) {
    match update.authenticated_at {
        None => (false, None),
        Some(at) => (true, at.map(millis)),
    }
}

/// The three fields of an expiry change: idle, lifetime, persistent.
pub(crate) fn expiry_columns(expiry: &ExpiryOverrides) -> (Option<i64>, Option<i64>, Option<bool>) {
    (
        expiry.idle.map(duration_millis),
        expiry.lifetime.map(duration_millis),
        expiry.persistent,
    )
}

fn corrupt(why: impl Into<String>) -> Error {
    Error::corrupt(why.into())
}

fn instant(value: i64, column: &str) -> Result<Timestamp, Error> {
    u64::try_from(value)
        .map(Timestamp::from_unix_millis)
        .map_err(|_| corrupt(format!("column {column} is negative")))
}

fn duration(value: Option<i64>, column: &str) -> Result<Option<Duration>, Error> {
    value
        .map(|v| {
            u64::try_from(v)
                .map(Duration::from_millis)
                .map_err(|_| corrupt(format!("column {column} is negative")))
        })
        .transpose()
}

/// Checks a row's columns and builds the record.
pub(crate) fn decode(columns: Columns) -> Result<Record, Error> {
    let data: HashMap<String, String> = serde_json::from_str(&columns.data)
        .map_err(|e| Error::corrupt(format!("column data is not a JSON object of strings: {e}")))?;
    Ok(Record {
        meta: Metadata {
            created_at: instant(columns.created_at, "created_at")?,
            last_activity: instant(columns.last_activity, "last_activity")?,
            user: columns.user.map(Arc::from),
            authenticated_at: columns
                .authenticated_at
                .map(|at| instant(at, "authenticated_at"))
                .transpose()?,
            expiry: ExpiryOverrides {
                idle: duration(columns.idle_ms, "idle_ms")?,
                lifetime: duration(columns.lifetime_ms, "lifetime_ms")?,
                persistent: columns.persistent,
            },
        },
        expires_at: instant(columns.expires_at, "expires_at")?,
        data: data.into_iter().collect(),
    })
}

/// One page of the operator's list from its rows (id in column 9, the
/// record's columns read by the backend's `columns`), in the rows' order.
/// A row with an unreadable id or record is no live session: skipped.
pub(crate) fn page<R>(
    rows: Vec<R>,
    columns: impl Fn(&R) -> Result<Columns, Error>,
) -> Result<Vec<(SessionId, Record)>, Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut page = Vec::with_capacity(rows.len());
    for row in rows {
        let bytes: Vec<u8> = row.try_get(9).map_err(column_error)?;
        let Some(id) = id_from_bytes(&bytes) else {
            continue;
        };
        if let Ok(record) = columns(&row).and_then(decode) {
            page.push((id, record));
        }
    }
    Ok(page)
}

/// A session id from its stored bytes; `None` if they are not 16 bytes.
pub(crate) fn id_from_bytes(bytes: &[u8]) -> Option<SessionId> {
    <[u8; 16]>::try_from(bytes).ok().map(SessionId::from_bytes)
}

/// A column that did not decode: the row breaks the schema.
pub(crate) fn column_error(err: sqlx::Error) -> Error {
    Error::corrupt(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(cleared: bool, set: &[(&str, &str)], removed: &[&str]) -> Update {
        Update {
            cleared,
            set: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            removed: removed.iter().map(|k| k.to_string()).collect(),
            ..Update::default()
        }
    }

    #[test]
    fn patches_remove_with_null_and_set_with_text() {
        let u = update(false, &[("a", "1"), ("q\"", "\"x\"")], &["gone", "a"]);
        assert_eq!(merge_patch(&u), r#"{"gone":null,"a":"1","q\"":"\"x\""}"#);
        assert_eq!(set_json(&u), r#"{"a":"1","q\"":"\"x\""}"#);
        // Cleared: nothing to remove from the empty object.
        assert_eq!(merge_patch(&update(true, &[], &["x"])), "{}");
    }

    #[test]
    fn values_round_trip_as_strings() {
        let data: Data = [("k", "{\"n\":[1,2]}"), ("q\"", "1")].into_iter().collect();
        let columns = Columns {
            created_at: 1,
            last_activity: 2,
            expires_at: 3,
            user: Some("ann".into()),
            idle_ms: Some(60_000),
            lifetime_ms: None,
            persistent: Some(true),
            authenticated_at: Some(1),
            data: data_json(&data),
        };
        let record = decode(columns).unwrap();
        assert_eq!(record.data, data);
        assert_eq!(record.meta.expiry.idle, Some(Duration::from_secs(60)));
        assert_eq!(record.meta.user.as_deref(), Some("ann"));
        assert_eq!(
            record.meta.authenticated_at,
            Some(Timestamp::from_unix_millis(1))
        );
    }

    #[test]
    fn broken_columns_are_corrupt() {
        let good = || Columns {
            created_at: 1,
            last_activity: 2,
            expires_at: 3,
            user: None,
            idle_ms: None,
            lifetime_ms: None,
            persistent: None,
            authenticated_at: None,
            data: "{}".into(),
        };
        let cases: Vec<Columns> = vec![
            Columns {
                data: "[1]".into(),
                ..good()
            },
            Columns {
                data: r#"{"a":1}"#.into(),
                ..good()
            },
            Columns {
                data: "garbage".into(),
                ..good()
            },
            Columns {
                created_at: -1,
                ..good()
            },
            Columns {
                idle_ms: Some(-5),
                ..good()
            },
            Columns {
                authenticated_at: Some(-5),
                ..good()
            },
        ];
        for columns in cases {
            assert!(matches!(decode(columns), Err(Error::Corrupt(_))));
        }
        assert!(decode(good()).is_ok());
    }

    #[test]
    fn ids_need_sixteen_bytes() {
        assert!(id_from_bytes(&[0; 16]).is_some());
        assert!(id_from_bytes(&[0; 15]).is_none());
    }
}
