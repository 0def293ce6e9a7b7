//! Secrets stay out of `Debug` and errors; bad options are refused.

use crate::support::{Fixture, random_hex, redis_url};
use fctr_ports::SecretString;
use fctr_redis::{ConnectError, RedisOptions, RedisState};

#[tokio::test]
async fn debug_shows_neither_the_seal_key_nor_the_url() {
    let fx = Fixture::new().await;
    let seal = random_hex(32);
    let options =
        RedisOptions::new(SecretString::from(seal.clone())).with_prefix(fx.prefix.clone());
    let shown = format!("{options:?}");
    assert!(!shown.contains(&seal), "{shown}");
    assert!(shown.contains(&fx.prefix));
    let url = redis_url();
    let state = RedisState::connect(SecretString::from(url.clone()), options)
        .await
        .unwrap();
    let shown = format!("{state:?}");
    assert!(!shown.contains(&seal) && !shown.contains(&url), "{shown}");
    assert!(shown.contains(&fx.prefix));
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_being_shown() {
    let password = format!("pw{}", random_hex(8));
    let url = redis_url().replacen("redis://", &format!("redis://:{password}@"), 1);
    let fx = Fixture::new().await;
    let err = RedisState::connect(SecretString::from(url), fx.options())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Unavailable), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(&password));
}

#[tokio::test]
async fn bad_options_are_refused() {
    let fx = Fixture::new().await;
    let url = || SecretString::from(redis_url());
    let short = RedisOptions::new(SecretString::from("x".repeat(31)));
    assert!(matches!(
        RedisState::connect(url(), short).await.unwrap_err(),
        ConnectError::InvalidOptions { .. }
    ));
    for prefix in ["", "has space", "glob*", "x".repeat(65).as_str()] {
        let o = fx.options().with_prefix(prefix);
        assert!(
            matches!(
                RedisState::connect(url(), o).await.unwrap_err(),
                ConnectError::InvalidOptions { .. }
            ),
            "{prefix:?}"
        );
    }
    let o = fx.options().with_command_timeout(std::time::Duration::ZERO);
    assert!(matches!(
        RedisState::connect(url(), o).await.unwrap_err(),
        ConnectError::InvalidOptions { .. }
    ));
    assert!(matches!(
        RedisState::connect(SecretString::from("http://nope".to_owned()), fx.options())
            .await
            .unwrap_err(),
        ConnectError::InvalidUrl
    ));
}
