//! Metadata values: [`ValueType`], [`GgufString`], [`Value`], typed [`Array`]s and the borrowed
//! [`ValueRef`] view used when iterating arrays.
//!
//! Arrays are stored typed ([`ArrayData`]: a `Vec<u32>` for a `u32` array, a
//! `Vec<GgufString>` for a string array, ...) rather than as `Vec<Value>`: a 262 144-token
//! vocabulary costs what its strings cost, and a hostile file cannot turn one byte on disk into
//! a 40-byte `Value` in memory.
//!
//! Equality compares floats by bit pattern (so `NaN == NaN` and `0.0 != -0.0`): two values are
//! equal exactly when they serialize to the same bytes.

use std::fmt;

/// The type tag of a metadata value, with its on-disk id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    /// `u8` (id 0).
    U8,
    /// `i8` (id 1).
    I8,
    /// `u16` (id 2).
    U16,
    /// `i16` (id 3).
    I16,
    /// `u32` (id 4).
    U32,
    /// `i32` (id 5).
    I32,
    /// `f32` (id 6).
    F32,
    /// `bool`, one byte 0 or 1 (id 7).
    Bool,
    /// Length-prefixed string (id 8).
    String,
    /// Typed, length-prefixed array (id 9).
    Array,
    /// `u64` (id 10).
    U64,
    /// `i64` (id 11).
    I64,
    /// `f64` (id 12).
    F64,
}

impl ValueType {
    /// The type with this on-disk id (0..=12).
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => ValueType::U8,
            1 => ValueType::I8,
            2 => ValueType::U16,
            3 => ValueType::I16,
            4 => ValueType::U32,
            5 => ValueType::I32,
            6 => ValueType::F32,
            7 => ValueType::Bool,
            8 => ValueType::String,
            9 => ValueType::Array,
            10 => ValueType::U64,
            11 => ValueType::I64,
            12 => ValueType::F64,
            _ => return None,
        })
    }

    /// The on-disk id.
    pub fn id(self) -> u32 {
        match self {
            ValueType::U8 => 0,
            ValueType::I8 => 1,
            ValueType::U16 => 2,
            ValueType::I16 => 3,
            ValueType::U32 => 4,
            ValueType::I32 => 5,
            ValueType::F32 => 6,
            ValueType::Bool => 7,
            ValueType::String => 8,
            ValueType::Array => 9,
            ValueType::U64 => 10,
            ValueType::I64 => 11,
            ValueType::F64 => 12,
        }
    }

    /// Lower-case name, e.g. `"u32"`, `"string"`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        }
    }

    /// Bytes one value of this type takes on disk, for fixed-size types; `None` for strings and
    /// arrays.
    pub fn fixed_size(self) -> Option<u64> {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => Some(1),
            ValueType::U16 | ValueType::I16 => Some(2),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(4),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(8),
            ValueType::String | ValueType::Array => None,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A GGUF string: raw bytes, usually but not always UTF-8 (some tokenizer vocabularies hold
/// byte tokens that are not valid UTF-8).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GgufString(Vec<u8>);

impl GgufString {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        GgufString(bytes)
    }

    /// The string as `&str`, or `None` if it is not valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The string decoded lossily (invalid UTF-8 replaced by U+FFFD).
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl fmt::Debug for GgufString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => write!(f, "b{:?}", self.to_string_lossy()),
        }
    }
}

impl fmt::Display for GgufString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl From<&str> for GgufString {
    fn from(s: &str) -> Self {
        GgufString(s.as_bytes().to_vec())
    }
}

impl From<String> for GgufString {
    fn from(s: String) -> Self {
        GgufString(s.into_bytes())
    }
}

impl From<Vec<u8>> for GgufString {
    fn from(b: Vec<u8>) -> Self {
        GgufString(b)
    }
}

impl From<&[u8]> for GgufString {
    fn from(b: &[u8]) -> Self {
        GgufString(b.to_vec())
    }
}

/// One metadata value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// String.
    String(GgufString),
    /// Array.
    Array(Array),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

impl Value {
    /// The on-disk type id (0..=12).
    pub fn type_id(&self) -> u32 {
        self.value_type().id()
    }

    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        self.as_value_ref().value_type()
    }

    /// A borrowed view with the same accessors.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::U8(v) => ValueRef::U8(*v),
            Value::I8(v) => ValueRef::I8(*v),
            Value::U16(v) => ValueRef::U16(*v),
            Value::I16(v) => ValueRef::I16(*v),
            Value::U32(v) => ValueRef::U32(*v),
            Value::I32(v) => ValueRef::I32(*v),
            Value::F32(v) => ValueRef::F32(*v),
            Value::Bool(v) => ValueRef::Bool(*v),
            Value::String(v) => ValueRef::String(v),
            Value::Array(v) => ValueRef::Array(v),
            Value::U64(v) => ValueRef::U64(*v),
            Value::I64(v) => ValueRef::I64(*v),
            Value::F64(v) => ValueRef::F64(*v),
        }
    }

    /// Any integer type whose value is non-negative, as `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_value_ref().as_u64()
    }

    /// Any integer type whose value fits in `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_value_ref().as_u32()
    }

    /// Any integer type whose value fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_value_ref().as_i64()
    }

    /// `f32` or `f64`, as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_value_ref().as_f64()
    }

    /// `f32`, or `f64` narrowed to `f32`.
    pub fn as_f32(&self) -> Option<f32> {
        self.as_value_ref().as_f32()
    }

    /// A `bool` value.
    pub fn as_bool(&self) -> Option<bool> {
        self.as_value_ref().as_bool()
    }

    /// A string value that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_value_ref().as_str()
    }

    /// A string value, whatever its bytes.
    pub fn as_string(&self) -> Option<&GgufString> {
        self.as_value_ref().as_string()
    }

    /// An array value.
    pub fn as_array(&self) -> Option<&Array> {
        self.as_value_ref().as_array()
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.as_value_ref() == other.as_value_ref()
    }
}

impl Eq for Value {}

macro_rules! value_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$v(v)
            }
        }
    )*};
}

value_from!(
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
    bool => Bool, GgufString => String, Array => Array, u64 => U64, i64 => I64, f64 => F64,
);

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}

/// A borrowed metadata value: what iterating an [`Array`] yields. Scalars by value, strings and
/// nested arrays by reference.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// String.
    String(&'a GgufString),
    /// Array.
    Array(&'a Array),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

impl<'a> ValueRef<'a> {
    /// The value's type.
    pub fn value_type(self) -> ValueType {
        match self {
            ValueRef::U8(_) => ValueType::U8,
            ValueRef::I8(_) => ValueType::I8,
            ValueRef::U16(_) => ValueType::U16,
            ValueRef::I16(_) => ValueType::I16,
            ValueRef::U32(_) => ValueType::U32,
            ValueRef::I32(_) => ValueType::I32,
            ValueRef::F32(_) => ValueType::F32,
            ValueRef::Bool(_) => ValueType::Bool,
            ValueRef::String(_) => ValueType::String,
            ValueRef::Array(_) => ValueType::Array,
            ValueRef::U64(_) => ValueType::U64,
            ValueRef::I64(_) => ValueType::I64,
            ValueRef::F64(_) => ValueType::F64,
        }
    }

    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::U8(v) => Value::U8(v),
            ValueRef::I8(v) => Value::I8(v),
            ValueRef::U16(v) => Value::U16(v),
            ValueRef::I16(v) => Value::I16(v),
            ValueRef::U32(v) => Value::U32(v),
            ValueRef::I32(v) => Value::I32(v),
            ValueRef::F32(v) => Value::F32(v),
            ValueRef::Bool(v) => Value::Bool(v),
            ValueRef::String(v) => Value::String(v.clone()),
            ValueRef::Array(v) => Value::Array(v.clone()),
            ValueRef::U64(v) => Value::U64(v),
            ValueRef::I64(v) => Value::I64(v),
            ValueRef::F64(v) => Value::F64(v),
        }
    }

    /// Any integer type whose value is non-negative, as `u64`.
    pub fn as_u64(self) -> Option<u64> {
        match self {
            ValueRef::U8(v) => Some(v.into()),
            ValueRef::U16(v) => Some(v.into()),
            ValueRef::U32(v) => Some(v.into()),
            ValueRef::U64(v) => Some(v),
            ValueRef::I8(v) => u64::try_from(v).ok(),
            ValueRef::I16(v) => u64::try_from(v).ok(),
            ValueRef::I32(v) => u64::try_from(v).ok(),
            ValueRef::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits in `u32`.
    pub fn as_u32(self) -> Option<u32> {
        self.as_u64().and_then(|v| u32::try_from(v).ok())
    }

    /// Any integer type whose value fits in `i64`.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            ValueRef::I8(v) => Some(v.into()),
            ValueRef::I16(v) => Some(v.into()),
            ValueRef::I32(v) => Some(v.into()),
            ValueRef::I64(v) => Some(v),
            ValueRef::U8(v) => Some(v.into()),
            ValueRef::U16(v) => Some(v.into()),
            ValueRef::U32(v) => Some(v.into()),
            ValueRef::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// `f32` or `f64`, as `f64`.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            ValueRef::F32(v) => Some(v.into()),
            ValueRef::F64(v) => Some(v),
            _ => None,
        }
    }

    /// `f32`, or `f64` narrowed to `f32`.
    pub fn as_f32(self) -> Option<f32> {
        match self {
            ValueRef::F32(v) => Some(v),
            ValueRef::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// A `bool` value.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            ValueRef::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A string value that is valid UTF-8.
    pub fn as_str(self) -> Option<&'a str> {
        self.as_string().and_then(GgufString::as_str)
    }

    /// A string value, whatever its bytes.
    pub fn as_string(self) -> Option<&'a GgufString> {
        match self {
            ValueRef::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array value.
    pub fn as_array(self) -> Option<&'a Array> {
        match self {
            ValueRef::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl PartialEq for ValueRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        use ValueRef as V;
        match (*self, *other) {
            (V::U8(a), V::U8(b)) => a == b,
            (V::I8(a), V::I8(b)) => a == b,
            (V::U16(a), V::U16(b)) => a == b,
            (V::I16(a), V::I16(b)) => a == b,
            (V::U32(a), V::U32(b)) => a == b,
            (V::I32(a), V::I32(b)) => a == b,
            (V::F32(a), V::F32(b)) => a.to_bits() == b.to_bits(),
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::String(a), V::String(b)) => a == b,
            (V::Array(a), V::Array(b)) => a == b,
            (V::U64(a), V::U64(b)) => a == b,
            (V::I64(a), V::I64(b)) => a == b,
            (V::F64(a), V::F64(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for ValueRef<'_> {}

/// The typed elements of an [`Array`].
#[derive(Clone)]
pub enum ArrayData {
    /// `u8` elements.
    U8(Vec<u8>),
    /// `i8` elements.
    I8(Vec<i8>),
    /// `u16` elements.
    U16(Vec<u16>),
    /// `i16` elements.
    I16(Vec<i16>),
    /// `u32` elements.
    U32(Vec<u32>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `f32` elements.
    F32(Vec<f32>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// String elements.
    String(Vec<GgufString>),
    /// Nested arrays (each with its own element type).
    Array(Vec<Array>),
    /// `u64` elements.
    U64(Vec<u64>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `f64` elements.
    F64(Vec<f64>),
}

fn bits_eq32(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn bits_eq64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl PartialEq for ArrayData {
    fn eq(&self, other: &Self) -> bool {
        use ArrayData as D;
        match (self, other) {
            (D::U8(a), D::U8(b)) => a == b,
            (D::I8(a), D::I8(b)) => a == b,
            (D::U16(a), D::U16(b)) => a == b,
            (D::I16(a), D::I16(b)) => a == b,
            (D::U32(a), D::U32(b)) => a == b,
            (D::I32(a), D::I32(b)) => a == b,
            (D::F32(a), D::F32(b)) => bits_eq32(a, b),
            (D::Bool(a), D::Bool(b)) => a == b,
            (D::String(a), D::String(b)) => a == b,
            (D::Array(a), D::Array(b)) => a == b,
            (D::U64(a), D::U64(b)) => a == b,
            (D::I64(a), D::I64(b)) => a == b,
            (D::F64(a), D::F64(b)) => bits_eq64(a, b),
            _ => false,
        }
    }
}

impl Eq for ArrayData {}

impl ArrayData {
    /// The element type.
    pub fn element_type(&self) -> ValueType {
        match self {
            ArrayData::U8(_) => ValueType::U8,
            ArrayData::I8(_) => ValueType::I8,
            ArrayData::U16(_) => ValueType::U16,
            ArrayData::I16(_) => ValueType::I16,
            ArrayData::U32(_) => ValueType::U32,
            ArrayData::I32(_) => ValueType::I32,
            ArrayData::F32(_) => ValueType::F32,
            ArrayData::Bool(_) => ValueType::Bool,
            ArrayData::String(_) => ValueType::String,
            ArrayData::Array(_) => ValueType::Array,
            ArrayData::U64(_) => ValueType::U64,
            ArrayData::I64(_) => ValueType::I64,
            ArrayData::F64(_) => ValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ArrayData::U8(v) => v.len(),
            ArrayData::I8(v) => v.len(),
            ArrayData::U16(v) => v.len(),
            ArrayData::I16(v) => v.len(),
            ArrayData::U32(v) => v.len(),
            ArrayData::I32(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
            ArrayData::String(v) => v.len(),
            ArrayData::Array(v) => v.len(),
            ArrayData::U64(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty array of the given element type.
    pub fn empty(element_type: ValueType) -> Self {
        match element_type {
            ValueType::U8 => ArrayData::U8(Vec::new()),
            ValueType::I8 => ArrayData::I8(Vec::new()),
            ValueType::U16 => ArrayData::U16(Vec::new()),
            ValueType::I16 => ArrayData::I16(Vec::new()),
            ValueType::U32 => ArrayData::U32(Vec::new()),
            ValueType::I32 => ArrayData::I32(Vec::new()),
            ValueType::F32 => ArrayData::F32(Vec::new()),
            ValueType::Bool => ArrayData::Bool(Vec::new()),
            ValueType::String => ArrayData::String(Vec::new()),
            ValueType::Array => ArrayData::Array(Vec::new()),
            ValueType::U64 => ArrayData::U64(Vec::new()),
            ValueType::I64 => ArrayData::I64(Vec::new()),
            ValueType::F64 => ArrayData::F64(Vec::new()),
        }
    }
}

/// A metadata array: an element type and its elements, stored typed (see [`ArrayData`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Array {
    data: ArrayData,
}

impl Array {
    /// Wraps typed elements.
    pub fn new(data: ArrayData) -> Self {
        Array { data }
    }

    /// The typed elements.
    pub fn data(&self) -> &ArrayData {
        &self.data
    }

    /// The typed elements, by value.
    pub fn into_data(self) -> ArrayData {
        self.data
    }

    /// The element type.
    pub fn element_type(&self) -> ValueType {
        self.data.element_type()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Element `index`, borrowed.
    pub fn get(&self, index: usize) -> Option<ValueRef<'_>> {
        Some(match &self.data {
            ArrayData::U8(v) => ValueRef::U8(*v.get(index)?),
            ArrayData::I8(v) => ValueRef::I8(*v.get(index)?),
            ArrayData::U16(v) => ValueRef::U16(*v.get(index)?),
            ArrayData::I16(v) => ValueRef::I16(*v.get(index)?),
            ArrayData::U32(v) => ValueRef::U32(*v.get(index)?),
            ArrayData::I32(v) => ValueRef::I32(*v.get(index)?),
            ArrayData::F32(v) => ValueRef::F32(*v.get(index)?),
            ArrayData::Bool(v) => ValueRef::Bool(*v.get(index)?),
            ArrayData::String(v) => ValueRef::String(v.get(index)?),
            ArrayData::Array(v) => ValueRef::Array(v.get(index)?),
            ArrayData::U64(v) => ValueRef::U64(*v.get(index)?),
            ArrayData::I64(v) => ValueRef::I64(*v.get(index)?),
            ArrayData::F64(v) => ValueRef::F64(*v.get(index)?),
        })
    }

    /// Iterates over the elements, borrowed.
    pub fn iter(&self) -> ArrayIter<'_> {
        ArrayIter {
            array: self,
            next: 0,
        }
    }

    /// The elements of a string array.
    pub fn as_strings(&self) -> Option<&[GgufString]> {
        match &self.data {
            ArrayData::String(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Debug for Array {
    /// Shows the element type, the length and at most the first 8 elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "Array<{}; {}>", self.element_type(), self.len())?;
        let mut list = f.debug_list();
        list.entries(self.iter().take(SHOWN));
        if self.len() > SHOWN {
            list.entry(&format_args!("…"));
        }
        list.finish()
    }
}

impl fmt::Debug for ArrayData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Array::new(self.clone()), f)
    }
}

impl<'a> IntoIterator for &'a Array {
    type Item = ValueRef<'a>;
    type IntoIter = ArrayIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over an [`Array`]'s elements, from [`Array::iter`].
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    array: &'a Array,
    next: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = ValueRef<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.array.get(self.next)?;
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.array.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for ArrayIter<'_> {}

macro_rules! array_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl From<Vec<$t>> for Array {
            fn from(v: Vec<$t>) -> Self {
                Array::new(ArrayData::$v(v))
            }
        }
    )*};
}

array_from!(
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
    bool => Bool, GgufString => String, Array => Array, u64 => U64, i64 => I64, f64 => F64,
);

impl From<Vec<&str>> for Array {
    fn from(v: Vec<&str>) -> Self {
        Array::new(ArrayData::String(
            v.into_iter().map(GgufString::from).collect(),
        ))
    }
}

impl From<Vec<String>> for Array {
    fn from(v: Vec<String>) -> Self {
        Array::new(ArrayData::String(
            v.into_iter().map(GgufString::from).collect(),
        ))
    }
}

impl From<ArrayData> for Array {
    fn from(data: ArrayData) -> Self {
        Array::new(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_conversions() {
        assert_eq!(Value::I32(7).as_u32(), Some(7));
        assert_eq!(Value::I32(-1).as_u32(), None);
        assert_eq!(Value::U64(1 << 40).as_u32(), None);
        assert_eq!(Value::U64(1 << 40).as_u64(), Some(1 << 40));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::U8(3).as_i64(), Some(3));
        assert_eq!(Value::F32(1.0).as_u64(), None);
        assert_eq!(Value::Bool(true).as_u64(), None);
        assert_eq!(Value::F64(0.5).as_f32(), Some(0.5));
    }

    #[test]
    fn float_equality_is_bitwise() {
        assert_eq!(Value::F32(f32::NAN), Value::F32(f32::NAN));
        assert_ne!(Value::F64(0.0), Value::F64(-0.0));
        assert_eq!(Array::from(vec![f32::NAN]), Array::from(vec![f32::NAN]));
        assert_ne!(Value::U32(1), Value::I32(1));
    }

    #[test]
    fn strings_and_arrays() {
        let s = GgufString::from(vec![0xff, b'a']);
        assert_eq!(s.as_str(), None);
        assert_eq!(s.to_string_lossy(), "\u{fffd}a");
        let a = Array::from(vec!["x", "y"]);
        assert_eq!(a.element_type(), ValueType::String);
        let v: Vec<&str> = a.iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(v, ["x", "y"]);
        assert_eq!(a.iter().len(), 2);
        assert_eq!(a.get(2), None);
        let big = Array::from((0..100u32).collect::<Vec<_>>());
        assert!(format!("{big:?}").len() < 100);
        for id in 0..13 {
            assert_eq!(ValueType::from_id(id).map(ValueType::id), Some(id));
        }
        assert_eq!(ValueType::from_id(13), None);
    }
}
