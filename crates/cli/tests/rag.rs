//! `temper rag` end to end on small files written by the tests: index (text, Markdown, HTML; binary and
//! non-UTF-8 files reported and skipped; the default index folder under the current directory; re-indexing only
//! changed files), query with `--json` (hits whose text is the source's bytes at the chunk's offsets), eval against
//! hand-checked metrics, embed (equal to sentence-transformers' vector), dense and hybrid queries, and `ask`
//! through an OpenAI-compatible endpoint served by the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temper(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_temper"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run temper")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON on stdout")
}

/// A fresh folder with a small corpus in `docs/`.
fn corpus(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("temper-rag-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let docs = root.join("docs");
    std::fs::create_dir_all(docs.join("guide")).expect("mkdir");
    let files: [(&str, &[u8]); 5] = [
        ("apt.md", b"# Apt\n\nApt installs packages and resolves their dependencies.\n\n# Dpkg\n\nDpkg unpacks a single .deb archive without resolving dependencies.\n"),
        ("guide/boot.txt", b"Grub is the boot loader: it loads the Linux kernel.\n"),
        ("guide/mirrors.html", b"<html><body><h1>Mirrors</h1><p>A mirror copies the Debian archive &amp; serves it.</p></body></html>"),
        ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        ("notes-latin1.txt", b"r\xe9sum\xe9 of the release"),
    ];
    for (rel, bytes) in files {
        std::fs::write(docs.join(rel), bytes).expect("write fixture");
    }
    root
}

#[test]
fn index_query_reindex_and_eval() {
    let root = corpus("bm25");
    let report = json(temper(&root, &["rag", "index", "docs", "--json"]));
    assert!(
        root.join(".temper-rag/index.json").is_file(),
        "default index folder under the current directory"
    );
    assert_eq!(report["files"], 3);
    assert_eq!(
        report["report"]["added"],
        serde_json::json!(["apt.md", "guide/boot.txt", "guide/mirrors.html"])
    );
    let skipped: Vec<&str> = report["report"]["skipped"]
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| s[0].as_str().expect("a JSON string"))
        .collect();
    assert_eq!(skipped, ["logo.png", "notes-latin1.txt"]);

    let hits = json(temper(
        &root,
        &[
            "rag",
            "query",
            "which tool unpacks a deb archive",
            "--json",
            "-k",
            "2",
        ],
    ));
    let hits = hits.as_array().expect("a list of hits");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["source"], "apt.md");
    assert_eq!(hits[0]["chunk_id"], "apt.md#1");
    assert!(
        hits[0]["score"].as_f64().expect("a score") > hits[1]["score"].as_f64().expect("a score")
    );
    let source = std::fs::read_to_string(root.join("docs/apt.md")).expect("read apt.md");
    let (s, e) = (
        hits[0]["start"].as_u64().expect("a byte offset") as usize,
        hits[0]["end"].as_u64().expect("a byte offset") as usize,
    );
    assert_eq!(
        hits[0]["text"].as_str().expect("a JSON string"),
        &source[s..e]
    );
    assert!(
        hits[0]["text"]
            .as_str()
            .expect("a JSON string")
            .starts_with("# Dpkg")
    );

    std::fs::write(
        root.join("docs/guide/boot.txt"),
        "Systemd starts services after the kernel.\n",
    )
    .expect("write a test file");
    let again = json(temper(&root, &["rag", "index", "docs", "--json"]));
    assert_eq!(
        again["report"]["changed"],
        serde_json::json!(["guide/boot.txt"])
    );
    assert_eq!(
        again["report"]["unchanged"],
        serde_json::json!(["apt.md", "guide/mirrors.html"])
    );
    let hits = json(temper(
        &root,
        &["rag", "query", "systemd services", "--json"],
    ));
    assert_eq!(hits[0]["source"], "guide/boot.txt");

    // Query 1: the gold chunk is first (all metrics 1). Query 2: the gold chunk is not retrieved at all (0).
    std::fs::write(
        root.join("queries.jsonl"),
        "{\"query\": \"mirror archive\", \"relevant\": [\"guide/mirrors.html#0\"]}\n\n\
         {\"query\": \"dependencies resolving\", \"relevant\": {\"guide/boot.txt#0\": 2}}\n",
    )
    .expect("write the queries");
    let eval = json(temper(
        &root,
        &["rag", "eval", "--queries", "queries.jsonl", "--json"],
    ));
    assert_eq!(eval["queries"], 2);
    for m in ["recall_1", "recall_10", "mrr", "ndcg_10"] {
        assert_eq!(eval["metrics"][m], 0.5, "{m}: {eval}");
    }
    assert_eq!(eval["metrics"]["precision_5"], 0.1);

    std::fs::write(
        root.join("bad.jsonl"),
        "{\"query\": \"x\", \"relevant\": [\"apt.md#0\"]}\n{\"query\": 3}\n",
    )
    .expect("write a test file");
    let out = temper(&root, &["rag", "eval", "--queries", "bad.jsonl"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = temper(&root, &["rag", "query", "x", "--index", "nowhere"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn embed_dense_and_hybrid_queries() {
    let root = corpus("dense");
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rag/tests/fixtures/minilm_reference.json");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference).expect("read the reference"))
            .expect("parse the reference");
    let sentence = reference["sentences"][0].as_str().expect("a JSON string");
    let want: Vec<f64> =
        serde_json::from_value(reference["embeddings"][0].clone()).expect("a vector");
    let got = json(temper(
        &root,
        &["rag", "embed", "--text", sentence, "--json"],
    ));
    let got: Vec<f64> = serde_json::from_value(got["embedding"].clone()).expect("an embedding");
    assert_eq!(got.len(), 384);
    let cos: f64 = got.iter().zip(&want).map(|(a, b)| a * b).sum::<f64>()
        / got.iter().map(|a| a * a).sum::<f64>().sqrt();
    assert!(cos >= 0.9999, "cosine {cos}");

    let out = temper(&root, &["rag", "index", "docs"]);
    ok(out);
    let out = temper(&root, &["rag", "query", "boot", "--mode", "dense"]);
    assert!(
        !out.status.success(),
        "dense query without embeddings must fail"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dense"));
    let report = json(temper(
        &root,
        &["rag", "index", "docs", "--dense", "--json"],
    ));
    assert_eq!(report["embedded"], 4);
    for mode in ["dense", "hybrid"] {
        let hits = json(temper(
            &root,
            &[
                "rag",
                "query",
                "what starts the operating system kernel",
                "--mode",
                mode,
                "--json",
            ],
        ));
        assert_eq!(hits[0]["chunk_id"], "guide/boot.txt#0", "{mode}: {hits}");
    }
    // HNSW: missing until built, then equal to exact search on this small corpus; rebuilt when a file changes.
    let out = temper(&root, &["rag", "query", "boot", "--mode", "hnsw"]);
    assert!(
        !out.status.success(),
        "hnsw query without a graph must fail"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--hnsw"));
    let report = json(temper(&root, &["rag", "index", "docs", "--hnsw", "--json"]));
    assert_eq!(report["hnsw_built"], true);
    assert!(root.join(".temper-rag/hnsw.bin").is_file());
    let query = |mode: &str| {
        json(temper(
            &root,
            &[
                "rag",
                "query",
                "what starts the operating system kernel",
                "--mode",
                mode,
                "-k",
                "4",
                "--json",
            ],
        ))
    };
    let ids = |hits: &serde_json::Value| -> Vec<String> {
        hits.as_array()
            .expect("a JSON array")
            .iter()
            .map(|h| h["chunk_id"].as_str().expect("a chunk id").to_string())
            .collect()
    };
    assert_eq!(ids(&query("hnsw")), ids(&query("dense")));
    std::fs::write(
        root.join("docs/guide/boot.txt"),
        "Systemd starts services after the kernel boots.\n",
    )
    .expect("rewrite");
    let report = json(temper(&root, &["rag", "index", "docs", "--json"]));
    assert_eq!(
        report["embedded"], 1,
        "the changed file's chunk is embedded: {report}"
    );
    assert_eq!(
        report["hnsw_built"], true,
        "a stale graph is rebuilt: {report}"
    );
    assert_eq!(ids(&query("hnsw")), ids(&query("dense")));
    let _ = std::fs::remove_dir_all(&root);
}

/// Runs `temper` in `root` against the OpenAI-compatible endpoint at `url` (with its own `TEMPER_HOME`).
fn temper_with_endpoint(root: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_temper"))
        .current_dir(root)
        .env("TEMPER_JUDGE_BASE_URL", url)
        .env("TEMPER_JUDGE_API_KEY", "test")
        .env("TEMPER_HOME", root.join("home"))
        .args(args)
        .output()
        .expect("run temper")
}

/// Serves OpenAI chat completions on a local port: each reply is the next of `replies`; returns the base URL and
/// the thread that collects the request bodies.
fn fake_openai(replies: Vec<String>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/v1",
        listener.local_addr().expect("local address")
    );
    let handle = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for reply in replies {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).expect("body");
            bodies.push(String::from_utf8(body).expect("utf-8 body"));
            let answer = serde_json::json!({
                "id": "x", "object": "chat.completion", "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
            })
            .to_string();
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}", answer.len())
                .expect("reply");
        }
        bodies
    });
    (url, handle)
}

#[test]
fn ask_cites_retrieved_chunks_and_reports_unknown_citations() {
    let root = corpus("ask");
    ok(temper(&root, &["rag", "index", "docs"]));
    let (url, server) = fake_openai(vec![
        "Dpkg unpacks one archive [1]; apt resolves dependencies [2, 7].".into(),
    ]);
    let out = temper_with_endpoint(
        &root,
        &url,
        &[
            "rag",
            "ask",
            "What does dpkg do with a deb archive?",
            "--model",
            "openai:fake",
            "-k",
            "2",
            "--json",
        ],
    );
    let answer = json(out);
    let bodies = server.join().expect("server thread");
    assert!(
        bodies[0].contains("[1] # Dpkg"),
        "the prompt numbers the passages: {}",
        bodies[0]
    );
    assert_eq!(answer["passages"][0]["chunk_id"], "apt.md#1");
    let cited: Vec<&str> = answer["citations"]
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|c| c.as_str().expect("a JSON string"))
        .collect();
    assert_eq!(
        cited,
        [
            "apt.md#1",
            answer["passages"][1]["chunk_id"]
                .as_str()
                .expect("a JSON string")
        ]
    );
    assert_eq!(answer["invalid_citations"], serde_json::json!([7]));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn query_rerank_orders_hits_by_the_judges_ratings() {
    let root = corpus("rerank");
    ok(temper(&root, &["rag", "index", "docs"]));
    let first = json(temper(
        &root,
        &[
            "rag",
            "query",
            "dependencies of packages",
            "-k",
            "2",
            "--json",
        ],
    ));
    let first: Vec<&str> = first
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|h| h["chunk_id"].as_str().expect("a chunk id"))
        .collect();
    assert_eq!(first.len(), 2);
    // The judge rates BM25's first hit 2 and its second 9 out of 10.
    let (url, server) = fake_openai(vec!["Rating: 2".into(), "9/10".into()]);
    let out = temper_with_endpoint(
        &root,
        &url,
        &[
            "rag",
            "query",
            "dependencies of packages",
            "-k",
            "2",
            "--rerank",
            "openai:fake",
            "--rerank-depth",
            "2",
            "--json",
        ],
    );
    let hits = json(out);
    let bodies = server.join().expect("server thread");
    assert_eq!(bodies.len(), 2, "one judge request per passage");
    assert!(
        bodies[0].contains("Query: dependencies of packages"),
        "{}",
        bodies[0]
    );
    assert_eq!(hits[0]["chunk_id"], first[1], "{hits}");
    assert_eq!(hits[0]["score"], 9.0);
    assert_eq!(hits[1]["chunk_id"], first[0], "{hits}");
    assert_eq!(hits[1]["score"], 2.0);
    let _ = std::fs::remove_dir_all(&root);
}
