//! What is known of each connection's credentials, and the claim on
//! renewing them (`credential_states`, one row per connection).
//!
//! The claim is a lease taken by compare-and-set inside a write transaction
//! (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the state row locked `FOR
//! UPDATE`), not a lock held while the token endpoint answers: a
//! transaction open across an HTTP call would hold a pooled connection (on
//! SQLite, the database's one write lock) for as long as the platform
//! takes. The lease is longer than a refresh can take, so one holder at a
//! time spends a refresh token, across workers, processes and replicas.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use sigsentry_domain::{ConnectionId, CredentialUse};
use sigsentry_ports::{CredentialReport, CredentialStore, RenewalClaim, RenewalOutcome, SealedSecret, StoreError};
use uuid::Uuid;

use crate::AnyStore;
use crate::dialect::{Conn, db};
use crate::rows::CredentialStateRow;
use crate::schema::{credential_states as states, repo_connections as conns};
use crate::sql_types::{DbId, DbTime};
use crate::tx::TxError;

impl CredentialStore for AnyStore {
    async fn record_credential_use(
        &self,
        connection_id: ConnectionId,
        credentials_set_at: DateTime<Utc>,
        report: CredentialReport,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (id, set_at, at) = (DbId::from(connection_id), DbTime::from(credentials_set_at), DbTime::from(at));
        self.write(async move |c| {
            let current = db!(c, |c| conns::table
                .filter(conns::id.eq(id))
                .filter(conns::credentials_updated_at.eq(set_at))
                .select(conns::id)
                .first::<DbId>(c))
            .optional()?;
            if current.is_none() {
                return Ok(false);
            }
            let Some(mut state) = lock_state(c, id).await? else { return Ok(false) };
            if let Some(outcome) = report.outcome {
                state.last_use = outcome.as_str().to_owned();
                state.last_use_at = Some(at);
            }
            if let Some(expires_at) = report.expires_at {
                state.expires_at = expires_at.map(DbTime::from);
            }
            save_state(c, &state).await?;
            Ok(true)
        })
        .await
    }

    async fn claim_renewal(
        &self,
        connection_id: ConnectionId,
        seen: &SealedSecret,
        holder: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<RenewalClaim, StoreError> {
        let seen = seen.clone();
        let (id, now, until) = (DbId::from(connection_id), DbTime::from(now), DbTime::from(until));
        self.write(async move |c| {
            // The state row first: on PostgreSQL its lock orders the claimers.
            let Some(mut state) = lock_state(c, id).await? else { return Ok(RenewalClaim::Gone) };
            let Some((key_id, ciphertext)) = db!(c, |c| conns::table
                .filter(conns::id.eq(id))
                .select((conns::credential_key_id, conns::credential_ciphertext))
                .first::<(String, Vec<u8>)>(c))
            .optional()?
            else {
                return Ok(RenewalClaim::Gone);
            };
            if key_id != seen.key_id || ciphertext != seen.ciphertext {
                return Ok(RenewalClaim::Changed(SealedSecret { key_id, ciphertext }));
            }
            if state.last_use == CredentialUse::Refused.as_str() {
                return Ok(RenewalClaim::Refused);
            }
            if let Some(held_until) = state.renewal_until
                && held_until > now
            {
                return Ok(RenewalClaim::Busy(held_until.into()));
            }
            state.renewal_holder = Some(DbId::from(holder));
            state.renewal_until = Some(until);
            save_state(c, &state).await?;
            Ok(RenewalClaim::Claimed)
        })
        .await
    }

    async fn finish_renewal(
        &self,
        connection_id: ConnectionId,
        holder: Uuid,
        outcome: RenewalOutcome,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (id, holder, at) = (DbId::from(connection_id), DbId::from(holder), DbTime::from(at));
        self.write(async move |c| {
            let Some(mut state) = lock_state(c, id).await? else { return Ok(false) };
            if state.renewal_holder != Some(holder) {
                return Ok(false);
            }
            state.renewal_holder = None;
            state.renewal_until = None;
            state.last_use_at = Some(at);
            match &outcome {
                RenewalOutcome::Renewed(sealed) => {
                    let replace = diesel::update(conns::table.filter(conns::id.eq(id))).set((
                        conns::credential_key_id.eq(&sealed.key_id),
                        conns::credential_ciphertext.eq(&sealed.ciphertext),
                    ));
                    db!(c, |c| replace.execute(c))?;
                    state.last_use = CredentialUse::Accepted.as_str().to_owned();
                    state.expires_at = None;
                }
                RenewalOutcome::Refused { expires_at } => {
                    state.last_use = CredentialUse::Refused.as_str().to_owned();
                    state.expires_at = Some(DbTime::from(*expires_at));
                }
            }
            save_state(c, &state).await?;
            Ok(true)
        })
        .await
    }

    async fn installation_refused(&self, installation_id: i64, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let at = DbTime::from(at);
        self.run(async move |c| {
            let made_through = conns::table.filter(conns::github_installation_id.eq(installation_id)).select(conns::id);
            let refuse = diesel::update(states::table.filter(states::connection_id.eq_any(made_through)))
                .set((states::last_use.eq(CredentialUse::Refused.as_str()), states::last_use_at.eq(Some(at))));
            let changed = db!(c, |c| refuse.execute(c))?;
            Ok(u64::try_from(changed).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn abandon_renewal(&self, connection_id: ConnectionId, holder: Uuid) -> Result<(), StoreError> {
        let (id, holder) = (DbId::from(connection_id), DbId::from(holder));
        self.run(async move |c| {
            let release = diesel::update(
                states::table.filter(states::connection_id.eq(id)).filter(states::renewal_holder.eq(holder)),
            )
            .set((states::renewal_holder.eq(None::<DbId>), states::renewal_until.eq(None::<DbTime>)));
            db!(c, |c| release.execute(c))?;
            Ok(())
        })
        .await
    }
}

/// The connection's state row, locked on PostgreSQL until the transaction
/// ends (SQLite's write lock already excludes every other writer).
async fn lock_state(c: &mut Conn<'_>, id: DbId) -> Result<Option<CredentialStateRow>, TxError> {
    let query = states::table.filter(states::connection_id.eq(id));
    Ok(db!(c,
        sqlite: |c| query.select(CredentialStateRow::as_select()).first(c),
        pg: |c| query.select(CredentialStateRow::as_select()).for_update().first(c))
    .optional()?)
}

async fn save_state(c: &mut Conn<'_>, state: &CredentialStateRow) -> Result<(), TxError> {
    let update = diesel::update(states::table.filter(states::connection_id.eq(state.connection_id))).set((
        states::expires_at.eq(state.expires_at),
        states::last_use.eq(&state.last_use),
        states::last_use_at.eq(state.last_use_at),
        states::renewal_holder.eq(state.renewal_holder),
        states::renewal_until.eq(state.renewal_until),
    ));
    db!(c, |c| update.execute(c))?;
    Ok(())
}
