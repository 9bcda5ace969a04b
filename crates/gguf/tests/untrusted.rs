//! Untrusted GGUF headers: absurd counts, lengths and dimensions are refused by comparing them with the file's
//! size before anything is allocated for them, with an error naming the field and its byte offset.

use std::path::PathBuf;

use temper_gguf::{GgufError, GgufFile, GgufWriter};

fn open_bytes(name: &str, bytes: &[u8]) -> Result<GgufFile, GgufError> {
    let path: PathBuf = std::env::temp_dir().join(format!(
        "temper-gguf-untrusted-{}-{name}.gguf",
        std::process::id()
    ));
    std::fs::write(&path, bytes).expect("write temp file");
    let result = GgufFile::open(&path);
    std::fs::remove_file(&path).ok();
    result
}

fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(n_tensors.to_le_bytes());
    b.extend(n_kv.to_le_bytes());
    b
}

fn string(b: &mut Vec<u8>, s: &[u8]) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s);
}

#[test]
fn absurd_counts_are_refused_against_the_file_size() {
    for (n_tensors, n_kv, field) in [
        (u64::MAX, 0, "tensor_count"),
        (1 << 40, 0, "tensor_count"),
        (0, u64::MAX, "kv_count"),
    ] {
        let e = open_bytes("counts", &header(n_tensors, n_kv))
            .expect_err("must fail")
            .to_string();
        assert!(e.contains(field) && e.contains("announced at byte"), "{e}");
    }
}

#[test]
fn an_absurd_string_length_is_refused_before_the_string_is_read() {
    // a key claiming 2^63 bytes, then one claiming just one byte more than the file has
    for len in [1u64 << 63, 16] {
        let mut b = header(0, 1);
        b.extend(len.to_le_bytes());
        b.extend(b"short");
        let e = open_bytes("strlen", &b).expect_err("must fail");
        assert!(matches!(e, GgufError::Truncated { offset: 32, .. }), "{e}");
        assert!(e.to_string().contains("the key of metadata pair 0"), "{e}");
    }
}

#[test]
fn an_absurd_array_length_is_refused_before_the_array_is_allocated() {
    // arrays of u64 (8 bytes each), of strings (at least 8 each) and of arrays (at least 8 each)
    for item_type in [10u32, 8, 9] {
        let mut b = header(0, 1);
        string(&mut b, b"k");
        b.extend(9u32.to_le_bytes());
        b.extend(item_type.to_le_bytes());
        b.extend((u64::MAX / 16).to_le_bytes());
        b.extend([0u8; 64]);
        let e = open_bytes("arrlen", &b).expect_err("must fail").to_string();
        assert!(e.contains("array items of key \"k\""), "{e}");
    }
}

#[test]
fn absurd_dimensions_are_refused() {
    // a dimension of 2^64 - 1
    let mut w = GgufWriter::new();
    w.tensor_f32("t", &[1], &[1.0]);
    let mut bytes = w.to_bytes();
    // tensor info: name (8 + 1), n_dims (4), dims[0] (8)
    let dim_at = 24 + 8 + 1 + 4;
    bytes[dim_at..dim_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = open_bytes("dimlen", &bytes)
        .expect_err("must fail")
        .to_string();
    assert!(
        e.contains("tensor \"t\"") && e.contains(&u64::MAX.to_string()),
        "{e}"
    );

    // dims that fit u64 but whose data (4 TiB of f32) the file does not hold
    let mut w = GgufWriter::new();
    w.tensor_f32("big", &[1 << 20, 1 << 20], &[]);
    let e = open_bytes("dims", &w.to_bytes()).expect_err("must fail");
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("\"big\" [1048576, 1048576]"), "{e}");
}
