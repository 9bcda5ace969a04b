//! The preference subcommands: `temper rm` (reward model), `temper dpo` and `temper make-pairs` (preference
//! pairs from a model's own samples ranked by rule rewards, or `--synthetic-wrong` arithmetic pairs whose
//! rejected answer is a typical mistake).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use temper_rewards::{ArithOp, ArithmeticProblem};
use temper_tokenizer::{Message, Tokenizer};
use temper_train::{
    ARITHMETIC_INSTRUCTION, DpoRunConfig, DpoTrainer, PairsConfig, PreferencePair, RmRunConfig, RmTrainer, Session,
    TaskSpec, make_pairs, write_pairs_jsonl,
};

use crate::train::{apply_overrides, load_for_training, read_config, train_and_export};
use crate::{TrainArgs, load, resolve_model};

/// `temper make-pairs`: sample K completions per prompt, keep (best, worst) by rule reward, write JSONL.
#[derive(clap::Args)]
pub struct MakePairsArgs {
    /// An asset name (`smollm2`), a `.gguf` file or an HF model folder.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// `arithmetic` (built-in task) or a prompts JSONL file (`prompt`/`question` + optional `answer`).
    #[arg(long, default_value = "arithmetic")]
    task: String,
    /// Number of training prompts to sample (with `--synthetic-wrong`: training pairs to write).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Samples per prompt.
    #[arg(long, default_value_t = 4)]
    k: usize,
    /// Held-out prompts to sample for `--eval-out` (with `--synthetic-wrong`: held-out pairs, one per distinct
    /// held-out problem, fewer when the held-out split is smaller).
    #[arg(long, default_value_t = 0)]
    eval_n: usize,
    /// New tokens per sample.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Seed of the task and the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A TOML `PairsConfig` (task, generation, rewards...); the flags above are ignored when given.
    #[arg(long)]
    config: Option<PathBuf>,
    /// cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output JSONL of training pairs.
    #[arg(long)]
    out: PathBuf,
    /// Output JSONL of held-out pairs.
    #[arg(long)]
    eval_out: Option<PathBuf>,
    /// No sampling: arithmetic pairs with chosen = the right `<answer>N</answer>` and rejected = a typical wrong
    /// number (off by 1–3, off by 10, or another operation's result), prompts rendered exactly like the
    /// built-in arithmetic task's (`--model` supplies only the tokenizer and chat template). Held-out pairs use
    /// only problems of the task's held-out split, so they never share a problem with the training pairs.
    #[arg(long)]
    synthetic_wrong: bool,
    /// Operand digits of the `--synthetic-wrong` problems, comma-separated (pairs are split evenly).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    digits: Vec<u32>,
    /// Operations of the `--synthetic-wrong` problems, comma-separated (`add`, `sub`, `mul`).
    #[arg(long, value_delimiter = ',', default_value = "add,sub,mul")]
    ops: Vec<String>,
}

/// Prints a library's progress messages before the progress bar exists.
struct Messages;

impl temper_train::Observer for Messages {
    fn on_step(&mut self, _: &temper_train::StepReport) {}
    fn on_message(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

/// `temper rm --config rm.toml`.
pub fn rm(args: &TrainArgs) -> Result<()> {
    let mut run: RmRunConfig = read_config(args, "rm", None)?;
    apply_overrides(&mut run.train, &mut run.device, args);
    run.validate()?;
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let (model, tok) = run.load_model(&resolve_model(&run.model)?, &device)?;
    let (train, eval) = run.load_data()?;
    let mut trainer = RmTrainer::new(&tok, &model, &train, &eval, run.rm.clone(), &run.train)?;
    let mut session = Session::start(model, &device, run.train.clone())?;
    train_and_export(&mut session, &tok, |s, bar| trainer.train(s, bar))
}

/// `temper dpo --config dpo.toml`.
pub fn dpo(args: &TrainArgs) -> Result<()> {
    let mut run: DpoRunConfig = read_config(args, "dpo", None)?;
    apply_overrides(&mut run.train, &mut run.device, args);
    run.validate()?;
    let (device, model, tok) = load_for_training(&run.model, &run.device)?;
    let policy = burn::module::Module::valid(&model);
    let (train, eval) = run.load_or_make_pairs(&policy, &tok, &device.clone().inner(), &mut Messages)?;
    let reference = match &run.ref_model {
        Some(spec) => Some(load(spec, &device.clone().inner())?.model),
        None => None,
    };
    let mut trainer = DpoTrainer::new(&tok, reference.as_ref().unwrap_or(&model), &train, &eval, &run)?;
    let mut session = Session::start(model, &device, run.train.clone())?;
    train_and_export(&mut session, &tok, |s, bar| trainer.train(s, bar))
}

/// `temper make-pairs --model M --task arithmetic --n N --out pairs.jsonl`.
pub fn make_pairs_cmd(args: &MakePairsArgs) -> Result<()> {
    if args.synthetic_wrong {
        return synthetic_cmd(args);
    }
    let cfg: PairsConfig = match &args.config {
        Some(p) => temper_train::load_toml(p)?,
        None => {
            let mut cfg = PairsConfig {
                num_prompts: args.n,
                samples_per_prompt: args.k,
                eval_prompts: args.eval_n,
                seed: args.seed,
                ..PairsConfig::default()
            };
            cfg.generation.max_new_tokens = args.max_new_tokens;
            cfg.generation.temperature = args.temperature;
            if args.task != "arithmetic" {
                cfg.task = TaskSpec::Jsonl {
                    train_file: PathBuf::from(&args.task),
                    eval_file: None,
                    prefill: String::new(),
                };
            }
            cfg
        }
    };
    let device = temper_models::parse_device(&args.device)?;
    let loaded = load(&args.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
    let (train, eval, stats) = make_pairs(&loaded.model, tok, &cfg, &device)?;
    write_pairs_jsonl(&args.out, &train)?;
    if let Some(p) = &args.eval_out {
        write_pairs_jsonl(p, &eval)?;
    }
    println!("{}", serde_json::to_string(&stats)?);
    eprintln!("wrote {} pairs to {}", train.len(), args.out.display());
    Ok(())
}

/// The assistant-turn prefill of the built-in arithmetic task.
const ARITH_PREFILL: &str = "<answer>";
/// Largest operand size `--synthetic-wrong` enumerates (3 digits = 2.4 M problems).
const MAX_SYNTHETIC_DIGITS: u32 = 3;

/// The arithmetic task's chat prompt for `question`, prefill included: the system message is the task's
/// ([`ARITHMETIC_INSTRUCTION`], without `think`); a test checks that this reproduces `temper_train::PromptSet`'s
/// prompts (with `shots = 0`: no worked-example turns) byte for byte.
fn render_arith_prompt(tok: &Tokenizer, question: &str) -> Result<String> {
    let template = tok
        .chat_template()
        .context("--synthetic-wrong needs a model with a chat template")?;
    let messages = [
        Message::system(ARITHMETIC_INSTRUCTION),
        Message::user(question),
    ];
    Ok(template.render(&messages, true)? + ARITH_PREFILL)
}

/// SplitMix64 (Steele et al. 2014): seeded, stable across dependency versions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is below 2^-50 for the sizes used here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

/// The kind of wrong answer a synthetic rejected completion holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Mistake {
    /// The answer ± 1, 2 or 3 (a slip in the units digit).
    OffBySmall,
    /// The answer ± 10 (a dropped or extra carry).
    OffByTen,
    /// The result of another of `+ - *` on the same operands.
    OtherOp,
}

const MISTAKES: [Mistake; 3] = [Mistake::OffBySmall, Mistake::OffByTen, Mistake::OtherOp];

/// A wrong, non-negative answer to `p` of kind `mistake`, `pick` choosing among the candidates; falls back to
/// [`Mistake::OffBySmall`] when the kind has no candidate (e.g. `2 + 2` and `2 * 2` agree). Returns the value
/// and the kind actually used.
fn wrong_answer(p: &ArithmeticProblem, mistake: Mistake, pick: u64) -> (i64, Mistake) {
    let small = || {
        let k = 1 + (pick % 3) as i64;
        if (pick / 3).is_multiple_of(2) || p.answer - k < 0 {
            p.answer + k
        } else {
            p.answer - k
        }
    };
    match mistake {
        Mistake::OffBySmall => (small(), Mistake::OffBySmall),
        Mistake::OffByTen if pick.is_multiple_of(2) || p.answer < 10 => (p.answer + 10, Mistake::OffByTen),
        Mistake::OffByTen => (p.answer - 10, Mistake::OffByTen),
        Mistake::OtherOp => {
            let others: Vec<i64> = [ArithOp::Add, ArithOp::Sub, ArithOp::Mul]
                .into_iter()
                .filter(|&o| o != p.op)
                .map(|o| o.apply(p.a, p.b))
                .filter(|&v| v != p.answer && v >= 0)
                .collect();
            if others.is_empty() {
                (small(), Mistake::OffBySmall)
            } else {
                (others[(pick % others.len() as u64) as usize], Mistake::OtherOp)
            }
        }
    }
}

/// Every problem of the arithmetic task's space with `digits`-digit operands (the task's rule: 1 digit means
/// 0..=9, subtraction never goes below zero), split into (training, held-out) by the task's fixed partition.
fn problem_space(digits: u32, ops: &[ArithOp]) -> (Vec<ArithmeticProblem>, Vec<ArithmeticProblem>) {
    let (lo, hi) = if digits == 1 {
        (0, 9)
    } else {
        (10i64.pow(digits - 1), 10i64.pow(digits) - 1)
    };
    let mut all = Vec::new();
    for &op in ops {
        for a in lo..=hi {
            for b in lo..=hi {
                if op == ArithOp::Sub && a < b {
                    continue;
                }
                all.push(ArithmeticProblem {
                    a,
                    op,
                    b,
                    answer: op.apply(a, b),
                });
            }
        }
    }
    let (held, train): (Vec<_>, Vec<_>) = all.into_iter().partition(ArithmeticProblem::is_held_out);
    (train, held)
}

/// What `--synthetic-wrong` builds.
struct SyntheticSpec {
    digits: Vec<u32>,
    ops: Vec<ArithOp>,
    train_pairs: usize,
    eval_pairs: usize,
    seed: u64,
}

/// Counts printed after a `--synthetic-wrong` run.
#[derive(Debug, Default, PartialEq, Serialize)]
struct SyntheticStats {
    train_pairs: usize,
    /// Distinct problems among the training pairs.
    train_problems: usize,
    eval_pairs: usize,
    /// Held-out pairs per operand size, e.g. `{"1": 25, "2": 175}`.
    eval_by_digits: std::collections::BTreeMap<u32, usize>,
    /// Rejected answers by kind, training and held-out together.
    mistakes: std::collections::BTreeMap<Mistake, usize>,
}

/// Splits `total` over pools of the given sizes as evenly as possible, no pool getting more than its size
/// when `cap` is set (smallest pools served first, their leftover shared by the others).
fn allocate(total: usize, sizes: &[usize], cap: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut out = vec![0; sizes.len()];
    let mut left = total;
    for (k, &i) in order.iter().enumerate() {
        let share = left.div_ceil(sizes.len() - k);
        out[i] = if cap { share.min(sizes[i]) } else { share };
        left -= out[i];
    }
    out
}

fn pair_of(tok: &Tokenizer, p: &ArithmeticProblem, rng: &mut SplitMix64, stats: &mut SyntheticStats) -> Result<PreferencePair> {
    let kind = MISTAKES[rng.below(MISTAKES.len())];
    let (wrong, used) = wrong_answer(p, kind, rng.next_u64());
    *stats.mistakes.entry(used).or_insert(0) += 1;
    Ok(PreferencePair {
        prompt: render_arith_prompt(tok, &p.question())?,
        chosen: format!("{}</answer>", p.answer),
        rejected: format!("{wrong}</answer>"),
        margin: None,
    })
}

/// Training and held-out pairs (each list shuffled) and their counts.
fn synthetic_pairs(
    tok: &Tokenizer,
    spec: &SyntheticSpec,
) -> Result<(Vec<PreferencePair>, Vec<PreferencePair>, SyntheticStats)> {
    if spec.digits.is_empty() || spec.ops.is_empty() {
        bail!("--synthetic-wrong needs at least one --digits value and one --ops value");
    }
    if let Some(d) = spec.digits.iter().find(|d| !(1..=MAX_SYNTHETIC_DIGITS).contains(*d)) {
        bail!("--digits values must be in 1..={MAX_SYNTHETIC_DIGITS}, got {d}");
    }
    let mut rng = SplitMix64(spec.seed ^ 0x7379_6e74_6800_0001);
    let mut eval_rng = SplitMix64(spec.seed ^ 0x7379_6e74_6800_0002);
    let mut stats = SyntheticStats::default();
    let mut pools = Vec::new();
    for &d in &spec.digits {
        let (mut train, mut held) = problem_space(d, &spec.ops);
        rng.shuffle(&mut train);
        eval_rng.shuffle(&mut held);
        pools.push((d, train, held));
    }
    let train_n = allocate(spec.train_pairs, &pools.iter().map(|p| p.1.len()).collect::<Vec<_>>(), false);
    let eval_n = allocate(spec.eval_pairs, &pools.iter().map(|p| p.2.len()).collect::<Vec<_>>(), true);
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for ((d, pool, held), (&tn, &en)) in pools.iter().zip(train_n.iter().zip(&eval_n)) {
        // Training problems cycle through the shuffled pool: distinct until the pool is used up.
        for j in 0..tn {
            train.push(pair_of(tok, &pool[j % pool.len()], &mut rng, &mut stats)?);
        }
        stats.train_problems += tn.min(pool.len());
        for p in &held[..en] {
            eval.push(pair_of(tok, p, &mut eval_rng, &mut stats)?);
        }
        stats.eval_by_digits.insert(*d, en);
    }
    rng.shuffle(&mut train);
    eval_rng.shuffle(&mut eval);
    stats.train_pairs = train.len();
    stats.eval_pairs = eval.len();
    Ok((train, eval, stats))
}

fn parse_op(s: &str) -> Result<ArithOp> {
    Ok(match s.trim() {
        "add" | "+" => ArithOp::Add,
        "sub" | "-" => ArithOp::Sub,
        "mul" | "*" => ArithOp::Mul,
        other => bail!("--ops: unknown operation `{other}` (expected add, sub or mul)"),
    })
}

/// The tokenizer of `--model` (a GGUF file or an HF folder with tokenizer.json), without loading weights.
fn load_tokenizer(spec: &str) -> Result<Tokenizer> {
    let path = resolve_model(spec)?;
    Ok(if path.is_file() {
        Tokenizer::from_gguf(&temper_gguf::GgufFile::open(&path)?)?
    } else {
        Tokenizer::from_file(&path.join("tokenizer.json"))?
    })
}

/// `temper make-pairs --synthetic-wrong`.
fn synthetic_cmd(args: &MakePairsArgs) -> Result<()> {
    if args.config.is_some() || args.task != "arithmetic" {
        bail!("--synthetic-wrong builds arithmetic pairs itself: drop --config and --task");
    }
    let spec = SyntheticSpec {
        digits: args.digits.clone(),
        ops: args.ops.iter().map(|s| parse_op(s)).collect::<Result<_>>()?,
        train_pairs: args.n,
        eval_pairs: args.eval_n,
        seed: args.seed,
    };
    let tok = load_tokenizer(&args.model)?;
    let (train, eval, stats) = synthetic_pairs(&tok, &spec)?;
    write_pairs_jsonl(&args.out, &train)?;
    match &args.eval_out {
        Some(p) => write_pairs_jsonl(p, &eval)?,
        None if !eval.is_empty() => bail!("--eval-n {} needs --eval-out FILE", args.eval_n),
        None => {}
    }
    println!("{}", serde_json::to_string(&stats)?);
    eprintln!("wrote {} training pairs to {}", train.len(), args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use temper_rewards::{ArithmeticConfig, ArithmeticTask};
    use temper_train::PromptSet;

    fn tokenizer() -> Tokenizer {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/trl-parity/tokenizer/tokenizer.json"));
        Tokenizer::from_file(path).expect("fixture tokenizer")
    }

    fn problem(a: i64, op: ArithOp, b: i64) -> ArithmeticProblem {
        ArithmeticProblem {
            a,
            op,
            b,
            answer: op.apply(a, b),
        }
    }

    /// `(question, chosen, rejected)` of a pair, read back from its text.
    fn parse(pair: &PreferencePair) -> (ArithmeticProblem, i64, i64) {
        let q = pair.prompt.split("What is ").nth(1).and_then(|s| s.split('?').next()).expect("question");
        let t: Vec<&str> = q.split(' ').collect();
        let op = parse_op(t[1]).expect("op");
        let p = problem(t[0].parse().expect("a"), op, t[2].parse().expect("b"));
        let num = |s: &str| s.strip_suffix("</answer>").expect("tag").parse::<i64>().expect("number");
        (p, num(&pair.chosen), num(&pair.rejected))
    }

    #[test]
    fn wrong_answers_follow_their_kind() {
        use ArithOp::*;
        use Mistake::*;
        // (problem, kind, pick) -> (wrong answer, kind used)
        let cases = [
            (problem(3, Add, 4), OffBySmall, 0, (8, OffBySmall)),
            (problem(3, Add, 4), OffBySmall, 3, (6, OffBySmall)),
            (problem(3, Add, 4), OffBySmall, 5, (4, OffBySmall)),
            (problem(1, Sub, 1), OffBySmall, 4, (2, OffBySmall)), // 0 - 2 < 0: goes up instead
            (problem(23, Add, 58), OffByTen, 0, (91, OffByTen)),
            (problem(23, Add, 58), OffByTen, 1, (71, OffByTen)),
            (problem(2, Mul, 3), OffByTen, 1, (16, OffByTen)), // below 10: only up
            (problem(7, Mul, 3), OtherOp, 0, (10, OtherOp)),
            (problem(7, Mul, 3), OtherOp, 1, (4, OtherOp)),
            (problem(3, Add, 7), OtherOp, 0, (21, OtherOp)), // 3 - 7 < 0 is not offered
            (problem(2, Add, 2), OtherOp, 1, (0, OtherOp)), // 2 * 2 is the answer: only 2 - 2 is offered
            (problem(0, Add, 0), OtherOp, 1, (2, OffBySmall)), // 0 + 0 = 0 - 0 = 0 * 0: falls back
        ];
        for (p, kind, pick, want) in cases {
            let got = wrong_answer(&p, kind, pick);
            assert_eq!(got, want, "{p} {kind:?} pick {pick}");
            assert_ne!(got.0, p.answer);
        }
    }

    #[test]
    fn allocation_is_even_and_respects_pool_sizes() {
        assert_eq!(allocate(10, &[100, 100], false), vec![5, 5]);
        assert_eq!(allocate(11, &[100, 100], false), vec![6, 5]);
        assert_eq!(allocate(200, &[25, 2000], true), vec![25, 175]);
        assert_eq!(allocate(200, &[25, 2000], false), vec![100, 100]);
        assert_eq!(allocate(50, &[20, 10], true), vec![20, 10]);
    }

    #[test]
    fn problem_space_matches_the_task() {
        let (train, held) = problem_space(1, &[ArithOp::Add, ArithOp::Sub, ArithOp::Mul]);
        // 100 sums, 55 differences (a >= b), 100 products.
        assert_eq!(train.len() + held.len(), 255);
        assert!(held.iter().all(ArithmeticProblem::is_held_out));
        assert!(train.iter().all(|p| !p.is_held_out()));
        // Every problem the task's own streams produce is in the matching part.
        let task = ArithmeticTask::new(ArithmeticConfig { digits: 1, ..ArithmeticConfig::default() }, 3).expect("task");
        assert!(task.train(300).iter().all(|p| train.contains(p)));
        assert!(task.held_out(held.len()).expect("held").iter().all(|p| held.contains(p)));
    }

    #[test]
    fn prompts_are_the_arithmetic_tasks_own() {
        let tok = tokenizer();
        // The task without worked-example turns (`shots = 0`), as `--synthetic-wrong` renders it.
        let toml = "kind = \"arithmetic\"\nshots = 0\n[config]\ndigits = 1\n";
        let task: TaskSpec = temper_train::parse_toml(toml, Path::new("test.toml")).expect("task");
        let set = PromptSet::build(&task, &tok, true, 5).expect("prompts");
        let task = ArithmeticTask::new(ArithmeticConfig { digits: 1, ..ArithmeticConfig::default() }, 5).expect("task");
        for (rendered, p) in set.train.iter().zip(task.train(3)) {
            assert_eq!(render_arith_prompt(&tok, &p.question()).expect("render"), rendered.text);
        }
    }

    #[test]
    fn synthetic_pairs_are_right_vs_wrong_with_a_disjoint_held_out_split() {
        let tok = tokenizer();
        let spec = SyntheticSpec {
            digits: vec![1, 2],
            ops: vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul],
            train_pairs: 300,
            eval_pairs: 120,
            seed: 11,
        };
        let (train, eval, stats) = synthetic_pairs(&tok, &spec).expect("pairs");
        assert_eq!((train.len(), eval.len()), (300, 120));
        assert_eq!(stats.eval_by_digits.values().sum::<usize>(), 120);
        // The 1-digit held-out split has 255 / 10 ± a few problems; the 2-digit one supplies the rest.
        let one = stats.eval_by_digits[&1];
        assert!((15..=40).contains(&one), "{one} one-digit held-out problems");
        assert_eq!(stats.mistakes.values().sum::<usize>(), 420);
        assert!(stats.mistakes.values().all(|&n| n > 60), "{:?}", stats.mistakes);
        let mut train_problems = std::collections::HashSet::new();
        for pair in &train {
            let (p, chosen, rejected) = parse(pair);
            assert_eq!(chosen, p.answer, "{}", pair.prompt);
            assert!(rejected != p.answer && rejected >= 0, "{p}: {rejected}");
            assert!(!p.is_held_out());
            train_problems.insert(p);
        }
        assert_eq!(train_problems.len(), stats.train_problems);
        let mut eval_problems = std::collections::HashSet::new();
        for pair in &eval {
            let (p, chosen, rejected) = parse(pair);
            assert_eq!(chosen, p.answer);
            assert_ne!(rejected, p.answer);
            assert!(p.is_held_out() && !train_problems.contains(&p));
            assert!(eval_problems.insert(p), "held-out problem {p} repeated");
        }
        // Seeded: the same spec gives the same pairs; another seed gives others.
        let (again, _, _) = synthetic_pairs(&tok, &spec).expect("pairs");
        assert_eq!(again, train);
        let (other, _, _) = synthetic_pairs(&tok, &SyntheticSpec { seed: 12, ..spec }).expect("pairs");
        assert_ne!(other, train);
    }

    #[test]
    fn bad_specs_are_errors() {
        let tok = tokenizer();
        let spec = |digits: Vec<u32>| SyntheticSpec {
            digits,
            ops: vec![ArithOp::Add],
            train_pairs: 4,
            eval_pairs: 0,
            seed: 0,
        };
        let e = synthetic_pairs(&tok, &spec(vec![4])).expect_err("4 digits").to_string();
        assert!(e.contains("1..=3") && e.contains('4'), "{e}");
        assert!(synthetic_pairs(&tok, &spec(vec![])).is_err());
        assert!(parse_op("div").expect_err("div").to_string().contains("`div`"));
    }
}
