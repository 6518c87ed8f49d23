//! Idempotency records. A claim is a row in state `in_flight`; the creating
//! transaction turns it `completed` with the response (see `connections`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use sigsentry_domain::{IdempotencyKey, ProjectId};
use sigsentry_ports::{IdempotencyBegin, IdempotencyStore, StoreError, StoredResponse};

use super::SqliteStore;
use super::error::{TxError, corrupt_row};
use super::rows::{fmt_time, fmt_time_before, parse_time};
use super::schema::idempotency_keys as idem;

const IN_FLIGHT: &str = "in_flight";
const COMPLETED: &str = "completed";

/// What a caller told to wait should wait before retrying.
const RETRY_AFTER_SECS: u32 = 1;

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idem, check_for_backend(diesel::sqlite::Sqlite))]
struct IdempotencyRow {
    fingerprint: String,
    state: String,
    response_status: Option<i64>,
    response_body: Option<String>,
    response_location: Option<String>,
    created_at: String,
}

impl IdempotencyStore for SqliteStore {
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
            project: project.to_string(),
            key: key.as_str().to_owned(),
            fingerprint: fingerprint.to_owned(),
            now,
            lease_secs,
            retention_secs,
        };
        self.run(move |c| c.immediate_transaction(|c| begin(c, &claim))).await
    }

    async fn release(&self, project: ProjectId, key: &IdempotencyKey) -> Result<(), StoreError> {
        let project = project.to_string();
        let key = key.as_str().to_owned();
        self.run(move |c| {
            // Only an unfinished claim: a completed record must stay for replays.
            diesel::delete(
                idem::table
                    .filter(idem::project_id.eq(&project))
                    .filter(idem::key.eq(&key))
                    .filter(idem::state.eq(IN_FLIGHT)),
            )
            .execute(c)?;
            Ok(())
        })
        .await
    }
}

struct Claim {
    project: String,
    key: String,
    fingerprint: String,
    now: DateTime<Utc>,
    lease_secs: u32,
    retention_secs: u32,
}

fn begin(c: &mut SqliteConnection, claim: &Claim) -> Result<IdempotencyBegin, TxError> {
    // Records past both windows can no longer matter to anyone: purge them
    // here, cheaply through the created_at index, instead of in a sweeper.
    let purge_before = fmt_time_before(claim.now, claim.retention_secs.max(claim.lease_secs));
    diesel::delete(idem::table.filter(idem::created_at.lt(&purge_before))).execute(c)?;

    let target = idem::table.filter(idem::project_id.eq(&claim.project)).filter(idem::key.eq(&claim.key));
    let row = target.select(IdempotencyRow::as_select()).first(c).optional()?;
    let now = fmt_time(claim.now);
    let Some(row) = row else {
        diesel::insert_into(idem::table)
            .values((
                idem::project_id.eq(&claim.project),
                idem::key.eq(&claim.key),
                idem::fingerprint.eq(&claim.fingerprint),
                idem::state.eq(IN_FLIGHT),
                idem::created_at.eq(&now),
            ))
            .execute(c)?;
        return Ok(IdempotencyBegin::Claimed);
    };

    let created_at = parse_time(&row.created_at, "idempotency record time")?;
    let age_secs = (claim.now - created_at).num_seconds();
    let completed = match row.state.as_str() {
        COMPLETED => true,
        IN_FLIGHT => false,
        other => return Err(corrupt_row("idempotency state", other).into()),
    };
    // An expired record or an abandoned claim frees the key, whatever request made it.
    let expired =
        if completed { age_secs > i64::from(claim.retention_secs) } else { age_secs > i64::from(claim.lease_secs) };
    if expired {
        diesel::update(target)
            .set((
                idem::fingerprint.eq(&claim.fingerprint),
                idem::state.eq(IN_FLIGHT),
                idem::response_status.eq(None::<i64>),
                idem::response_body.eq(None::<String>),
                idem::response_location.eq(None::<String>),
                idem::created_at.eq(&now),
            ))
            .execute(c)?;
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
