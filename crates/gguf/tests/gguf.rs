//! Integration tests of temper-gguf: written files round-trip, corrupt files error, gguf-py and the real SmolLM2 GGUF agree.

use std::path::{Path, PathBuf};

use serde_json::Value;
use temper_gguf::{GgmlType, GgufError, GgufFile, GgufValue, GgufWriter};

/// A fresh path in the temp dir, unique per test and process.
fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "temper-gguf-test-{}-{name}.gguf",
        std::process::id()
    ))
}

/// Writes `bytes` to a temp file and opens it.
fn open_bytes(name: &str, bytes: &[u8]) -> Result<GgufFile, GgufError> {
    let path = tmp(name);
    std::fs::write(&path, bytes).expect("write temp file");
    let result = GgufFile::open(&path);
    std::fs::remove_file(&path).ok();
    result
}

/// The SmolLM2 GGUF in the asset cache, or `None` when `TEMPER_SKIP_ASSETS=1` and it is absent.
fn smollm2_gguf() -> Option<PathBuf> {
    let home = match std::env::var_os("TEMPER_HOME") {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/temper"),
    };
    let path = home.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.exists() {
        return Some(path);
    }
    if std::env::var("TEMPER_SKIP_ASSETS").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "{} is missing: run `temper fetch smollm2` (or set TEMPER_SKIP_ASSETS=1 to skip)",
        path.display()
    );
}

fn every_metadata_type() -> Vec<(&'static str, GgufValue)> {
    vec![
        ("t.u8", GgufValue::U8(200)),
        ("t.i8", GgufValue::I8(-100)),
        ("t.u16", GgufValue::U16(60000)),
        ("t.i16", GgufValue::I16(-30000)),
        ("t.u32", GgufValue::U32(4_000_000_000)),
        ("t.i32", GgufValue::I32(-2_000_000_000)),
        ("t.f32", GgufValue::F32(1.25)),
        ("t.bool", GgufValue::Bool(true)),
        ("t.string", GgufValue::String("héllo 🤗".into())),
        ("t.u64", GgufValue::U64(u64::MAX)),
        ("t.i64", GgufValue::I64(i64::MIN)),
        ("t.f64", GgufValue::F64(-2.5e-300)),
        (
            "t.arr_str",
            GgufValue::Array(vec![
                GgufValue::String("a".into()),
                GgufValue::String(String::new()),
            ]),
        ),
        (
            "t.arr_i32",
            GgufValue::Array(vec![GgufValue::I32(-1), GgufValue::I32(7)]),
        ),
        ("t.arr_empty", GgufValue::Array(vec![])),
        (
            "t.arr_nested",
            GgufValue::Array(vec![
                GgufValue::Array(vec![GgufValue::F32(0.5)]),
                GgufValue::Array(vec![GgufValue::F32(1.5), GgufValue::F32(2.5)]),
            ]),
        ),
        ("t.bool_false", GgufValue::Bool(false)),
    ]
}

/// A file with every metadata type and a few tensors.
fn sample() -> GgufWriter {
    let mut w = GgufWriter::new();
    for (k, v) in every_metadata_type() {
        w.metadata(k, v);
    }
    w.tensor_f32("matrix", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    w.tensor_f32("vector", &[5], &[0.5, -0.5, 1.0, -1.0, 2.0]);
    let mut q8 = half::f16::from_f32(0.25).to_le_bytes().to_vec();
    q8.extend((0..32).map(|j| (j as i8 - 16) as u8));
    w.tensor("q8", &[32, 1], GgmlType::Q8_0, q8);
    w
}

#[test]
fn every_metadata_type_round_trips() {
    let gguf = open_bytes("meta", &sample().to_bytes()).expect("open");
    assert_eq!(gguf.version(), 3);
    assert_eq!(gguf.metadata().len(), every_metadata_type().len());
    for (key, value) in every_metadata_type() {
        assert_eq!(gguf.get(key), Some(&value), "{key}");
    }
    assert_eq!(
        gguf.get("t.arr_nested")
            .map(GgufValue::type_name)
            .as_deref(),
        Some("array[array[f32]]")
    );
}

#[test]
fn typed_getters_convert_and_name_the_key() {
    let gguf = open_bytes("getters", &sample().to_bytes()).expect("open");
    for (key, expected) in [
        ("t.u8", 200),
        ("t.u16", 60000),
        ("t.u32", 4_000_000_000),
        ("t.u64", u64::MAX),
    ] {
        assert_eq!(gguf.get_u64(key).expect(key), expected);
    }
    assert_eq!(
        gguf.get_u64("t.i8")
            .map_err(|e| e.to_string())
            .expect_err("must fail"),
        {
            format!(
                "{}: metadata key \"t.i8\" holds i8, expected a non-negative integer",
                tmp("getters").display()
            )
        }
    );
    assert_eq!(gguf.get_f32("t.f32").expect("f32"), 1.25);
    assert_eq!(gguf.get_f32("t.f64").expect("f64"), -2.5e-300f64 as f32);
    assert_eq!(gguf.get_str("t.string").expect("str"), "héllo 🤗");
    assert_eq!(gguf.get_array("t.arr_i32").expect("array").len(), 2);
    let missing = gguf.get_u64("llama.block_count").expect_err("must fail");
    assert!(
        matches!(&missing, GgufError::MissingKey { key, .. } if key == "llama.block_count"),
        "{missing}"
    );
    let wrong = gguf.get_str("t.u32").expect_err("must fail");
    assert!(
        wrong
            .to_string()
            .contains("\"t.u32\" holds u32, expected string"),
        "{wrong}"
    );
    let wrong = gguf.get_f32("t.string").expect_err("must fail");
    assert!(
        wrong
            .to_string()
            .contains("\"t.string\" holds string, expected f32 or f64"),
        "{wrong}"
    );
}

#[test]
fn tensors_come_back_row_major_with_reversed_dims() {
    let gguf = open_bytes("tensors", &sample().to_bytes()).expect("open");
    let names: Vec<&str> = gguf.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["matrix", "vector", "q8"]);
    let info = gguf.tensor("matrix").expect("matrix");
    assert_eq!(
        (info.dims.as_slice(), info.dtype, info.offset),
        (&[3u64, 2][..], GgmlType::F32, 0)
    );
    assert_eq!(gguf.tensor("vector").map(|t| t.offset), Some(32)); // 24 bytes padded to 32
    assert_eq!(gguf.tensor("q8").map(|t| t.offset), Some(64));
    assert_eq!(gguf.data_offset() % 32, 0);

    let (values, shape) = gguf.tensor_f32("matrix").expect("matrix");
    assert_eq!(shape, [2, 3]);
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let (values, shape) = gguf.tensor_f32("vector").expect("vector");
    assert_eq!(
        (values.as_slice(), shape.as_slice()),
        (&[0.5, -0.5, 1.0, -1.0, 2.0][..], &[5usize][..])
    );
    let (values, shape) = gguf.tensor_f32("q8").expect("q8");
    assert_eq!(shape, [1, 32]);
    assert_eq!(
        values,
        (0..32)
            .map(|j| 0.25 * (j as f32 - 16.0))
            .collect::<Vec<_>>()
    );
    assert_eq!(gguf.tensor_bytes("q8").expect("bytes").len(), 34);
    let err = gguf.tensor_f32("nope").expect_err("must fail");
    assert!(
        matches!(&err, GgufError::TensorNotFound { name, .. } if name == "nope"),
        "{err}"
    );
}

#[test]
fn custom_alignment_and_version_2_are_honoured() {
    let mut w = GgufWriter::new();
    w.version(2)
        .metadata("general.alignment", GgufValue::U32(64));
    w.tensor_f32("a", &[3], &[1.0, 2.0, 3.0])
        .tensor_f32("b", &[2], &[4.0, 5.0]);
    let gguf = open_bytes("align", &w.to_bytes()).expect("open");
    assert_eq!((gguf.version(), gguf.alignment()), (2, 64));
    assert_eq!(gguf.data_offset() % 64, 0);
    assert_eq!(gguf.tensor("b").map(|t| t.offset), Some(64));
    assert_eq!(gguf.tensor_f32("b").expect("b").0, [4.0, 5.0]);

    let mut w = GgufWriter::new();
    w.metadata("general.alignment", GgufValue::U32(24));
    let err = open_bytes("align-bad", &w.to_bytes()).expect_err("must fail");
    assert!(err.to_string().contains("general.alignment"), "{err}");
}

#[test]
fn every_quant_type_matches_gguf_py() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/quant_blocks.json")).expect("fixture is JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 10);
    let mut w = GgufWriter::new();
    let mut expected = Vec::new();
    for case in cases {
        let name = case["type"].as_str().expect("type");
        let dtype = (0..32)
            .filter_map(GgmlType::from_id)
            .find(|t| t.name() == name)
            .expect("known type");
        let hex = case["hex"].as_str().expect("hex");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
            .collect();
        let values: Vec<f32> = case["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_f64().expect("f") as f32)
            .collect();
        let n_blocks = bytes.len() / dtype.block_bytes();
        assert_eq!(values.len(), n_blocks * dtype.block_size(), "{name}");
        // one row of blocks per tensor: dims [block_size, n_blocks]
        w.tensor(
            name,
            &[dtype.block_size() as u64, n_blocks as u64],
            dtype,
            bytes,
        );
        expected.push((name.to_string(), values));
    }
    let gguf = open_bytes("quants", &w.to_bytes()).expect("open");
    for (name, values) in expected {
        let (got, shape) = gguf.tensor_f32(&name).expect("decode");
        assert_eq!(
            shape[1],
            gguf.tensor(&name).expect("info").dtype.block_size()
        );
        assert_eq!(got.len(), values.len());
        for (i, (g, e)) in got.iter().zip(&values).enumerate() {
            assert!(
                (g - e).abs() <= 1e-6 * e.abs().max(1e-3),
                "{name}[{i}]: {g} vs gguf-py {e}"
            );
        }
    }
}

#[test]
fn bad_magic_and_versions_are_rejected() {
    let mut bytes = sample().to_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    let err = open_bytes("magic", &bytes).expect_err("must fail");
    assert!(
        matches!(&err, GgufError::BadMagic { found, .. } if found == b"GGML"),
        "{err}"
    );
    assert!(err.to_string().contains("byte 0: bad magic"), "{err}");
    for version in [1u32, 4, 0x0300_0000] {
        let mut w = sample();
        w.version(version);
        let err = open_bytes("version", &w.to_bytes()).expect_err("must fail");
        assert!(
            matches!(err, GgufError::UnsupportedVersion { version: v, .. } if v == version),
            "{err}"
        );
    }
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    let bytes = sample().to_bytes();
    assert!(open_bytes("full", &bytes).is_ok());
    let path = tmp("cut");
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).expect("write");
        match GgufFile::open(&path) {
            Err(GgufError::Truncated {
                offset, file_len, ..
            }) => {
                assert_eq!(file_len, len as u64);
                assert!(
                    offset <= bytes.len() as u64,
                    "cut at {len}: offset {offset}"
                );
            }
            Err(GgufError::BadMagic { .. }) if len < 4 => {
                panic!("cut at {len}: a short file is truncated, not bad magic")
            }
            other => panic!("cut at {len}: expected Truncated, got {other:?}"),
        }
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_tensor_past_the_end_names_the_tensor_and_offset() {
    let mut w = GgufWriter::new();
    w.tensor_f32("ok", &[8], &[0.0; 8]);
    w.tensor("short", &[64], GgmlType::F32, vec![0u8; 16]); // announces 256 bytes, has 16
    let err = open_bytes("past-end", &w.to_bytes()).expect_err("must fail");
    let GgufError::Truncated {
        offset,
        ref expected,
        ..
    } = err
    else {
        panic!("expected Truncated, got {err:?}")
    };
    assert!(
        expected.contains("256 bytes of F32 data for tensor \"short\""),
        "{err}"
    );
    assert_eq!(offset % 32, 0);
}

#[test]
fn every_single_byte_corruption_errors_or_decodes_without_panic() {
    let bytes = sample().to_bytes();
    let path = tmp("flip");
    let mut errors = 0;
    for at in 0..bytes.len() {
        for flip in [0xffu8, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= flip;
            std::fs::write(&path, &bad).expect("write");
            match GgufFile::open(&path) {
                Ok(gguf) => {
                    for t in gguf.tensors() {
                        let (values, shape) = gguf
                            .tensor_f32(&t.name)
                            .expect("a validated tensor decodes");
                        assert_eq!(values.len(), shape.iter().product::<usize>());
                    }
                }
                Err(_) => errors += 1,
            }
        }
    }
    std::fs::remove_file(&path).ok();
    assert!(
        errors > bytes.len() / 4,
        "only {errors} corruptions detected"
    );
}

#[test]
fn malformed_headers_give_specific_errors() {
    let header = |n_tensors: u64, n_kv: u64| {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(n_tensors.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b
    };
    let string = |b: &mut Vec<u8>, s: &[u8]| {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s);
    };

    // a key that is not UTF-8
    let mut b = header(0, 1);
    string(&mut b, b"bad\xff");
    b.extend(4u32.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    let err = open_bytes("utf8", &b).expect_err("must fail");
    assert!(
        matches!(err, GgufError::InvalidUtf8 { offset: 32, .. }),
        "{err}"
    );

    // an unknown value type
    let mut b = header(0, 1);
    string(&mut b, b"k");
    b.extend(13u32.to_le_bytes());
    let err = open_bytes("vtype", &b).expect_err("must fail");
    assert!(
        matches!(
            err,
            GgufError::UnknownValueType {
                offset: 33,
                type_id: 13,
                ..
            }
        ),
        "{err}"
    );

    // an array announcing far more items than the file holds (must not allocate them)
    let mut b = header(0, 1);
    string(&mut b, b"k");
    b.extend(9u32.to_le_bytes());
    b.extend(10u32.to_le_bytes());
    b.extend((u64::MAX / 2).to_le_bytes());
    let err = open_bytes("huge", &b).expect_err("must fail");
    assert!(matches!(err, GgufError::Truncated { .. }), "{err}");

    // a bool that is neither 0 nor 1
    let mut b = header(0, 1);
    string(&mut b, b"k");
    b.extend(7u32.to_le_bytes());
    b.push(2);
    let err = open_bytes("bool", &b).expect_err("must fail");
    assert!(
        matches!(err, GgufError::Invalid { offset: 37, .. }),
        "{err}"
    );

    // tensor counts larger than the file
    let err = open_bytes("count", &header(1 << 40, 0)).expect_err("must fail");
    assert!(err.to_string().contains("tensor_count"), "{err}");

    // duplicate key
    let mut w = GgufWriter::new();
    w.metadata("k", GgufValue::U8(1))
        .metadata("k", GgufValue::U8(2));
    let err = open_bytes("dupkey", &w.to_bytes()).expect_err("must fail");
    assert!(
        err.to_string().contains("duplicate metadata key \"k\""),
        "{err}"
    );

    // duplicate tensor, unknown ggml type, too many dims, dims not a whole number of blocks
    let mut w = GgufWriter::new();
    w.tensor_f32("t", &[1], &[1.0])
        .tensor_f32("t", &[1], &[1.0]);
    let err = open_bytes("duptensor", &w.to_bytes()).expect_err("must fail");
    assert!(
        err.to_string().contains("duplicate tensor name \"t\""),
        "{err}"
    );

    let mut bytes = GgufWriter::new().tensor_f32("t", &[1], &[1.0]).to_bytes();
    let type_at = 24 + 8 + 1 + 4 + 8;
    bytes[type_at..type_at + 4].copy_from_slice(&29u32.to_le_bytes());
    let err = open_bytes("ggmltype", &bytes).expect_err("must fail");
    assert!(
        matches!(&err, GgufError::UnknownGgmlType { offset, type_id: 29, tensor, .. } if *offset == type_at as u64 && tensor == "t"),
        "{err}"
    );

    let err = open_bytes(
        "dims",
        &GgufWriter::new()
            .tensor_f32("t", &[1, 1, 1, 1, 1], &[1.0])
            .to_bytes(),
    )
    .expect_err("must fail");
    assert!(err.to_string().contains("5 dims, at most 4"), "{err}");

    let mut w = GgufWriter::new();
    w.tensor("q", &[16], GgmlType::Q4_0, vec![0; 18]);
    let err = open_bytes("block", &w.to_bytes()).expect_err("must fail");
    assert!(
        err.to_string()
            .contains("not a multiple of the Q4_0 block size 32"),
        "{err}"
    );

    let err = GgufFile::open(Path::new("/nonexistent/model.gguf")).expect_err("must fail");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/model.gguf: cannot read the file"),
        "{err}"
    );
}

#[test]
fn smollm2_header_facts() {
    let Some(path) = smollm2_gguf() else { return };
    let gguf = GgufFile::open(&path).expect("open SmolLM2");
    assert_eq!(gguf.version(), 3);
    assert_eq!(gguf.tensors().len(), 272);
    let count = |t: GgmlType| gguf.tensors().iter().filter(|i| i.dtype == t).count();
    assert_eq!(
        (
            count(GgmlType::Q4_1),
            count(GgmlType::F32),
            count(GgmlType::Q8_0)
        ),
        (210, 61, 1)
    );
    assert_eq!(
        gguf.tensor("token_embd.weight").map(|t| t.dtype),
        Some(GgmlType::Q8_0)
    );
    assert!(
        gguf.tensor("output.weight").is_none(),
        "SmolLM2 ties its embeddings"
    );
    assert_eq!(gguf.get_str("general.architecture").expect("arch"), "llama");
    assert_eq!(gguf.get_u64("llama.block_count").expect("blocks"), 30);
    assert_eq!(gguf.get_u64("llama.embedding_length").expect("hidden"), 576);
    assert_eq!(
        gguf.get_u64("llama.feed_forward_length").expect("mlp"),
        1536
    );
    assert_eq!(
        gguf.get_u64("llama.attention.head_count").expect("heads"),
        9
    );
    assert_eq!(
        gguf.get_u64("llama.attention.head_count_kv")
            .expect("kv heads"),
        3
    );
    assert_eq!(
        gguf.get_f32("llama.rope.freq_base").expect("theta"),
        100000.0
    );
    assert_eq!(
        gguf.get_f32("llama.attention.layer_norm_rms_epsilon")
            .expect("eps"),
        1e-5
    );
    assert_eq!(
        gguf.get_array("tokenizer.ggml.tokens")
            .expect("tokens")
            .len(),
        49152
    );
    assert_eq!(gguf.get_str("tokenizer.ggml.pre").expect("pre"), "smollm");
    let params: u64 = gguf.tensors().iter().map(|t| t.n_elements()).sum();
    assert_eq!(params, 134_515_008);
}

#[test]
fn smollm2_dequantization_matches_gguf_py() {
    let Some(path) = smollm2_gguf() else { return };
    let gguf = GgufFile::open(&path).expect("open SmolLM2");
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/smollm2_q4_1.json")).expect("fixture is JSON");
    let mut fixture = fixture.as_object().expect("object").clone();
    let all_sums = fixture.remove("all_tensor_sums").expect("all_tensor_sums");
    assert_eq!(fixture.len(), 4);
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|x| x.as_f64().expect("f") as f32)
            .collect()
    };
    for (name, want) in &fixture {
        let (values, shape) = gguf.tensor_f32(name).expect(name);
        let want_shape: Vec<usize> = want["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("d") as usize)
            .collect();
        assert_eq!(shape, want_shape, "{name}");
        assert_eq!(
            gguf.tensor(name).map(|t| t.dtype.name()),
            want["type"].as_str(),
            "{name}"
        );
        assert_eq!(values[..8], floats(&want["first8"])[..], "{name} first 8");
        assert_eq!(
            values[values.len() - 8..],
            floats(&want["last8"])[..],
            "{name} last 8"
        );
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let sum_abs: f64 = values.iter().map(|&v| f64::from(v).abs()).sum();
        let (want_sum, want_abs) = (
            want["sum"].as_f64().expect("sum"),
            want["sum_abs"].as_f64().expect("sum_abs"),
        );
        assert!(
            (sum - want_sum).abs() <= 1e-9 * want_abs,
            "{name}: sum {sum} vs {want_sum}"
        );
        assert!(
            (sum_abs - want_abs).abs() <= 1e-9 * want_abs,
            "{name}: sum_abs {sum_abs} vs {want_abs}"
        );
    }

    // every tensor of the model: the sum and the sum of absolute values of its dequantized values
    let all_sums = all_sums.as_object().expect("object");
    assert_eq!(all_sums.len(), gguf.tensors().len());
    for info in gguf.tensors() {
        let (values, shape) = gguf.tensor_f32(&info.name).expect("decode");
        assert_eq!(values.len(), shape.iter().product::<usize>());
        assert_eq!(values.len() as u64, info.n_elements());
        let want = all_sums[&info.name].as_array().expect("[sum, sum_abs]");
        let (want_sum, want_abs) = (
            want[0].as_f64().expect("sum"),
            want[1].as_f64().expect("sum_abs"),
        );
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let sum_abs: f64 = values.iter().map(|&v| f64::from(v).abs()).sum();
        assert!(
            (sum - want_sum).abs() <= 1e-9 * want_abs,
            "{}: sum {sum} vs {want_sum}",
            info.name
        );
        assert!(
            (sum_abs - want_abs).abs() <= 1e-9 * want_abs,
            "{}: sum_abs {sum_abs} vs {want_abs}",
            info.name
        );
    }
}
