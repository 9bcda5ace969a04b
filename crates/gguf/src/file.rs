//! `GgufFile`: opens and memory-maps a GGUF file, parses its header, hands out metadata and tensors.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::dequant::dequantize_into;
use crate::{GgmlType, GgufError, GgufValue};

/// The alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// At most this many dimensions per tensor (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// Arrays nested deeper than this are rejected (GGUF writers never nest more than once).
const MAX_ARRAY_DEPTH: u32 = 8;

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// The dimensions in GGUF order: `dims[0]` varies fastest (a GGUF `[in, out]` matrix has rows of `in`).
    pub dims: Vec<u64>,
    /// The element type.
    pub dtype: GgmlType,
    /// Offset of the tensor's data relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (the product of `dims`; 1 for a scalar).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Number of bytes of data.
    pub fn n_bytes(&self) -> u64 {
        (self.n_elements() / self.dtype.block_size() as u64)
            .saturating_mul(self.dtype.block_bytes() as u64)
    }

    /// The row-major (PyTorch) shape: `dims` reversed.
    pub fn shape(&self) -> Vec<usize> {
        #[allow(clippy::cast_possible_truncation)]
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A memory-mapped GGUF file (version 2 or 3) with its parsed header.
///
/// Opening reads only the header; tensor data stays in the map until asked for.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl GgufFile {
    /// Opens `path`, maps it and parses and checks the header: every tensor's type is known, its
    /// first dimension is a whole number of blocks and its data lies inside the file.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this value. Like every mmap-based reader
        // (llama.cpp, safetensors) we rely on nobody truncating the file while it is open; the
        // header is validated against the map's length before any slice is taken.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let header = parse_header(path, &map)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            version: header.version,
            metadata: header.metadata,
            by_name: header
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect(),
            tensors: header.tensors,
            alignment: header.alignment,
            data_offset: header.data_offset,
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the data section (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The absolute file offset where the data section starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata, sorted by key.
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    /// One metadata value.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    fn require(&self, key: &str) -> Result<&GgufValue, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            path: self.path.clone(),
            key: key.into(),
        })
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &GgufValue) -> GgufError {
        GgufError::WrongType {
            path: self.path.clone(),
            key: key.into(),
            expected,
            found: found.type_name(),
        }
    }

    /// An integer of any width (non-negative) as `u64`; errors name the key when missing or of another type.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| self.wrong_type(key, "a non-negative integer", v))
    }

    /// An `f32` or `f64` value as `f32`; errors name the key when missing or of another type.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f32()
            .ok_or_else(|| self.wrong_type(key, "f32 or f64", v))
    }

    /// A string value; errors name the key when missing or of another type.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong_type(key, "string", v))
    }

    /// An array value's items; errors name the key when missing or of another type.
    pub fn get_array(&self, key: &str) -> Result<&[GgufValue], GgufError> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong_type(key, "array", v))
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// One tensor's info.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    fn find(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor(name).ok_or_else(|| GgufError::TensorNotFound {
            path: self.path.clone(),
            name: name.into(),
        })
    }

    /// The raw (still quantized) bytes of a tensor, straight from the map.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self.find(name)?;
        // bounds were checked when the header was parsed
        #[allow(clippy::cast_possible_truncation)]
        let start = (self.data_offset + info.offset) as usize;
        #[allow(clippy::cast_possible_truncation)]
        let end = start + info.n_bytes() as usize;
        self.map
            .get(start..end)
            .ok_or_else(|| GgufError::Truncated {
                path: self.path.clone(),
                offset: start as u64,
                expected: format!("{} bytes of data of tensor {name:?}", end - start),
                file_len: self.map.len() as u64,
            })
    }

    /// Dequantized values in row-major order with shape = dims reversed (so a GGUF `[in, out]`
    /// matrix comes back as shape `[out, in]`, like the HF/PyTorch layout).
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), GgufError> {
        let info = self.find(name)?;
        let bytes = self.tensor_bytes(name)?;
        let mut values = Vec::new();
        dequantize_into(info.dtype, bytes, &mut values);
        Ok((values, info.shape()))
    }
}

/// What the header holds.
struct Header {
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_offset: u64,
}

/// A bounds-checked little-endian reader over the mapped bytes.
struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn truncated(&self, offset: usize, expected: impl Into<String>) -> GgufError {
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            expected: expected.into(),
            file_len: self.bytes.len() as u64,
        }
    }

    fn invalid(&self, offset: usize, reason: impl Into<String>) -> GgufError {
        GgufError::Invalid {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        let start = self.pos;
        let slice = start
            .checked_add(n)
            .and_then(|end| self.bytes.get(start..end))
            .ok_or_else(|| self.truncated(start, what))?;
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count that must fit `usize` and whose items (at least `min_item_bytes` each) fit in the rest of the file.
    fn count(&mut self, what: &str, min_item_bytes: usize) -> Result<usize, GgufError> {
        let at = self.pos;
        let n = self.u64(what)?;
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes as u64) > remaining {
            return Err(self.truncated(
                self.bytes.len(),
                format!("{n} items of {what} (announced at byte {at}) of at least {min_item_bytes} bytes each"),
            ));
        }
        usize::try_from(n)
            .map_err(|_| self.invalid(at, format!("{what} {n} does not fit in memory")))
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len_at = self.pos;
        let len = self.u64(&format!("the u64 length of {what}"))?;
        let start = self.pos;
        let len = usize::try_from(len)
            .map_err(|_| self.truncated(start, format!("{what} of {len} bytes")))?;
        let bytes = self.take(
            len,
            &format!("{what} of {len} bytes (length at byte {len_at})"),
        )?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 {
            path: self.path.to_path_buf(),
            offset: start as u64,
            what: what.into(),
        })
    }

    /// One value of type `type_id` (the type id itself was at `type_at`), for metadata key `key`.
    fn value(
        &mut self,
        type_id: u32,
        type_at: usize,
        key: &str,
        depth: u32,
    ) -> Result<GgufValue, GgufError> {
        let what = |t: &str| format!("the {t} value of key {key:?}");
        Ok(match type_id {
            0 => GgufValue::U8(self.array::<1>(&what("u8"))?[0]),
            1 => GgufValue::I8(i8::from_le_bytes(self.array(&what("i8"))?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(&what("u16"))?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(&what("i16"))?)),
            4 => GgufValue::U32(u32::from_le_bytes(self.array(&what("u32"))?)),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(&what("i32"))?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(&what("f32"))?)),
            7 => {
                let at = self.pos;
                match self.array::<1>(&what("bool"))?[0] {
                    0 => GgufValue::Bool(false),
                    1 => GgufValue::Bool(true),
                    b => {
                        return Err(self.invalid(
                            at,
                            format!("bool value of key {key:?} is {b}, expected 0 or 1"),
                        ));
                    }
                }
            }
            8 => GgufValue::String(self.string(&what("string"))?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.invalid(
                        type_at,
                        format!("arrays nested more than {MAX_ARRAY_DEPTH} deep in key {key:?}"),
                    ));
                }
                let item_at = self.pos;
                let item_type = self.u32(&format!("the array item type of key {key:?}"))?;
                let min_bytes = match item_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8..=12 => 8,
                    _ => 0,
                };
                if min_bytes == 0 {
                    return Err(GgufError::UnknownValueType {
                        path: self.path.to_path_buf(),
                        offset: item_at as u64,
                        key: key.into(),
                        type_id: item_type,
                    });
                }
                let n = self.count(&format!("array items of key {key:?}"), min_bytes)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(item_type, item_at, key, depth + 1)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::U64(u64::from_le_bytes(self.array(&what("u64"))?)),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(&what("i64"))?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(&what("f64"))?)),
            _ => {
                return Err(GgufError::UnknownValueType {
                    path: self.path.to_path_buf(),
                    offset: type_at as u64,
                    key: key.into(),
                    type_id,
                });
            }
        })
    }
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, GgufError> {
    let mut c = Cursor {
        path,
        bytes,
        pos: 0,
    };
    let magic = c.take(4, "the magic \"GGUF\"")?;
    if magic != b"GGUF" {
        return Err(GgufError::BadMagic {
            path: path.to_path_buf(),
            found: magic.to_vec(),
        });
    }
    let version = c.u32("the u32 version")?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    // a tensor info takes at least 8 (name length) + 4 + 4 + 8 bytes, a kv pair 8 + 4 + 1
    let n_tensors = c.count("tensor_count", 24)?;
    let n_kv = c.count("kv_count", 13)?;

    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key_at = c.pos;
        let key = c.string(&format!("the key of metadata pair {i}"))?;
        let type_at = c.pos;
        let type_id = c.u32(&format!("the u32 value type of key {key:?}"))?;
        let value = c.value(type_id, type_at, &key, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(c.invalid(key_at, format!("duplicate metadata key {key:?}")));
        }
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => a,
            _ => {
                return Err(c.invalid(
                    0,
                    format!("general.alignment is {v:?}, expected a power of two"),
                ));
            }
        },
    };

    let mut tensors = Vec::with_capacity(n_tensors);
    let mut names = BTreeMap::new();
    let mut info_offsets = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let info_at = c.pos;
        let name = c.string(&format!("the name of tensor {i}"))?;
        let dims_at = c.pos;
        let n_dims = c.u32(&format!("the u32 n_dims of tensor {name:?}"))?;
        if n_dims > MAX_DIMS {
            return Err(c.invalid(
                dims_at,
                format!("tensor {name:?} has {n_dims} dims, at most {MAX_DIMS} allowed"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(c.u64(&format!("dim {d} of tensor {name:?}"))?);
        }
        let type_at = c.pos;
        let type_id = c.u32(&format!("the u32 ggml type of tensor {name:?}"))?;
        let dtype = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownGgmlType {
            path: path.to_path_buf(),
            offset: type_at as u64,
            tensor: name.clone(),
            type_id,
        })?;
        let offset = c.u64(&format!("the u64 data offset of tensor {name:?}"))?;
        if dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .is_none()
        {
            return Err(c.invalid(
                dims_at,
                format!("tensor {name:?} dims {dims:?} overflow u64"),
            ));
        }
        let block = dtype.block_size() as u64;
        if dims.first().is_some_and(|&d0| d0 % block != 0) || (dims.is_empty() && block != 1) {
            return Err(c.invalid(
                dims_at,
                format!("tensor {name:?} dims {dims:?}: dims[0] is not a multiple of the {dtype} block size {block}"),
            ));
        }
        if names.insert(name.clone(), i).is_some() {
            return Err(c.invalid(info_at, format!("duplicate tensor name {name:?}")));
        }
        info_offsets.push(info_at);
        tensors.push(TensorInfo {
            name,
            dims,
            dtype,
            offset,
        });
    }

    let end_of_header = c.pos as u64;
    let data_offset = end_of_header.div_ceil(alignment) * alignment;
    let file_len = bytes.len() as u64;
    for (t, &info_at) in tensors.iter().zip(&info_offsets) {
        let n_bytes = t.n_bytes();
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(n_bytes));
        match (start, end) {
            (Some(_), Some(end)) if end <= file_len => {}
            _ => {
                return Err(GgufError::Truncated {
                    path: path.to_path_buf(),
                    offset: data_offset.saturating_add(t.offset),
                    expected: format!(
                        "{n_bytes} bytes of {} data for tensor {:?} {:?} (info at byte {info_at}, relative offset {})",
                        t.dtype, t.name, t.dims, t.offset
                    ),
                    file_len,
                });
            }
        }
        if usize::try_from(n_bytes).is_err() {
            return Err(c.invalid(
                info_at,
                format!("tensor {:?} is too large for this machine", t.name),
            ));
        }
    }
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}
