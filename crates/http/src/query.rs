//! Query strings: every parameter known, none twice, all errors at once.

use actix_web::web;

use crate::error::{ApiError, Detail};

/// Default page size of a listing.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of a listing.
pub const MAX_LIMIT: u32 = 100;

/// The parameters of `query`, each passed once to `accept`, which returns
/// `Ok(false)` for a name it does not know or `Err(message)` for a bad value.
/// Unknown and repeated names are refused, like unknown body fields.
///
/// # Errors
/// A 400 listing every bad parameter.
pub fn parse_query(
    query: &str,
    known: &str,
    mut accept: impl FnMut(&str, &str) -> Result<bool, String>,
) -> Result<(), ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| ApiError::invalid_field("query", "the query string is malformed"))?
        .into_inner();
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &pairs {
        if seen.contains(&name.as_str()) {
            errors.push(Detail::at(name.clone(), "is given more than once"));
            continue;
        }
        seen.push(name);
        match accept(name, value) {
            Ok(true) => {}
            Ok(false) => {
                errors.push(Detail::at(name.clone(), format!("is not a known query parameter (known: {known})")));
            }
            Err(message) => errors.push(Detail::at(name.clone(), message)),
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

/// A page size, 1 to 100.
///
/// # Errors
/// The message for a bad value.
pub fn parse_limit(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from 1 to {MAX_LIMIT}")),
    }
}
