//! Temporary passwords from the operating system's CSPRNG.

use rand::Rng as _;
use rand::rngs::OsRng;
use rand::seq::SliceRandom as _;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Length of generated passwords (Entra accepts 8–256).
pub(crate) const LENGTH: usize = 20;

// Look-alikes (0/O, 1/l/I) left out: the agent reads the password to the caller.
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGIT: &[u8] = b"23456789";
// Symbols Entra's password policy accepts, minus ones awkward to read out or to paste into shells.
const SYMBOL: &[u8] = b"!#$%*+-=?@^_";

/// A 20-character password with at least one upper-case letter, lower-case letter, digit and symbol (about
/// 120 bits of entropy), held in a [`SecretString`].
pub(crate) fn generate() -> SecretString {
    let mut rng = OsRng;
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    let mut bytes = Zeroizing::new(Vec::with_capacity(LENGTH));
    for class in [UPPER, LOWER, DIGIT, SYMBOL] {
        bytes.push(class[rng.gen_range(0..class.len())]);
    }
    while bytes.len() < LENGTH {
        bytes.push(all[rng.gen_range(0..all.len())]);
    }
    bytes.shuffle(&mut rng);
    let s: String = bytes.iter().map(|b| char::from(*b)).collect();
    SecretString::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn passwords_meet_complexity_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let p = generate();
            let s = p.expose_secret();
            assert_eq!(s.len(), LENGTH);
            assert!(s.bytes().any(|b| UPPER.contains(&b)));
            assert!(s.bytes().any(|b| LOWER.contains(&b)));
            assert!(s.bytes().any(|b| DIGIT.contains(&b)));
            assert!(s.bytes().any(|b| SYMBOL.contains(&b)));
            assert!(s.is_ascii());
            assert!(seen.insert(s.to_owned()), "repeated password");
        }
    }
}
