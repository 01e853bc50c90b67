//! [`Metadata`]: the ordered key/value section of a GGUF file, with typed getters.

use std::collections::HashMap;

use crate::error::{short, GgufError};
use crate::value::{Array, GgufString, Value, ValueType};

/// The metadata key/value pairs of a GGUF file, in file order, with lookup by key.
///
/// Keys are unique: the reader rejects duplicates, and [`Metadata::insert`] replaces an existing
/// value in place (keeping its position).
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for `capacity` pairs.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Metadata {
            entries: Vec::with_capacity(capacity),
            index: HashMap::with_capacity(capacity),
        }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let &i = self.index.get(key)?;
        self.entries.get(i).map(|(_, v)| v)
    }

    /// The value for `key` if it is a UTF-8 string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// The value for `key` if it is a string (any bytes).
    pub fn get_string(&self, key: &str) -> Option<&GgufString> {
        self.get(key)?.as_string()
    }

    /// The value for `key` if it is an integer of any width or signedness that fits in `u32`.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        self.get(key)?.as_u32()
    }

    /// The value for `key` if it is a non-negative integer of any width.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// The value for `key` if it is an integer of any width that fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// The value for `key` if it is an `f32` (or an `f64`, narrowed).
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key)?.as_f32()
    }

    /// The value for `key` if it is a `bool`.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// The value for `key` if it is an array.
    pub fn get_array(&self, key: &str) -> Option<&Array> {
        self.get(key)?.as_array()
    }

    /// The length of the array for `key` if it is an array of strings (e.g. the vocabulary in
    /// `tokenizer.ggml.tokens`).
    pub fn get_string_array_len(&self, key: &str) -> Option<usize> {
        let a = self.get_array(key)?;
        (a.element_type() == ValueType::String).then(|| a.len())
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Sets `key` to `value`. A new key goes last; an existing key keeps its position and its
    /// old value is returned.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        if let Some(&i) = self.index.get(&key) {
            if let Some(slot) = self.entries.get_mut(i) {
                return Some(std::mem::replace(&mut slot.1, value));
            }
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        None
    }

    /// Removes `key`, returning its value; later pairs move up one position.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.index.remove(key)?;
        if i >= self.entries.len() {
            return None;
        }
        let (_, value) = self.entries.remove(i);
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        Some(value)
    }

    /// Appends a pair read from a file, rejecting a key that is already present.
    pub(crate) fn push_unique(&mut self, key: String, value: Value) -> Result<(), GgufError> {
        if self.index.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key: short(&key) });
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }
}

impl PartialEq for Metadata {
    /// Equal when the same pairs appear in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Metadata {}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Metadata::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ordered_insert_replace_remove() {
        let mut m = Metadata::new();
        assert_eq!(m.insert("a", 1u32), None);
        m.insert("b", "x");
        m.insert("c", -3i32);
        assert_eq!(m.insert("a", 2u8), Some(Value::U32(1)));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(m.get_u32("a"), Some(2));
        assert_eq!(m.get_str("b"), Some("x"));
        assert_eq!(m.get_u32("c"), None);
        assert_eq!(m.get_i64("c"), Some(-3));
        assert_eq!(m.remove("b"), Some(Value::from("x")));
        assert_eq!(m.get_i64("c"), Some(-3));
        assert_eq!(m.len(), 2);
        assert!(m.push_unique("a".into(), Value::U8(0)).is_err());
        m.insert("t", Array::from(vec!["p", "q"]));
        assert_eq!(m.get_string_array_len("t"), Some(2));
        m.insert("n", Array::from(vec![1u32]));
        assert_eq!(m.get_string_array_len("n"), None);
        let collected: Metadata = m.iter().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(collected, m);
    }
}
