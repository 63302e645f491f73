//! A Redis session hash of arbitrary fields and values through the
//! decoder: no panic; a record it accepts encodes to fields that decode to
//! the same record.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use session_redis::{decode_session_hash, encode_session_hash};

/// Field names drawn mostly from the layout, so the fuzzer reaches records
/// that decode, and the edges between them.
#[derive(Arbitrary, Debug)]
enum Field {
    Created,
    Last,
    Expires,
    User,
    Idle,
    Lifetime,
    Persistent,
    Data(Vec<u8>),
    OtherMeta(Vec<u8>),
    Raw(Vec<u8>),
}

impl Field {
    fn name(self) -> Vec<u8> {
        let fixed = |s: &str| s.as_bytes().to_vec();
        let prefixed = |p: &str, rest: Vec<u8>| [p.as_bytes(), &rest].concat();
        match self {
            Field::Created => fixed("m:created"),
            Field::Last => fixed("m:last"),
            Field::Expires => fixed("m:exp"),
            Field::User => fixed("m:user"),
            Field::Idle => fixed("m:idle"),
            Field::Lifetime => fixed("m:life"),
            Field::Persistent => fixed("m:pers"),
            Field::Data(key) => prefixed("d:", key),
            Field::OtherMeta(rest) => prefixed("m:", rest),
            Field::Raw(name) => name,
        }
    }
}

fuzz_target!(|fields: Vec<(Field, Vec<u8>)>| {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = fields.into_iter().map(|(f, v)| (f.name(), v)).collect();
    if let Ok(Some(record)) = decode_session_hash(pairs) {
        let encoded = encode_session_hash(&record)
            .into_iter()
            .map(|(f, v)| (f.into_bytes(), v.into_bytes()))
            .collect();
        let again = decode_session_hash(encoded).expect("an encoded record decodes");
        assert_eq!(again, Some(record));
    }
});
