//! Input generation: a small PRNG and byte-level mutations of corpus entries (bit flips, interesting integers,
//! insertions, deletions, duplications, splices and dictionary tokens), in the manner of libFuzzer's mutators.

/// xorshift64* — fast, deterministic from its seed, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Integers that sit on the edges parsers get wrong: zero, one, sign bits, maxima, sizes just past 32 bits.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    16,
    32,
    64,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 40,
    (1 << 62) + 1,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// Mutates `data` in place with 1–8 random operations; `pool` supplies splices, `dict` tokens of the format.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[&[u8]], max_len: usize) {
    let ops = 1 + rng.below(8);
    for _ in 0..ops {
        match rng.below(11) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 if !data.is_empty() => {
                // an interesting integer, little-endian, of 1, 2, 4 or 8 bytes
                let width = 1 << rng.below(4);
                let v = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let at = rng.below(data.len());
                let end = (at + width).min(data.len());
                data[at..end].copy_from_slice(&v[..end - at]);
            }
            3 if !data.is_empty() => {
                let at = rng.below(data.len());
                let len = 1 + rng.below((data.len() - at).min(64));
                data.drain(at..at + len);
            }
            4 => {
                let at = rng.below(data.len() + 1);
                let len = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            5 if !data.is_empty() => {
                // copy a chunk of the input elsewhere in it (repeats structures: nested arrays, loops)
                let from = rng.below(data.len());
                let len = 1 + rng.below((data.len() - from).min(128));
                let chunk = data[from..from + len].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            6 if !pool.is_empty() => {
                // splice: our head, another entry's tail
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(data.len() + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            7 | 8 if !dict.is_empty() => {
                let token = dict[rng.below(dict.len())];
                let at = rng.below(data.len() + 1);
                if rng.one_in(2) || data.is_empty() {
                    data.splice(at..at, token.iter().copied());
                } else {
                    let end = (at + token.len()).min(data.len());
                    data.splice(at..end, token.iter().copied());
                }
            }
            9 if !data.is_empty() => {
                let i = rng.below(data.len());
                let delta = (rng.below(35) as u8).wrapping_sub(17);
                data[i] = data[i].wrapping_add(delta);
            }
            10 if data.len() > 1 => {
                // swap two bytes
                let (a, b) = (rng.below(data.len()), rng.below(data.len()));
                data.swap(a, b);
            }
            _ => {}
        }
    }
    data.truncate(max_len);
}

/// A fresh input: random bytes (a quarter of the time printable ASCII, which text parsers get further with).
pub fn random_input(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let len = rng.below(max_len.min(512) + 1);
    let ascii = rng.one_in(4);
    (0..len)
        .map(|_| {
            if ascii {
                b' ' + rng.below(95) as u8
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_the_length_cap_and_change_inputs() {
        let mut rng = Rng::new(7);
        let pool = vec![b"{\"a\": [1, 2, 3]}".to_vec(), b"GGUF\x03\0\0\0".to_vec()];
        let mut changed = 0;
        for i in 0..10_000 {
            let mut d = pool[i % 2].clone();
            mutate(&mut rng, &mut d, &pool, &[b"null", b"\"\\u0000\""], 64);
            assert!(d.len() <= 64);
            changed += usize::from(d != pool[i % 2]);
        }
        assert!(changed > 9_000, "only {changed} of 10000 inputs changed");
    }
}
