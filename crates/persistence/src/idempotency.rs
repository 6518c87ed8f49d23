//! Idempotency records. A claim is a row in state `in_flight`; the creating
//! transaction turns it `completed` with the response (see `connections`).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::pg::Pg;
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper};
use sigsentry_domain::{IdempotencyKey, ProjectId};
use sigsentry_ports::{IdempotencyBegin, IdempotencyStore, StoreError, StoredResponse};

use crate::AnyStore;
use crate::decode::corrupt_row;
use crate::dialect::{Conn, db};
use crate::schema::idempotency_keys as idem;
use crate::sql_types::{DbId, DbTime, UtcTime};
use crate::tx::TxError;

const IN_FLIGHT: &str = "in_flight";
const COMPLETED: &str = "completed";

/// What a caller told to wait should wait before retrying.
const RETRY_AFTER_SECS: u32 = 1;

/// Expired records purged per claim at most on PostgreSQL, so one claim
/// never pays for a large backlog; the rest goes with the next claims.
const PURGE_BATCH: i64 = 500;

/// Deletes expired records that no other transaction is touching, on
/// PostgreSQL. `SKIP LOCKED` keeps concurrent claims from queueing (or
/// deadlocking) on each other's purges: a row locked elsewhere is simply
/// left for a later claim. (On SQLite claims run one at a time anyway.)
const PG_PURGE: &str = "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY( \
                        SELECT ctid FROM idempotency_keys WHERE created_at < $1 \
                        LIMIT $2 FOR UPDATE SKIP LOCKED))";

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idem, check_for_backend(Sqlite, Pg))]
struct IdempotencyRow {
    fingerprint: String,
    state: String,
    response_status: Option<i32>,
    response_body: Option<String>,
    response_location: Option<String>,
    created_at: DbTime,
}

impl IdempotencyStore for AnyStore {
    async fn begin(
        &self,
        project: ProjectId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        lease_secs: u32,
        retention_secs: u32,
    ) -> Result<IdempotencyBegin, StoreError> {
        let claim = Claim {
            project: project.into(),
            key: key.as_str().to_owned(),
            fingerprint: fingerprint.to_owned(),
            now,
            lease_secs,
            retention_secs,
        };
        self.write(async move |c| begin(c, &claim).await).await
    }

    async fn release(&self, project: ProjectId, key: &IdempotencyKey) -> Result<(), StoreError> {
        let project = DbId::from(project);
        let key = key.as_str().to_owned();
        self.run(async move |c| {
            // Only an unfinished claim: a completed record must stay for replays.
            let unfinished = idem::table
                .filter(idem::project_id.eq(project))
                .filter(idem::key.eq(&key))
                .filter(idem::state.eq(IN_FLIGHT));
            db!(c, |c| diesel::delete(unfinished).execute(c))?;
            Ok(())
        })
        .await
    }
}

struct Claim {
    project: DbId,
    key: String,
    fingerprint: String,
    now: DateTime<Utc>,
    lease_secs: u32,
    retention_secs: u32,
}

/// `at` minus `secs` seconds; clamps instead of overflowing.
fn before(at: DateTime<Utc>, secs: u32) -> DateTime<Utc> {
    at.checked_sub_signed(TimeDelta::seconds(i64::from(secs))).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

async fn begin(c: &mut Conn<'_>, claim: &Claim) -> Result<IdempotencyBegin, TxError> {
    // Records past both windows can no longer matter to anyone: purge them
    // here, cheaply through the created_at index, instead of in a sweeper.
    let purge_before = DbTime::from(before(claim.now, claim.retention_secs.max(claim.lease_secs)));
    db!(c,
        sqlite: |c| diesel::delete(idem::table.filter(idem::created_at.lt(purge_before))).execute(c),
        pg: |c| diesel::sql_query(PG_PURGE).bind::<UtcTime, _>(purge_before).bind::<BigInt, _>(PURGE_BATCH).execute(c))?;

    let now = DbTime::from(claim.now);
    let target = idem::table.filter(idem::project_id.eq(claim.project)).filter(idem::key.eq(&claim.key));
    // Insert-or-lock: the insert claims a free key; on a conflict (PostgreSQL)
    // it waits for a concurrent claimer to commit or roll back, and the row
    // is then locked for the checks below. A row released between the two
    // statements sends us round again; twice is plenty, as each round means
    // another request finished with the key meanwhile. (On SQLite the write
    // lock of `BEGIN IMMEDIATE` leaves nobody to race: one round.)
    let mut row = None;
    for _ in 0..3 {
        let insert = diesel::insert_into(idem::table)
            .values((
                idem::project_id.eq(claim.project),
                idem::key.eq(&claim.key),
                idem::fingerprint.eq(&claim.fingerprint),
                idem::state.eq(IN_FLIGHT),
                idem::created_at.eq(now),
            ))
            .on_conflict_do_nothing();
        if db!(c, |c| insert.execute(c))? > 0 {
            return Ok(IdempotencyBegin::Claimed);
        }
        row = db!(c,
            sqlite: |c| target.select(IdempotencyRow::as_select()).first(c),
            pg: |c| target.select(IdempotencyRow::as_select()).for_update().first(c))
        .optional()?;
        if row.is_some() {
            break;
        }
    }
    let Some(row) = row else {
        return Err(StoreError::Unavailable("the idempotency key kept changing hands; retry".to_owned()).into());
    };

    let age_secs = (claim.now - row.created_at.0).num_seconds();
    let completed = match row.state.as_str() {
        COMPLETED => true,
        IN_FLIGHT => false,
        other => return Err(corrupt_row("idempotency state", other).into()),
    };
    // An expired record or an abandoned claim frees the key, whatever request made it.
    let expired =
        if completed { age_secs > i64::from(claim.retention_secs) } else { age_secs > i64::from(claim.lease_secs) };
    if expired {
        let reclaim = diesel::update(target).set((
            idem::fingerprint.eq(&claim.fingerprint),
            idem::state.eq(IN_FLIGHT),
            idem::response_status.eq(None::<i32>),
            idem::response_body.eq(None::<String>),
            idem::response_location.eq(None::<String>),
            idem::created_at.eq(now),
        ));
        db!(c, |c| reclaim.execute(c))?;
        return Ok(IdempotencyBegin::Claimed);
    }
    if row.fingerprint != claim.fingerprint {
        return Ok(IdempotencyBegin::Mismatch);
    }
    if !completed {
        return Ok(IdempotencyBegin::InFlight { retry_after_secs: RETRY_AFTER_SECS });
    }
    let (Some(status), Some(body)) = (row.response_status, row.response_body) else {
        return Err(corrupt_row("idempotency response", "a completed record lacks its response").into());
    };
    let status = u16::try_from(status).map_err(|e| corrupt_row("idempotency response status", e))?;
    Ok(IdempotencyBegin::Replay(StoredResponse { status, body, location: row.response_location }))
}
