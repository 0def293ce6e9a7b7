//! Where each parser draws its lines: the longest accepted value, the first refused one, the characters.

use fctr_ports::{
    FactorKind, IdError, KeyId, Month, PseudoId, QueryError, RateKey, TenantId, TruncatedIp,
    UserQuery,
};
use std::net::IpAddr;

#[test]
fn identifiers_accept_their_longest_value_and_refuse_one_more() {
    assert!(TenantId::parse("t".repeat(64)).is_ok());
    assert!(matches!(
        TenantId::parse("t".repeat(65)),
        Err(IdError::TooLong { max: 64, .. })
    ));
    assert!(KeyId::parse("k".repeat(16)).is_ok());
    assert!(matches!(
        KeyId::parse("k".repeat(17)),
        Err(IdError::TooLong { max: 16, .. })
    ));
    assert!(RateKey::parse("r".repeat(200)).is_ok());
    assert!(matches!(
        RateKey::parse("r".repeat(201)),
        Err(IdError::TooLong { max: 200, .. })
    ));
    assert!(matches!(RateKey::parse(""), Err(IdError::Empty { .. })));
    assert!(matches!(
        RateKey::parse("a b"),
        Err(IdError::BadCharacter { .. })
    ));
    let other = "x".repeat(64);
    assert_eq!(
        FactorKind::parse(&other).unwrap(),
        FactorKind::Other(other.clone())
    );
    assert!(matches!(
        FactorKind::parse(&"x".repeat(65)),
        Err(IdError::TooLong { max: 64, .. })
    ));
}

#[test]
fn key_ids_take_lowercase_digits_underscore_and_dash() {
    for ok in ["k1", "key_2", "key-3"] {
        assert!(KeyId::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["K1", "k.1", "k 1", ""] {
        assert!(KeyId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn pseudonyms_carry_between_128_and_256_bits_of_mac() {
    use base64::Engine as _;
    let key = KeyId::parse("k1").unwrap();
    assert!(PseudoId::from_mac(&key, &[1u8; 16]).is_ok());
    assert!(PseudoId::from_mac(&key, &[1u8; 15]).is_err());
    let b64 = |n: usize| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![9u8; n]);
    assert!(PseudoId::parse(format!("k1:{}", b64(16))).is_ok());
    assert!(PseudoId::parse(format!("k1:{}", b64(32))).is_ok());
    assert!(PseudoId::parse(format!("k1:{}", b64(15))).is_err());
    assert!(PseudoId::parse(format!("k1:{}", b64(33))).is_err());
}

#[test]
fn search_text_is_at_most_100_characters() {
    assert!(UserQuery::login(&"a".repeat(UserQuery::MAX_LEN)).is_ok());
    assert!(matches!(
        UserQuery::login(&"a".repeat(UserQuery::MAX_LEN + 1)),
        Err(QueryError::TooLong)
    ));
}

#[test]
fn truncated_addresses_parse_back_only_in_their_truncated_form() {
    let ip: IpAddr = "203.0.113.77".parse().unwrap();
    let t = TruncatedIp::from_ip(ip);
    assert_eq!(t.as_str(), "203.0.113.0/24");
    assert_eq!(TruncatedIp::try_from(t.as_str().to_owned()).unwrap(), t);
    let v6 = TruncatedIp::from_ip("2001:db8:1:2::9".parse().unwrap());
    assert_eq!(TruncatedIp::try_from(v6.as_str().to_owned()).unwrap(), v6);
    for bad in ["203.0.113.77/24", "203.0.113.0/16", "203.0.113.0", "x/24"] {
        assert!(TruncatedIp::try_from(bad.to_owned()).is_err(), "{bad}");
    }
}

#[test]
fn months_are_yyyy_mm_from_1970() {
    let m = Month::parse("2026-03").unwrap();
    assert_eq!((m.year(), m.month()), (2026, 3));
    assert_eq!(m.to_string(), "2026-03");
    assert_eq!(String::from(m), "2026-03");
    let m = Month::parse("1970-12").unwrap();
    assert_eq!((m.year(), m.month()), (1970, 12));
    assert_eq!(Month::parse("2031-01").unwrap().month(), 1);
    for bad in [
        "2026-3", "202-03", "20260-03", "2026-003", "2026-00", "2026-13", "1969-12", "2026/03",
        "abcd-ef",
    ] {
        assert!(Month::parse(bad).is_err(), "{bad}");
    }
}
