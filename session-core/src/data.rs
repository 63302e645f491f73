//! `Data`: a session's values, compact and shared.

use std::fmt;
use std::sync::Arc;

/// A session's values: key to JSON text, kept sorted by key in one shared
/// allocation.
///
/// Values stay as text until a handler asks for one, so values nobody
/// touched are never decoded or re-encoded. Cloning shares the allocation
/// (a reference count), so a store hands a loaded session its values
/// without copying them, and a session of a few short values costs one
/// small block of memory rather than a hash table and a string per key and
/// value. Lookups are a binary search. A `Data` never changes in place:
/// [`with_changes`](Self::with_changes) builds the next one.
///
/// ```
/// use session_core::Data;
///
/// let data: Data = [("theme", "\"dark\""), ("n", "3")].into_iter().collect();
/// assert_eq!(data.get("n"), Some("3"));
/// assert_eq!(data.keys().collect::<Vec<_>>(), ["n", "theme"]);
/// assert_eq!(data.bytes(), 1 + 1 + 5 + 6);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Data(Option<Arc<[u8]>>);

// Layout of the allocation: the entry count `n` (u32, little-endian), then
// for each entry the end of its key and the end of its value (u32 each,
// offsets into the text), then the text: key 0, value 0, key 1, value 1, ...
// Keys are sorted and unique. An empty map has no allocation.
const WORD: usize = 4;

impl Data {
    /// An empty map (no allocation).
    pub const fn new() -> Self {
        Self(None)
    }

    fn raw(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }

    fn word(&self, at: usize) -> usize {
        let raw = self.raw();
        let mut bytes = [0u8; WORD];
        bytes.copy_from_slice(&raw[at..at + WORD]);
        u32::from_le_bytes(bytes) as usize
    }

    /// How many keys hold values.
    pub fn len(&self) -> usize {
        if self.0.is_none() { 0 } else { self.word(0) }
    }

    /// Whether no key holds a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn text_start(&self) -> usize {
        WORD + self.len() * 2 * WORD
    }

    /// The byte ranges, within the text, of entry `i`'s key and value.
    fn ranges(&self, i: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let start = if i == 0 {
            0
        } else {
            self.word(WORD + (2 * i - 1) * WORD)
        };
        let key_end = self.word(WORD + 2 * i * WORD);
        let value_end = self.word(WORD + (2 * i + 1) * WORD);
        (start..key_end, key_end..value_end)
    }

    fn text(&self, range: std::ops::Range<usize>) -> &[u8] {
        let base = self.text_start();
        &self.raw()[base + range.start..base + range.end]
    }

    fn entry(&self, i: usize) -> (&str, &str) {
        let (key, value) = self.ranges(i);
        // Built from `String`s at these boundaries, so always UTF-8.
        let as_str = |bytes| std::str::from_utf8(bytes).unwrap_or_default();
        (as_str(self.text(key)), as_str(self.text(value)))
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.text(self.ranges(mid).0).cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(low)
    }

    /// The JSON text under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.entry(i).1)
    }

    /// Whether `key` holds a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// The keys and their JSON text, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The bytes of the keys plus their JSON text: the measure of
    /// [`max_session_bytes`](crate::SessionConfig::max_session_bytes).
    pub fn bytes(&self) -> usize {
        match self.len() {
            0 => 0,
            n => self.ranges(n - 1).1.end,
        }
    }

    /// This map with `removed` keys gone and `set` keys written (after
    /// dropping every key first when `cleared`), as one new map. A key both
    /// removed and set ends up set.
    pub fn with_changes(
        &self,
        cleared: bool,
        removed: &[String],
        set: Vec<(String, String)>,
    ) -> Self {
        let removed: std::collections::HashSet<&str> = removed.iter().map(String::as_str).collect();
        let kept = self
            .iter()
            .filter(|_| !cleared)
            .filter(|(k, _)| !removed.contains(k));
        // `build` keeps the last of equal keys: a set key overrides a kept one.
        let mut entries: Vec<(&str, &str)> = kept.collect();
        entries.extend(set.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self::build(entries)
    }

    /// Builds from entries; of a key given twice, the last wins.
    fn build(mut entries: Vec<(&str, &str)>) -> Self {
        // Stable sort, then keep the last of equal keys.
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut unique: Vec<(&str, &str)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match unique.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => unique.push(entry),
            }
        }
        if unique.is_empty() {
            return Self(None);
        }
        let text: usize = unique.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut raw = Vec::with_capacity(WORD + unique.len() * 2 * WORD + text);
        let word = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        raw.extend_from_slice(&word(unique.len()));
        let mut end = 0;
        for (k, v) in &unique {
            end += k.len();
            raw.extend_from_slice(&word(end));
            end += v.len();
            raw.extend_from_slice(&word(end));
        }
        for (k, v) in &unique {
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        Self(Some(Arc::from(raw)))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Data {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let owned: Vec<(K, V)> = iter.into_iter().collect();
        Self::build(
            owned
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_ref()))
                .collect(),
        )
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_last_wins_and_lookups_find_every_key() {
        let data: Data = [("b", "2"), ("a", "1"), ("c", "3"), ("a", "9")]
            .into_iter()
            .collect();
        assert_eq!(data.len(), 3);
        assert_eq!(
            data.iter().collect::<Vec<_>>(),
            [("a", "9"), ("b", "2"), ("c", "3")]
        );
        for (k, v) in [("a", "9"), ("b", "2"), ("c", "3")] {
            assert_eq!(data.get(k), Some(v));
        }
        assert_eq!(data.get("d"), None);
        assert_eq!(data.get(""), None);
        assert_eq!(data.bytes(), 6);
    }

    #[test]
    fn empty_keys_values_and_unicode_round_trip() {
        let data: Data = [("", "\"\""), ("ключ", "\"значение\""), ("k", "")]
            .into_iter()
            .collect();
        assert_eq!(data.get(""), Some("\"\""));
        assert_eq!(data.get("ключ"), Some("\"значение\""));
        assert_eq!(data.get("k"), Some(""));
        let empty = Data::new();
        assert!(empty.is_empty() && empty.get("k").is_none() && empty.bytes() == 0);
        assert_eq!(Data::from_iter(Vec::<(String, String)>::new()), empty);
    }

    #[test]
    fn with_changes_merges_as_an_update_does() {
        let data: Data = [("a", "1"), ("b", "2"), ("c", "3")].into_iter().collect();
        let next = data.with_changes(
            false,
            &["b".to_owned(), "zz".to_owned()],
            vec![("c".into(), "30".into()), ("d".into(), "4".into())],
        );
        assert_eq!(
            next.iter().collect::<Vec<_>>(),
            [("a", "1"), ("c", "30"), ("d", "4")]
        );
        let cleared = data.with_changes(true, &[], vec![("x".into(), "1".into())]);
        assert_eq!(cleared.iter().collect::<Vec<_>>(), [("x", "1")]);
        assert!(data.with_changes(true, &[], vec![]).is_empty());
        // Equal maps compare equal however they were built.
        let same: Data = [("d", "4"), ("c", "30"), ("a", "1")].into_iter().collect();
        assert_eq!(next, same);
    }

    #[test]
    fn many_keys_are_found_by_binary_search() {
        let data: Data = (0..1000)
            .map(|i| (format!("k{i}"), i.to_string()))
            .collect();
        for i in (0..1000).step_by(37) {
            assert_eq!(data.get(&format!("k{i}")), Some(i.to_string().as_str()));
        }
        assert!(!data.contains_key("k1000"));
    }
}
