//! Parsing what the pages and the API send into the engine's types: shared by both, so a form field and a JSON
//! field mean the same thing.

use fctr_core::Denial;
use fctr_ports::{FactorId, OtpCode, Reason};

/// An optional factor id (empty means none): `invalid_input` when it is not a factor id.
pub(crate) fn factor(s: Option<&str>) -> Result<Option<FactorId>, Denial> {
    s.filter(|s| !s.is_empty())
        .map(|s| FactorId::parse(s.to_owned()).map_err(|_| Denial::new(Reason::InvalidInput)))
        .transpose()
}

/// A one-time code the caller read out ([`OtpCode::parse`]): `invalid_input` when it is not one.
pub(crate) fn code(s: &str) -> Result<OtpCode, Denial> {
    OtpCode::parse(s).map_err(|_| Denial::new(Reason::InvalidInput))
}
