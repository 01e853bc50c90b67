//! A SentencePiece `tokenizer.model` (a `sentencepiece.ModelProto` protobuf), read and written
//! without a protobuf library: the reader takes the pieces (text, score, type), the trainer's
//! model type and byte fallback, and the normalizer's `add_dummy_prefix` /
//! `remove_extra_whitespaces`; `Message` encodes the same wire format (varints, fixed32
//! floats, length-delimited strings and messages) for the writer in `import`.
//!
//! Field numbers follow `sentencepiece_model.proto`: `ModelProto { pieces = 1; trainer_spec = 2;
//! normalizer_spec = 3; }`, `SentencePiece { piece = 1; score = 2; type = 3; }`,
//! `TrainerSpec { model_type = 3; vocab_size = 4; byte_fallback = 35; unk_id = 40; bos_id = 41;
//! eos_id = 42; pad_id = 43; }`, `NormalizerSpec { name = 1; add_dummy_prefix = 3;
//! remove_extra_whitespaces = 4; }`. Unknown fields are skipped, as protobuf readers do.

use std::path::Path;

/// What is wrong with a `tokenizer.model` file.
#[derive(Debug, thiserror::Error)]
pub enum SentencePieceError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a valid `ModelProto`.
    #[error(
        "tokenizer.model is not a valid SentencePiece model: {0} (re-save it with sentencepiece)"
    )]
    Malformed(String),
}

/// A piece's type (`SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    /// An ordinary piece (the default).
    Normal,
    /// The unknown-token piece.
    Unknown,
    /// A control symbol such as `<s>`.
    Control,
    /// A user-defined symbol, always kept whole.
    UserDefined,
    /// A byte-fallback piece `<0xNN>`.
    Byte,
    /// A piece that is never produced.
    Unused,
}

impl PieceType {
    fn from_proto(value: u64) -> Result<Self, SentencePieceError> {
        Ok(match value {
            1 => PieceType::Normal,
            2 => PieceType::Unknown,
            3 => PieceType::Control,
            4 => PieceType::UserDefined,
            5 => PieceType::Unused,
            6 => PieceType::Byte,
            other => {
                return Err(SentencePieceError::Malformed(format!(
                    "unknown piece type {other}"
                )))
            }
        })
    }

    /// The `SentencePiece.Type` value written to the protobuf.
    pub fn to_proto(self) -> u64 {
        match self {
            PieceType::Normal => 1,
            PieceType::Unknown => 2,
            PieceType::Control => 3,
            PieceType::UserDefined => 4,
            PieceType::Unused => 5,
            PieceType::Byte => 6,
        }
    }
}

/// One vocabulary entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The piece's text (with `▁` for spaces).
    pub piece: String,
    /// Its log-probability score.
    pub score: f32,
    /// Its type.
    pub kind: PieceType,
}

/// The algorithm the model was trained with (`TrainerSpec.ModelType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    /// Unigram language model (the default).
    Unigram,
    /// Byte-pair encoding.
    Bpe,
    /// Whitespace-delimited words.
    Word,
    /// Characters.
    Char,
}

impl ModelType {
    /// The `TrainerSpec.ModelType` value written to the protobuf.
    pub fn to_proto(self) -> u64 {
        match self {
            ModelType::Unigram => 1,
            ModelType::Bpe => 2,
            ModelType::Word => 3,
            ModelType::Char => 4,
        }
    }
}

/// The parts of a SentencePiece model that conversion needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SentencePieceModel {
    /// The vocabulary, by id.
    pub pieces: Vec<Piece>,
    /// Training algorithm.
    pub model_type: ModelType,
    /// Whether unknown characters fall back to `<0xNN>` byte pieces.
    pub byte_fallback: bool,
    /// Whether a `▁` is prepended to the input (`NormalizerSpec.add_dummy_prefix`).
    pub add_dummy_prefix: bool,
    /// Whether runs of whitespace are collapsed (`NormalizerSpec.remove_extra_whitespaces`).
    pub remove_extra_whitespaces: bool,
    /// The normalizer's name (e.g. `identity`, `nmt_nfkc`), if given.
    pub normalizer_name: Option<String>,
}

impl SentencePieceModel {
    /// Reads and parses a `tokenizer.model` file.
    pub fn read(path: &Path) -> Result<Self, SentencePieceError> {
        let bytes = std::fs::read(path).map_err(|source| SentencePieceError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes)
    }

    /// Parses the bytes of a serialized `ModelProto`.
    pub fn parse(bytes: &[u8]) -> Result<Self, SentencePieceError> {
        let mut model = SentencePieceModel {
            pieces: Vec::new(),
            model_type: ModelType::Unigram,
            byte_fallback: false,
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            normalizer_name: None,
        };
        let mut reader = Reader::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => model.pieces.push(parse_piece(b)?),
                (2, Value::Bytes(b)) => parse_trainer_spec(b, &mut model)?,
                (3, Value::Bytes(b)) => parse_normalizer_spec(b, &mut model)?,
                (1..=3, _) => {
                    return Err(SentencePieceError::Malformed(format!(
                        "field {field} of ModelProto has the wrong wire type"
                    )))
                }
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err(SentencePieceError::Malformed("it has no pieces".into()));
        }
        Ok(model)
    }
}

fn parse_piece(bytes: &[u8]) -> Result<Piece, SentencePieceError> {
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                piece.piece = String::from_utf8(b.to_vec()).map_err(|_| {
                    SentencePieceError::Malformed("a piece is not valid UTF-8".into())
                })?;
            }
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(v)) => piece.kind = PieceType::from_proto(v)?,
            (1..=3, _) => {
                return Err(SentencePieceError::Malformed(format!(
                    "field {field} of SentencePiece has the wrong wire type"
                )))
            }
            _ => {}
        }
    }
    Ok(piece)
}

fn parse_trainer_spec(
    bytes: &[u8],
    model: &mut SentencePieceModel,
) -> Result<(), SentencePieceError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (3, Value::Varint(v)) => {
                model.model_type = match v {
                    1 => ModelType::Unigram,
                    2 => ModelType::Bpe,
                    3 => ModelType::Word,
                    4 => ModelType::Char,
                    other => {
                        return Err(SentencePieceError::Malformed(format!(
                            "unknown model type {other}"
                        )))
                    }
                }
            }
            (35, Value::Varint(v)) => model.byte_fallback = v != 0,
            _ => {}
        }
    }
    Ok(())
}

fn parse_normalizer_spec(
    bytes: &[u8],
    model: &mut SentencePieceModel,
) -> Result<(), SentencePieceError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                model.normalizer_name = Some(String::from_utf8_lossy(b).into_owned());
            }
            (3, Value::Varint(v)) => model.add_dummy_prefix = v != 0,
            (4, Value::Varint(v)) => model.remove_extra_whitespaces = v != 0,
            _ => {}
        }
    }
    Ok(())
}

/// One decoded field value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1; skipped: no field read here uses it.
    Fixed64,
    /// Wire type 2: a string, bytes or a nested message.
    Bytes(&'a [u8]),
    /// Wire type 5 (a `float` is its bits).
    Fixed32(u32),
}

/// A protobuf wire-format reader over a byte slice.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn truncated() -> SentencePieceError {
        SentencePieceError::Malformed("the data ends in the middle of a field".into())
    }

    fn varint(&mut self) -> Result<u64, SentencePieceError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(Self::truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SentencePieceError::Malformed(
            "a varint is longer than 10 bytes".into(),
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SentencePieceError> {
        let end = self.pos.checked_add(n).ok_or_else(Self::truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or_else(Self::truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// The next `(field number, value)`, or `None` at the end.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, SentencePieceError> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Self::truncated())?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(
                    b.try_into().map_err(|_| Self::truncated())?,
                ))
            }
            wire => {
                return Err(SentencePieceError::Malformed(format!(
                    "unsupported wire type {wire} (field {field})"
                )))
            }
        };
        if field == 0 {
            return Err(SentencePieceError::Malformed("field number 0".into()));
        }
        Ok(Some((field, value)))
    }
}

/// Protobuf wire types.
const WIRE_VARINT: u32 = 0;
const WIRE_LEN: u32 = 2;
const WIRE_FIXED32: u32 = 5;

/// A protobuf message under construction (proto2 wire format).
#[derive(Default)]
pub(crate) struct Message(Vec<u8>);

impl Message {
    /// The encoded bytes.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }

    /// An unsigned varint field (`uint32`, `uint64`, an enum).
    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        self.key(field, WIRE_VARINT);
        self.varint(v);
    }

    /// An `int32` field: negative values are sign-extended to 64 bits (10 bytes).
    pub(crate) fn int32(&mut self, field: u32, v: i32) {
        self.key(field, WIRE_VARINT);
        self.varint(i64::from(v) as u64);
    }

    /// A `bool` field.
    pub(crate) fn boolean(&mut self, field: u32, v: bool) {
        self.uint(field, u64::from(v));
    }

    /// A `float` field (fixed32).
    pub(crate) fn float(&mut self, field: u32, v: f32) {
        self.key(field, WIRE_FIXED32);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A `string` or `bytes` field.
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, WIRE_LEN);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
    }

    /// A nested message field.
    pub(crate) fn message(&mut self, field: u32, m: &Message) {
        self.bytes(field, &m.0);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Protobuf encoders for building test models by hand, over [`Message`].
    pub(crate) fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
        let mut m = Message::default();
        m.bytes(field, bytes);
        out.extend_from_slice(&m.into_bytes());
    }

    pub(crate) fn varint_field(field: u32, v: u64, out: &mut Vec<u8>) {
        let mut m = Message::default();
        m.uint(field, v);
        out.extend_from_slice(&m.into_bytes());
    }

    pub(crate) fn piece(text: &str, score: f32, kind: Option<u64>) -> Vec<u8> {
        let mut p = Vec::new();
        bytes_field(1, text.as_bytes(), &mut p);
        let mut m = Message::default();
        m.float(2, score);
        p.extend_from_slice(&m.into_bytes());
        if let Some(kind) = kind {
            varint_field(3, kind, &mut p);
        }
        p
    }

    /// A small model: `<pad>` (control), `<unk>`, `<0x41>` (byte), `▁a`, `b` (default type),
    /// `<user>` (user-defined), a BPE trainer spec with byte fallback and a normalizer without
    /// the dummy prefix.
    pub(crate) fn tiny_model() -> Vec<u8> {
        let mut m = Vec::new();
        for p in [
            piece("<pad>", 0.0, Some(3)),
            piece("<unk>", 0.0, Some(2)),
            piece("<0x41>", 0.0, Some(6)),
            piece("▁a", -1.5, None),
            piece("b", -2.25, Some(1)),
            piece("<user>", 0.0, Some(4)),
        ] {
            bytes_field(1, &p, &mut m);
        }
        let mut trainer = Vec::new();
        bytes_field(2, b"prefix", &mut trainer); // model_prefix: skipped
        varint_field(3, 2, &mut trainer); // BPE
        varint_field(4, 6, &mut trainer);
        varint_field(35, 1, &mut trainer);
        bytes_field(2, &trainer, &mut m);
        let mut normalizer = Vec::new();
        bytes_field(1, b"identity", &mut normalizer);
        varint_field(3, 0, &mut normalizer);
        bytes_field(3, &normalizer, &mut m);
        // An unknown top-level field (self_test_data) is skipped.
        bytes_field(4, b"\x0a\x00", &mut m);
        m
    }

    #[test]
    fn parses_a_hand_encoded_model() {
        let model = SentencePieceModel::parse(&tiny_model()).expect("parse");
        let texts: Vec<&str> = model.pieces.iter().map(|p| p.piece.as_str()).collect();
        assert_eq!(texts, ["<pad>", "<unk>", "<0x41>", "▁a", "b", "<user>"]);
        let kinds: Vec<PieceType> = model.pieces.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                PieceType::Control,
                PieceType::Unknown,
                PieceType::Byte,
                PieceType::Normal,
                PieceType::Normal,
                PieceType::UserDefined
            ]
        );
        assert_eq!(model.pieces[3].score, -1.5);
        assert_eq!(model.pieces[4].score, -2.25);
        assert_eq!(model.model_type, ModelType::Bpe);
        assert!(model.byte_fallback);
        assert!(!model.add_dummy_prefix);
        assert!(model.remove_extra_whitespaces);
        assert_eq!(model.normalizer_name.as_deref(), Some("identity"));
    }

    #[test]
    fn defaults_when_specs_are_absent() {
        let mut m = Vec::new();
        bytes_field(1, &piece("x", 0.5, None), &mut m);
        let model = SentencePieceModel::parse(&m).expect("parse");
        assert_eq!(model.model_type, ModelType::Unigram);
        assert!(!model.byte_fallback);
        assert!(model.add_dummy_prefix);
    }

    #[test]
    fn rejects_truncated_and_empty_models() {
        let model = tiny_model();
        for cut in [1, 5, model.len() / 2, model.len() - 1] {
            assert!(
                SentencePieceModel::parse(&model[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(SentencePieceModel::parse(&[]).is_err());
        // Wire type 3 (groups) is refused.
        assert!(SentencePieceModel::parse(&[0x0b]).is_err());
        // A piece type outside the enum.
        let mut m = Vec::new();
        bytes_field(1, &piece("x", 0.0, Some(9)), &mut m);
        assert!(SentencePieceModel::parse(&m).is_err());
    }

    #[test]
    fn negative_ids_are_ten_byte_varints() {
        let mut m = Message::default();
        m.int32(43, -1);
        let bytes = m.into_bytes();
        assert_eq!(bytes.len(), 2 + 10);
        let mut reader = Reader::new(&bytes);
        assert_eq!(
            reader.next_field().expect("field"),
            Some((43, Value::Varint(u64::MAX)))
        );
        assert_eq!(reader.next_field().expect("end"), None);
    }
}
