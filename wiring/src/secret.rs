//! Where a secret comes from: [`SecretSource`], and the one function that reads it ([`SecretSource::resolve`]).
//!
//! The configuration file never holds a secret, only where to find it: an `x_env` key (an environment variable)
//! or an `x_file` key (a file, e.g. a mounted Kubernetes or Docker secret). Both keys of a pair map to one
//! `Option<SecretSource>` field when the file is parsed ([`SecretSource::from_keys`]); reading happens later,
//! once, with [`SecretSource::resolve`], which zeroizes every intermediate copy. A secret's value is never part of
//! an error message or of `Debug` output: errors name the key and, for a file, its path.

use crate::config::{ConfigError, invalid};
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where a secret is read from.
#[derive(Clone)]
#[non_exhaustive]
pub enum SecretSource {
    /// An environment variable, by name (`x_env` in the file).
    Env(String),
    /// A file, by path (`x_file` in the file); one trailing newline is dropped.
    File(PathBuf),
    /// The value itself, given in code (demo mode and tests). Never read from the configuration file: a secret
    /// pasted into the TOML is an unknown key.
    Literal(SecretString),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(var) => f.debug_tuple("Env").field(var).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Literal(_) => f.write_str("Literal([redacted])"),
        }
    }
}

impl SecretSource {
    /// The source named by a pair of keys `{name}_env` / `{name}_file` (at most one may be set).
    ///
    /// # Errors
    /// A message naming both keys when both are set (the parser adds the line and column).
    pub fn from_keys(
        name: &str,
        env: Option<String>,
        file: Option<PathBuf>,
    ) -> Result<Option<Self>, String> {
        match (env, file) {
            (Some(_), Some(_)) => Err(format!("set either {name}_env or {name}_file, not both")),
            (Some(var), None) => Ok(Some(Self::Env(var))),
            (None, Some(path)) => Ok(Some(Self::File(path))),
            (None, None) => Ok(None),
        }
    }

    /// Reads the secret now, dropping a trailing newline. Every copy made on the way is zeroized.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `key` when the variable is not set, the file cannot be read, or the value
    /// is empty. The value itself never appears in the error.
    pub fn resolve(&self, key: &str) -> Result<SecretString, ConfigError> {
        let raw: Zeroizing<String> = match self {
            Self::Env(var) => Zeroizing::new(
                std::env::var(var)
                    .map_err(|_| invalid(key, format!("environment variable {var} is not set")))?,
            ),
            Self::File(path) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?,
            ),
            Self::Literal(value) => {
                Zeroizing::new(secrecy::ExposeSecret::expose_secret(value).to_owned())
            }
        };
        let trimmed = raw.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(invalid(key, "is empty"));
        }
        Ok(SecretString::from(trimmed.to_owned()))
    }

    /// As [`SecretSource::resolve`] for an optional source: a missing one is an error naming `key`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `key`, as [`SecretSource::resolve`], or when `source` is `None`.
    pub fn resolve_required(source: Option<&Self>, key: &str) -> Result<SecretString, ConfigError> {
        match source {
            Some(s) => s.resolve(key),
            None => Err(invalid(
                key,
                "missing: give *_env (an environment variable) or *_file; secrets never go in the TOML",
            )),
        }
    }
}

/// Reads a secret from an environment variable or a file (exactly one), trimming a trailing newline: for
/// sources given as command-line flags rather than file keys.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `key` when neither or both are set, or the source is empty or unreadable.
pub fn read_secret(
    key: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    if env.is_some() && file.is_some() {
        return Err(invalid(key, "set either *_env or *_file, not both"));
    }
    let source = match (env, file) {
        (Some(var), _) => Some(SecretSource::Env(var.to_owned())),
        (None, Some(path)) => Some(SecretSource::File(path.to_path_buf())),
        (None, None) => None,
    };
    SecretSource::resolve_required(source.as_ref(), key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn a_file_is_read_without_its_trailing_newline_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let value = "x".repeat(40);
        std::fs::write(&p, format!("{value}\n")).unwrap();
        let got = SecretSource::File(p.clone()).resolve("k").unwrap();
        assert_eq!(got.expose_secret(), value);
        std::fs::write(&p, "\n").unwrap();
        let e = SecretSource::File(p).resolve("k").unwrap_err().to_string();
        assert!(e.contains("k: is empty"), "{e}");
    }

    #[test]
    fn errors_name_the_key_and_the_source_never_the_value() {
        let e = SecretSource::Env("FCTR_TEST_SURELY_UNSET_VAR".into())
            .resolve("sign_in.client_secret")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sign_in.client_secret"), "{e}");
        assert!(e.contains("FCTR_TEST_SURELY_UNSET_VAR is not set"), "{e}");
        let e = SecretSource::resolve_required(None, "okta.api_token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("okta.api_token: missing"), "{e}");
        let canary = "y".repeat(33);
        let lit = SecretSource::Literal(SecretString::from(canary.clone()));
        assert!(!format!("{lit:?}").contains(&canary));
        assert_eq!(lit.resolve("k").unwrap().expose_secret(), canary);
    }

    #[test]
    fn a_pair_of_keys_is_one_source_or_an_error() {
        assert!(
            SecretSource::from_keys("key", None, None)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            SecretSource::from_keys("key", Some("V".into()), None).unwrap(),
            Some(SecretSource::Env(v)) if v == "V"
        ));
        let e = SecretSource::from_keys("key", Some("V".into()), Some("/f".into())).unwrap_err();
        assert!(e.contains("key_env or key_file, not both"), "{e}");
        let e = read_secret("k", Some("V"), Some(Path::new("/f")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
    }
}
