//! Webhook secrets, the deliveries already seen, and waking repositories.
//!
//! A delivery is recorded and its repositories woken in one transaction:
//! a failure leaves neither, so the platform's retry (same delivery id)
//! does the work then, and two replicas receiving one delivery twice
//! (the primary key on `(source, delivery)`) wake its repositories once.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use sigsentry_domain::{ConnectionId, Platform, RepoName, SyncState};
use sigsentry_ports::{
    DeliveryMark, DeliveryOutcome, HookRepository, SealedSecret, SealedWebhookSecretRow, StoreError, WakeRepository,
    WebhookStore, WebhookTarget,
};

use crate::AnyStore;
use crate::decode::{check, count_u32, parse};
use crate::dialect::{Conn, db};
use crate::rows::{DeliveryRow, WebhookSecretRow};
use crate::schema::{
    connection_repositories as repos, connection_webhooks as hooks, repo_connections as conns,
    webhook_deliveries as deliveries,
};
use crate::sql_types::{DbId, DbTime};
use crate::tx::TxError;

const PENDING: &str = SyncState::Pending.as_str();
const SYNCING: &str = SyncState::Syncing.as_str();
const READY: &str = SyncState::Ready.as_str();
const ERROR: &str = SyncState::Error.as_str();

impl WebhookStore for AnyStore {
    async fn webhook_target(&self, id: ConnectionId) -> Result<Option<WebhookTarget>, StoreError> {
        let id = DbId::from(id);
        self.run(async move |c| target(c, id).await).await
    }

    async fn github_connections_holding(
        &self,
        repository_key: &str,
        installation_id: Option<i64>,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        // The App's deliveries speak for one installation: only the
        // connections made through it are woken, never a token connection
        // that happens to hold the same repository (nor another tenant's).
        let Some(installation) = installation_id else {
            return Ok(Vec::new());
        };
        let key = repository_key.to_ascii_lowercase();
        self.run(async move |c| {
            let active: bool = true;
            let ids = db!(c, |c| repos::table
                .inner_join(conns::table)
                .filter(repos::name_key.eq(&key))
                .filter(conns::platform.eq(Platform::GitHub.as_str()))
                .filter(conns::github_installation_id.eq(installation))
                .filter(conns::is_active.eq(active))
                .select(repos::connection_id)
                .order(repos::connection_id.asc())
                .load::<DbId>(c))?;
            Ok(ids.into_iter().map(ConnectionId::from).collect())
        })
        .await
    }

    async fn accept_delivery(
        &self,
        delivery: Option<DeliveryMark>,
        wake: Vec<WakeRepository>,
        now: DateTime<Utc>,
    ) -> Result<DeliveryOutcome, StoreError> {
        self.write(async move |c| accept(c, delivery, &wake, now).await).await
    }

    async fn webhook_secrets_not_under(
        &self,
        active_key_id: &str,
        limit: u32,
    ) -> Result<Vec<SealedWebhookSecretRow>, StoreError> {
        let active_key_id = active_key_id.to_owned();
        self.run(async move |c| {
            let rows = db!(c, |c| hooks::table
                .inner_join(conns::table)
                .filter(hooks::secret_key_id.ne(&active_key_id))
                .order(hooks::connection_id.asc())
                .limit(i64::from(limit))
                .select((
                    hooks::connection_id,
                    conns::tenant_id,
                    conns::project_id,
                    hooks::secret_key_id,
                    hooks::secret_ciphertext,
                ))
                .load::<(DbId, DbId, DbId, String, Vec<u8>)>(c))?;
            Ok(rows
                .into_iter()
                .map(|(id, tenant, project, key_id, ciphertext)| SealedWebhookSecretRow {
                    connection_id: id.into(),
                    tenant_id: tenant.into(),
                    project_id: project.into(),
                    sealed: SealedSecret { key_id, ciphertext },
                })
                .collect())
        })
        .await
    }

    async fn reseal_webhook_secret(
        &self,
        connection_id: ConnectionId,
        old: &SealedSecret,
        new: SealedSecret,
    ) -> Result<bool, StoreError> {
        let old = old.clone();
        let id = DbId::from(connection_id);
        self.run(async move |c| {
            // Compare-and-swap: a rotation since the read wins.
            let reseal = diesel::update(
                hooks::table
                    .filter(hooks::connection_id.eq(id))
                    .filter(hooks::secret_key_id.eq(&old.key_id))
                    .filter(hooks::secret_ciphertext.eq(&old.ciphertext)),
            )
            .set((hooks::secret_key_id.eq(&new.key_id), hooks::secret_ciphertext.eq(&new.ciphertext)));
            Ok(db!(c, |c| reseal.execute(c))? > 0)
        })
        .await
    }
}

async fn target(c: &mut Conn<'_>, id: DbId) -> Result<Option<WebhookTarget>, TxError> {
    let found = db!(c, |c| conns::table
        .filter(conns::id.eq(id))
        .select((conns::tenant_id, conns::project_id, conns::platform, conns::is_active))
        .first::<(DbId, DbId, String, bool)>(c))
    .optional()?;
    let Some((tenant, project, platform, is_active)) = found else {
        return Ok(None);
    };
    let platform: Platform = parse(&platform, "connection platform")?;
    let rows = db!(c, |c| repos::table
        .filter(repos::connection_id.eq(id))
        .order(repos::position.asc())
        .select((repos::name, repos::default_branch))
        .load::<(String, Option<String>)>(c))?;
    let repositories = rows
        .into_iter()
        .map(|(name, default_branch)| {
            Ok(HookRepository { name: check(RepoName::parse(platform, &name), "repository name")?, default_branch })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let secret = db!(c, |c| hooks::table
        .filter(hooks::connection_id.eq(id))
        .select((hooks::secret_key_id, hooks::secret_ciphertext))
        .first::<(String, Vec<u8>)>(c))
    .optional()?
    .map(|(key_id, ciphertext)| SealedSecret { key_id, ciphertext });
    Ok(Some(WebhookTarget {
        connection_id: id.into(),
        tenant_id: tenant.into(),
        project_id: project.into(),
        platform,
        is_active,
        repositories,
        secret,
    }))
}

async fn accept(
    c: &mut Conn<'_>,
    delivery: Option<DeliveryMark>,
    wake: &[WakeRepository],
    now: DateTime<Utc>,
) -> Result<DeliveryOutcome, TxError> {
    let at = DbTime(now);
    // Expired marks go here, where deliveries are written: the table stays
    // as small as a few days of deliveries without a job of its own.
    db!(c, |c| diesel::delete(deliveries::table.filter(deliveries::expires_at.lt(at))).execute(c))?;
    if let Some(mark) = delivery {
        let row = DeliveryRow { source: mark.source, delivery: mark.delivery, expires_at: DbTime(mark.expires_at) };
        let recorded =
            db!(c, |c| diesel::insert_into(deliveries::table).values(&row).on_conflict_do_nothing().execute(c))?;
        if recorded == 0 {
            return Ok(DeliveryOutcome::Duplicate);
        }
    }
    let mut woken = 0usize;
    for target in wake {
        let repository = repos::table
            .filter(repos::connection_id.eq(DbId::from(target.connection_id)))
            .filter(repos::name_key.eq(&target.repository_key));
        // The failure count stays, so a repository that keeps failing keeps
        // its growing backoff after this one early attempt.
        let due_now = diesel::update(repository.filter(repos::sync_state.eq_any([READY, ERROR])))
            .set((repos::sync_state.eq(PENDING), repos::next_attempt_at.eq(None::<DbTime>)));
        woken += db!(c, |c| due_now.execute(c))?;
        // A sync running now may have listed the PRs before this merge.
        let again = diesel::update(repository.filter(repos::sync_state.eq(SYNCING))).set(repos::sync_again.eq(true));
        db!(c, |c| again.execute(c))?;
    }
    Ok(DeliveryOutcome::Accepted { woken: count_u32(woken) })
}

/// Stores `sealed` as connection `id`'s webhook secret, replacing any.
pub(crate) async fn put_secret(c: &mut Conn<'_>, id: DbId, sealed: &SealedSecret, at: DbTime) -> Result<(), TxError> {
    db!(c, |c| diesel::delete(hooks::table.filter(hooks::connection_id.eq(id))).execute(c))?;
    let row = WebhookSecretRow::new(id, sealed, at);
    db!(c, |c| diesel::insert_into(hooks::table).values(&row).execute(c))?;
    Ok(())
}
