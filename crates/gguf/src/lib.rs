//! temper-gguf: a memory-mapped reader for llama.cpp's GGUF files (v2 and v3), with dequantization to f32.
//!
//! [`GgufFile::open`] maps the file and parses only the header (metadata and tensor infos), checking
//! every field against the file's length, so a bad or truncated file gives a [`GgufError`] naming the
//! byte offset instead of a panic. [`GgufFile::tensor_f32`] decodes one tensor (F32, F16, BF16, F64,
//! I8–I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 and the K-quants Q2_K–Q6_K) into a row-major `Vec<f32>`
//! whose shape is the GGUF dims reversed (the PyTorch layout). [`GgufWriter`] builds small files.
//!
//! ```
//! use temper_gguf::{GgufFile, GgufValue, GgufWriter};
//!
//! let path = std::env::temp_dir().join(format!("temper-gguf-doc-{}.gguf", std::process::id()));
//! GgufWriter::new()
//!     .metadata("llama.block_count", GgufValue::U32(2))
//!     .tensor_f32("w", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
//!     .write(&path)?;
//! let gguf = GgufFile::open(&path)?;
//! assert_eq!(gguf.get_u64("llama.block_count")?, 2);
//! let (values, shape) = gguf.tensor_f32("w")?;
//! assert_eq!(shape, [2, 3]); // GGUF dims [3, 2] = 2 rows of 3
//! assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
//! # drop(gguf);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), temper_gguf::GgufError>(())
//! ```

mod dequant;
mod dtype;
mod error;
mod file;
mod quant;
mod value;
mod writer;

pub use dtype::GgmlType;
pub use error::GgufError;
pub use quant::{QuantizeError, dequantize, quantize};
pub use file::{DEFAULT_ALIGNMENT, GgufFile, TensorInfo};
pub use value::GgufValue;
pub use writer::GgufWriter;
