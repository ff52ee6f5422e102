//! Captcha codes: random text from an alphabet without look-alikes, or a small
//! sum or difference, drawn from a CSPRNG without bias.

use rand::distr::{Distribution, Uniform};

/// Code symbols (the answer, lower case) and the forms each may be drawn in.
/// Left out, because people confuse them: 0 O o Q D, 1 I l i j, z Z (2),
/// s S (5), B (8), g q (9). Upper- and lower-case forms of one letter are
/// the same answer (answers compare case-insensitively).
const SYMBOLS: &[(char, &str)] = &[
    ('2', "2"),
    ('3', "3"),
    ('4', "4"),
    ('5', "5"),
    ('6', "6"),
    ('7', "7"),
    ('8', "8"),
    ('9', "9"),
    ('a', "aA"),
    ('b', "b"),
    ('c', "cC"),
    ('d', "d"),
    ('e', "eE"),
    ('f', "fF"),
    ('h', "hH"),
    ('k', "kK"),
    ('m', "mM"),
    ('n', "nN"),
    ('p', "pP"),
    ('r', "rR"),
    ('t', "tT"),
    ('u', "uU"),
    ('v', "vV"),
    ('w', "wW"),
    ('x', "xX"),
    ('y', "yY"),
];

/// Every character a default code may show (before `ignoreChars`).
pub const DEFAULT_ALPHABET: &str = "23456789abcdefhkmnprtuvwxyACEFHKMNPRTUVWXY";

/// Characters of math captchas.
pub const MATH_CHARS: &str = "0123456789+-=?";

/// Every character the engine may draw: the renderer refuses a font that
/// lacks any of them.
pub fn drawable_chars() -> String {
    let mut s: String = DEFAULT_ALPHABET.chars().chain(MATH_CHARS.chars()).collect();
    let mut seen = std::collections::HashSet::new();
    s.retain(|c| seen.insert(c));
    s
}

/// One symbol of the alphabet: the answer character and the display forms
/// left after `ignoreChars` (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub answer: char,
    pub forms: Vec<char>,
}

/// The code alphabet after removing `ignore` (matched exactly, as
/// uni-captcha does: ignoring `a` leaves `A`). A symbol whose every form is
/// ignored is gone.
pub fn alphabet(ignore: &str) -> Vec<Symbol> {
    SYMBOLS
        .iter()
        .filter_map(|(answer, forms)| {
            let forms: Vec<char> = forms.chars().filter(|c| !ignore.contains(*c)).collect();
            (!forms.is_empty()).then_some(Symbol {
                answer: *answer,
                forms,
            })
        })
        .collect()
}

/// The operator of math captchas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MathOperator {
    /// `""`: each captcha picks `+` or `-` at random.
    #[default]
    Random,
    Add,
    Sub,
}

/// The operands and operator of math captchas (`mathMin`, `mathMax`,
/// `mathOperator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MathSpec {
    pub min: i64,
    pub max: i64,
    pub operator: MathOperator,
}

impl Default for MathSpec {
    fn default() -> Self {
        Self {
            min: 1,
            max: 9,
            operator: MathOperator::Random,
        }
    }
}

/// What a challenge is drawn from: a scene's `size` and `ignoreChars`, or
/// its math settings when `mathExpr` is on (see
/// [`super::SceneConfig::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSpec<'a> {
    pub size: usize,
    pub ignore_chars: &'a str,
    pub math: Option<MathSpec>,
}

impl Default for CodeSpec<'_> {
    /// uni-captcha's defaults: four characters, nothing ignored, no math.
    fn default() -> Self {
        Self {
            size: 4,
            ignore_chars: "",
            math: None,
        }
    }
}

/// A fresh captcha: what to draw and what to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Text drawn on the image: `"aB3x"` or `"3+5=?"`.
    pub display: String,
    /// Normalised answer (see [`normalize_answer`]): `"ab3x"`, `"8"`, `"-2"`.
    pub answer: String,
}

fn pick(rng: &mut impl rand::Rng, n: usize) -> usize {
    // Uniform::sample is Lemire's method with rejection: no modulo bias.
    match Uniform::new(0, n) {
        Ok(d) => d.sample(rng),
        Err(_) => 0,
    }
}

/// Draws a challenge for `spec` from the thread's CSPRNG (ChaCha, seeded
/// and reseeded from the OS).
pub fn new_challenge(spec: CodeSpec) -> Challenge {
    new_challenge_with(spec, &mut rand::rng())
}

/// [`new_challenge`] with a given generator (tests; keep it a CSPRNG).
pub fn new_challenge_with(spec: CodeSpec, rng: &mut impl rand::Rng) -> Challenge {
    if let Some(math) = spec.math {
        let (lo, hi) = (math.min.min(math.max), math.max.max(math.min));
        let operand = Uniform::new_inclusive(lo, hi).expect("lo <= hi");
        let a = operand.sample(rng);
        let b = operand.sample(rng);
        let add = match math.operator {
            MathOperator::Add => true,
            MathOperator::Sub => false,
            MathOperator::Random => pick(rng, 2) == 0,
        };
        let (op, result) = if add { ('+', a + b) } else { ('-', a - b) };
        return Challenge {
            display: format!("{a}{op}{b}=?"),
            answer: result.to_string(),
        };
    }
    let symbols = alphabet(spec.ignore_chars);
    let mut display = String::with_capacity(spec.size);
    let mut answer = String::with_capacity(spec.size);
    if symbols.is_empty() {
        // Unreachable with a validated config (MIN_ALPHABET); never panic.
        return Challenge { display, answer };
    }
    for _ in 0..spec.size {
        let s = &symbols[pick(rng, symbols.len())];
        let form = s.forms[pick(rng, s.forms.len())];
        display.push(form);
        answer.push(s.answer);
    }
    Challenge { display, answer }
}

/// The one comparison helper of the verify path: trimmed, lower case.
/// Compare `normalize_answer(input) == stored_answer`.
pub fn normalize_answer(input: &str) -> String {
    input.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn cfg() -> CodeSpec<'static> {
        CodeSpec::default()
    }

    #[test]
    fn every_symbol_is_equally_likely() {
        // 26 symbols x 2000 expected draws each: one standard deviation is
        // about 44, so a band of +-300 never fails by chance but catches any
        // symbol drawn 15 % more or less often than the others.
        let symbols = alphabet("");
        let per_symbol = 2000;
        let mut counts: HashMap<char, usize> = HashMap::new();
        let draws = symbols.len() * per_symbol / cfg().size;
        for _ in 0..draws {
            for c in new_challenge(cfg()).answer.chars() {
                *counts.entry(c).or_default() += 1;
            }
        }
        assert_eq!(counts.len(), symbols.len());
        for (symbol, count) in counts {
            assert!(
                count.abs_diff(per_symbol) < 300,
                "{symbol} drawn {count} times"
            );
        }
    }

    #[test]
    fn alphabet_matches_symbol_table() {
        let forms: String = alphabet("")
            .iter()
            .flat_map(|s| s.forms.iter())
            .filter(|c| !c.is_ascii_uppercase())
            .chain(
                alphabet("")
                    .iter()
                    .flat_map(|s| s.forms.iter())
                    .filter(|c| c.is_ascii_uppercase()),
            )
            .collect();
        assert_eq!(forms, DEFAULT_ALPHABET);
        for s in alphabet("") {
            assert_eq!(s.forms[0], s.answer);
            assert!(s.forms.iter().all(|f| f.to_ascii_lowercase() == s.answer));
        }
        for c in "0oOQD1lIijzZsSBgq".chars() {
            assert!(!DEFAULT_ALPHABET.contains(c), "{c} is confusable");
        }
    }

    #[test]
    fn codes_use_the_alphabet_and_cover_it_evenly() {
        let mut counts: HashMap<char, usize> = HashMap::new();
        let mut shown: HashSet<char> = HashSet::new();
        let c = cfg();
        for _ in 0..5000 {
            let ch = new_challenge(c);
            assert_eq!(ch.display.chars().count(), 4);
            assert_eq!(ch.answer, normalize_answer(&ch.display));
            for d in ch.display.chars() {
                assert!(DEFAULT_ALPHABET.contains(d), "{d}");
                shown.insert(d);
            }
            for a in ch.answer.chars() {
                *counts.entry(a).or_default() += 1;
            }
        }
        assert_eq!(shown.len(), DEFAULT_ALPHABET.len(), "every form appears");
        assert_eq!(counts.len(), 26);
        // 20000 draws over 26 symbols: ~769 each, sd ~27; 600..950 is > 6 sd.
        for (c, n) in counts {
            assert!((600..950).contains(&n), "{c}: {n}");
        }
    }

    #[test]
    fn ignore_chars_are_never_drawn() {
        let mut c = cfg();
        c.ignore_chars = "aA2345b";
        c.size = 6;
        let mut seen_upper_only = false;
        for _ in 0..3000 {
            let ch = new_challenge(c);
            assert_eq!(ch.display.len(), 6);
            for d in ch.display.chars() {
                assert!(!c.ignore_chars.contains(d), "{d} ignored");
            }
            assert!(!ch.answer.contains(['a', '2', '3', '4', '5', 'b']));
            seen_upper_only |= ch.display.contains('C');
        }
        assert!(seen_upper_only);
        // Ignoring one form keeps the other.
        let left = alphabet("c");
        let c_sym = left.iter().find(|s| s.answer == 'c').unwrap();
        assert_eq!(c_sym.forms, vec!['C']);
        assert!(!alphabet("cC").iter().any(|s| s.answer == 'c'));
    }

    #[test]
    fn sizes_one_to_six() {
        for size in 1..=6 {
            let mut c = cfg();
            c.size = size;
            assert_eq!(new_challenge(c).display.chars().count(), size);
        }
    }

    fn eval(display: &str) -> i64 {
        let expr = display.strip_suffix("=?").unwrap();
        let pos = expr.rfind(['+', '-']).unwrap();
        let (a, b) = (&expr[..pos], &expr[pos + 1..]);
        let (a, b): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
        if &expr[pos..pos + 1] == "+" {
            a + b
        } else {
            a - b
        }
    }

    #[test]
    fn math_answers_are_right() {
        let mut c = cfg();
        c.math = Some(MathSpec::default());
        let mut ops = HashSet::new();
        let mut negative = false;
        let mut operands = HashSet::new();
        for _ in 0..3000 {
            let ch = new_challenge(c);
            assert_eq!(ch.answer, eval(&ch.display).to_string(), "{}", ch.display);
            ops.insert(if ch.display.contains('+') { '+' } else { '-' });
            negative |= ch.answer.starts_with('-');
            for part in ch.display.trim_end_matches("=?").split(['+', '-']) {
                let n: i64 = part.parse().unwrap();
                assert!((1..=9).contains(&n));
                operands.insert(n);
            }
        }
        assert_eq!(ops.len(), 2, "random operator uses + and -");
        assert!(negative, "differences may be negative");
        assert_eq!(operands.len(), 9);

        c.math = Some(MathSpec {
            min: 10,
            max: 999,
            operator: MathOperator::Add,
        });
        for _ in 0..500 {
            let ch = new_challenge(c);
            assert!(ch.display.contains('+') && !ch.display.contains('-'));
            assert_eq!(ch.answer, eval(&ch.display).to_string());
        }
        c.math = Some(MathSpec {
            min: 5,
            max: 5,
            operator: MathOperator::Sub,
        });
        let ch = new_challenge(c);
        assert_eq!((ch.display.as_str(), ch.answer.as_str()), ("5-5=?", "0"));
    }

    #[test]
    fn normalize_trims_and_lowercases() {
        assert_eq!(normalize_answer("  aB3X \n"), "ab3x");
        assert_eq!(normalize_answer("-2"), "-2");
        assert_eq!(normalize_answer(""), "");
        assert_ne!(normalize_answer("ab 3x"), "ab3x");
    }

    #[test]
    fn drawable_chars_cover_everything() {
        let d = drawable_chars();
        for c in DEFAULT_ALPHABET.chars().chain(MATH_CHARS.chars()) {
            assert!(d.contains(c));
        }
        assert_eq!(d.chars().count(), 42 + 4 + 2); // + 0 and 1 from math digits
    }
}
