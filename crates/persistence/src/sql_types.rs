//! The two column types whose storage differs by dialect, so that one
//! `schema.rs` and one row model serve both.
//!
//! | SQL type    | Rust value | SQLite                               | PostgreSQL    |
//! |-------------|------------|--------------------------------------|---------------|
//! | [`Id`]      | [`DbId`]   | hyphenated lowercase text            | `uuid`        |
//! | [`UtcTime`] | [`DbTime`] | RFC 3339 UTC text, milliseconds, `Z` | `timestamptz` |
//!
//! The SQLite forms are the ones every existing database holds: fixed-width
//! text whose order is the order of the values, so `<`, `ORDER BY`, `min`
//! and the indexes work on the text. Both dialects store times truncated to
//! milliseconds (SQLite's text has no more), so both give back the same
//! values and compare the same parameters.
//!
//! The Rust values are local newtypes of `Uuid` and `DateTime<Utc>`: diesel
//! binds a value through `AsExpression`, which coherence forbids this crate
//! to implement for foreign types. They convert to and from the domain's
//! ids and times with `From`.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::query_builder::QueryId;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{SqlOrd, SqlType, Text, Timestamptz};
use diesel::sqlite::{Sqlite, SqliteValue};
use sigsentry_domain::{ApiKeyId, ConnectionId, ProjectId, TenantId};
use uuid::Uuid;

/// A UUID column: `Text` on SQLite, `uuid` on PostgreSQL.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(sqlite_type(name = "Text"))]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
pub struct Id;

/// A point-in-time column: `Text` on SQLite, `timestamptz` on PostgreSQL.
/// (Not named `Time`: diesel's `table!` gives columns of a type so named
/// interval arithmetic.)
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(sqlite_type(name = "Text"))]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
pub struct UtcTime;

// `min` over time columns (the sync scheduler's aggregates).
impl SqlOrd for UtcTime {}

/// A UUID as an [`Id`] column holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Id)]
pub(crate) struct DbId(pub Uuid);

/// A time as a [`UtcTime`] column holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = UtcTime)]
pub(crate) struct DbTime(pub DateTime<Utc>);

impl std::fmt::Display for DbId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl From<Uuid> for DbId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

macro_rules! domain_ids {
    ($($id:ty),*) => {$(
        impl From<$id> for DbId {
            fn from(id: $id) -> Self {
                Self(*id.as_uuid())
            }
        }
        impl From<DbId> for $id {
            fn from(id: DbId) -> Self {
                <$id>::from_uuid(id.0)
            }
        }
    )*};
}

domain_ids!(TenantId, ProjectId, ConnectionId, ApiKeyId);

impl From<DateTime<Utc>> for DbTime {
    fn from(at: DateTime<Utc>) -> Self {
        Self(at)
    }
}

impl From<DbTime> for DateTime<Utc> {
    fn from(at: DbTime) -> Self {
        at.0
    }
}

impl DbTime {
    /// The time as both dialects store it.
    fn stored(self) -> DateTime<Utc> {
        self.0.trunc_subsecs(3)
    }
}

impl ToSql<Id, Sqlite> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Id, Sqlite> for DbId {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Uuid::parse_str(&text).map(Self).map_err(|e| format!("stored id '{text}' is not a UUID: {e}").into())
    }
}

impl ToSql<Id, Pg> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Id, Pg> for DbId {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(value).map(Self)
    }
}

impl ToSql<UtcTime, Sqlite> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.to_rfc3339_opts(SecondsFormat::Millis, true));
        Ok(IsNull::No)
    }
}

impl FromSql<UtcTime, Sqlite> for DbTime {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(|e| format!("stored time '{text}' is not RFC 3339: {e}").into())
    }
}

impl ToSql<UtcTime, Pg> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<Timestamptz, Pg>>::to_sql(&self.stored(), &mut out.reborrow())
    }
}

impl FromSql<UtcTime, Pg> for DbTime {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<Timestamptz, Pg>>::from_sql(value).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    #[test]
    fn sqlite_text_keeps_the_existing_formats() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + TimeDelta::microseconds(123_456);
        assert_eq!(DbTime(at).0.to_rfc3339_opts(SecondsFormat::Millis, true), "2026-11-22T10:00:00.123Z");
        assert_eq!(DbTime(at).stored(), at - TimeDelta::microseconds(456));
        let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00AB);
        assert_eq!(DbId(id).to_string(), "01900000-0000-7000-8000-0000000000ab");
    }
}
