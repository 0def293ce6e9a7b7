//! RFC 6238 TOTP (HMAC-SHA1, 30 s step, 6 digits), as Okta Verify and Google Authenticator use it.

use ring::hmac;

/// The TOTP time step in seconds.
pub const STEP_SECONDS: i64 = 30;

/// The 6-digit RFC 4226 HOTP value of `secret` at `counter`.
pub fn hotp(secret: &[u8], counter: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let bin = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// The time step (counter) for a Unix time in seconds.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The 6-digit TOTP code for `secret` at Unix time `unix_seconds`.
pub fn totp_at(secret: &[u8], unix_seconds: i64) -> String {
    hotp(secret, u64::try_from(step_at(unix_seconds)).unwrap_or(0))
}

/// Finds the step offset (from `current_step`) within `±window` steps whose code equals `code`.
pub(crate) fn find_step(secret: &[u8], code: &str, current_step: i64, window: i64) -> Option<i64> {
    // Prefer the closest step.
    let mut offsets: Vec<i64> = (-window..=window).collect();
    offsets.sort_by_key(|o| o.abs());
    offsets.into_iter().find(|o| {
        let step = current_step + o;
        step >= 0 && u64::try_from(step).is_ok_and(|s| super::util::ct_eq(&hotp(secret, s), code))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 seed, truncated to 6 digits (the 8-digit values end in these).
        let seed = b"12345678901234567890";
        assert_eq!(totp_at(seed, 59), "287082");
        assert_eq!(totp_at(seed, 1_111_111_109), "081804");
        assert_eq!(totp_at(seed, 1_111_111_111), "050471");
        assert_eq!(totp_at(seed, 1_234_567_890), "005924");
        assert_eq!(totp_at(seed, 2_000_000_000), "279037");
        assert_eq!(totp_at(seed, 20_000_000_000), "353130");
    }

    #[test]
    fn finds_adjacent_step() {
        let seed = b"12345678901234567890";
        let code = totp_at(seed, 59);
        assert_eq!(find_step(seed, &code, step_at(59) + 1, 1), Some(-1));
        assert_eq!(find_step(seed, &code, step_at(59) + 3, 1), None);
    }
}
