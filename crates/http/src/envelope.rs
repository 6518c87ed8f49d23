//! The two envelopes of every answer, as types that serialize the body and
//! document it: the OpenAPI document is generated from these very types.

use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::error::{Detail, ErrorCode};

macro_rules! json_constant {
    ($(#[$doc:meta])* $name:ident = $value:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bool($value)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([$value])).into()
            }
        }

        impl ToSchema for $name {}
    };
}

json_constant!(
    /// The JSON value `true`, and a schema that allows only it.
    True = true
);
json_constant!(
    /// The JSON value `false`, and a schema that allows only it.
    False = false
);

/// `{"success": true, "data": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    pub success: True,
    /// The answer.
    pub data: T,
}

impl<T> Envelope<T> {
    /// Wraps `data`.
    pub fn of(data: T) -> Self {
        Self { success: True, data }
    }
}

/// `{"success": true, "data": [...], "meta": {"nextCursor": ...}}`: one page of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// Always `true`.
    pub success: True,
    /// The items of this page.
    pub data: Vec<T>,
    /// Paging.
    pub meta: PageMeta,
}

impl<T> Page<T> {
    /// A page of `data`, followed by the page `next_cursor` names.
    pub fn of(data: Vec<T>, next_cursor: Option<String>) -> Self {
        Self { success: True, data, meta: PageMeta { next_cursor } }
    }
}

/// Page metadata.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `{"success": false, "error": {...}}`: every failure, whatever produced it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: False,
    /// What went wrong.
    pub error: ErrorBody,
}

/// The error object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A stable code.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// Field-level details, when any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub details: Vec<Detail>,
    /// Quote it to support; also in the `X-Request-Id` header.
    pub request_id: String,
}
