//! The [`Store`](super::Store) implementation, written once for both backends. The SQL is portable
//! (`$N` placeholders, `ON CONFLICT … DO UPDATE`, `RETURNING`); what differs is which pool serves reads and
//! writes. The three login writes (a user with its session, a ticket turned into a user, a session) are each
//! backend's own (`login_write`, `ticket_login_write`, `session_write`): PostgreSQL runs each as one statement
//! (data-modifying CTEs), SQLite batches them (group commit, see `sqlite_batch`). sqlx's generic executor bounds
//! over two databases are heavier than this macro, hence the macro.

macro_rules! impl_store {
    (
        store: $store:ty,
        writer: $writer:ident,
        reader: $reader:ident,
        begin: $begin:ident($($arg:expr),*),
        ping_timeout: $ping_timeout:expr $(,)?
    ) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn find_user(&self, appid: &str, openid: &str) -> Result<Option<$crate::store::UserRecord>, $crate::store::StoreError> {
                let row: Option<$crate::store::sql::UserRow> = sqlx::query_as($crate::store::sql::FIND_USER)
                    .bind(appid)
                    .bind(openid)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map($crate::store::UserRecord::from))
            }

            async fn upsert_user_with_session(
                &self,
                user: $crate::store::UserUpsert,
                session: $crate::store::NewSession,
            ) -> Result<$crate::store::UserRecord, $crate::store::StoreError> {
                self.login_write(user, session).await
            }

            async fn create_session(&self, user_id: i64, session: $crate::store::NewSession) -> Result<(), $crate::store::StoreError> {
                self.session_write(user_id, session).await
            }

            async fn consume_ticket_with_user(
                &self,
                ticket_hash: &[u8; 32],
                phone_enc: Vec<u8>,
                phone_hash: Vec<u8>,
                session: $crate::store::NewSession,
            ) -> Result<Option<$crate::store::UserRecord>, $crate::store::StoreError> {
                self.ticket_login_write(*ticket_hash, phone_enc, phone_hash, session).await
            }

            async fn session_user(
                &self,
                token_hash: &[u8; 32],
                appid: &str,
                now: $crate::store::UnixTime,
            ) -> Result<Option<$crate::store::UserRecord>, $crate::store::StoreError> {
                let row: Option<$crate::store::sql::UserRow> = sqlx::query_as($crate::store::sql::SESSION_USER)
                    .bind(&token_hash[..])
                    .bind(now)
                    .bind(appid)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map($crate::store::UserRecord::from))
            }

            async fn delete_session(&self, token_hash: &[u8; 32], appid: &str) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::sql::DELETE_SESSION)
                    .bind(&token_hash[..])
                    .bind(appid)
                    .execute(&self.$writer)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn reserve_ticket(
                &self,
                ticket_hash: &[u8; 32],
                appid: &str,
                now: $crate::store::UnixTime,
                until: $crate::store::UnixTime,
            ) -> Result<$crate::store::TicketReservation, $crate::store::StoreError> {
                let row: Option<$crate::store::sql::TicketRow> = sqlx::query_as($crate::store::sql::RESERVE_TICKET)
                    .bind(&ticket_hash[..])
                    .bind(now)
                    .bind(until)
                    .bind(appid)
                    .fetch_optional(&self.$writer)
                    .await?;
                if let Some(row) = row {
                    return Ok($crate::store::TicketReservation::Reserved(row.into()));
                }
                let live: i64 = sqlx::query_scalar($crate::store::sql::TICKET_LIVE)
                    .bind(&ticket_hash[..])
                    .bind(now)
                    .bind(appid)
                    .fetch_one(&self.$writer)
                    .await?;
                Ok(if live > 0 {
                    $crate::store::TicketReservation::InUse
                } else {
                    $crate::store::TicketReservation::Invalid
                })
            }

            async fn release_ticket(
                &self,
                ticket_hash: &[u8; 32],
                phone_code_refused: bool,
                max_failures: Option<u32>,
            ) -> Result<bool, $crate::store::StoreError> {
                if !phone_code_refused {
                    sqlx::query($crate::store::sql::RELEASE_TICKET)
                        .bind(&ticket_hash[..])
                        .execute(&self.$writer)
                        .await?;
                    return Ok(false);
                }
                let failures: Option<i64> = sqlx::query_scalar($crate::store::sql::FAIL_TICKET)
                    .bind(&ticket_hash[..])
                    .fetch_optional(&self.$writer)
                    .await?;
                match (failures, max_failures) {
                    (Some(failures), Some(max)) if failures >= i64::from(max) => {
                        sqlx::query($crate::store::sql::DELETE_TICKET)
                            .bind(&ticket_hash[..])
                            .execute(&self.$writer)
                            .await?;
                        Ok(true)
                    }
                    (Some(_), _) => Ok(false),
                    (None, _) => Ok(true),
                }
            }

            async fn meta_get_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, $crate::store::StoreError> {
                sqlx::query($crate::store::sql::META_INSERT)
                    .bind(name)
                    .bind(value)
                    .execute(&self.$writer)
                    .await?;
                let stored: Vec<u8> = sqlx::query_scalar($crate::store::sql::META_GET)
                    .bind(name)
                    .fetch_one(&self.$writer)
                    .await?;
                Ok(stored)
            }

            async fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>, $crate::store::StoreError> {
                let stored: Option<Vec<u8>> = sqlx::query_scalar($crate::store::sql::META_GET)
                    .bind(name)
                    .fetch_optional(&self.$writer)
                    .await?;
                Ok(stored)
            }

            async fn any_user(&self) -> Result<Option<$crate::store::UserRecord>, $crate::store::StoreError> {
                let row: Option<$crate::store::sql::UserRow> = sqlx::query_as($crate::store::sql::ANY_USER)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map($crate::store::UserRecord::from))
            }

            async fn create_ticket(&self, ticket: $crate::store::NewTicket) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::sql::INSERT_TICKET)
                    .bind(&ticket.ticket_hash[..])
                    .bind(&ticket.appid)
                    .bind(&ticket.openid)
                    .bind(&ticket.unionid)
                    .bind(ticket.now)
                    .bind(ticket.expires_at)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn find_ticket(
                &self,
                ticket_hash: &[u8; 32],
                now: $crate::store::UnixTime,
            ) -> Result<Option<$crate::store::TicketRecord>, $crate::store::StoreError> {
                let row: Option<$crate::store::sql::TicketRow> = sqlx::query_as($crate::store::sql::FIND_TICKET)
                    .bind(&ticket_hash[..])
                    .bind(now)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map($crate::store::TicketRecord::from))
            }

            async fn update_phone(
                &self,
                user_id: i64,
                phone_enc: Vec<u8>,
                phone_hash: Vec<u8>,
                now: $crate::store::UnixTime,
            ) -> Result<Option<$crate::store::UserRecord>, $crate::store::StoreError> {
                let row: Option<$crate::store::sql::UserRow> = sqlx::query_as($crate::store::sql::UPDATE_PHONE)
                    .bind(user_id)
                    .bind(&phone_enc)
                    .bind(&phone_hash)
                    .bind(now)
                    .fetch_optional(&self.$writer)
                    .await?;
                Ok(row.map($crate::store::UserRecord::from))
            }

            async fn purge_expired(&self, now: $crate::store::UnixTime) -> Result<u64, $crate::store::StoreError> {
                let mut tx = self.$writer.$begin($($arg),*).await?;
                let sessions = sqlx::query($crate::store::sql::PURGE_SESSIONS)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let tickets = sqlx::query($crate::store::sql::PURGE_TICKETS)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(sessions.rows_affected() + tickets.rows_affected())
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                let ping = sqlx::query($crate::store::sql::PING).execute(&self.$reader);
                match tokio::time::timeout($ping_timeout, ping).await {
                    Ok(done) => done.map(drop).map_err($crate::store::StoreError::from),
                    Err(_elapsed) => Err($crate::store::StoreError::timed_out("ping")),
                }
            }

            async fn count_users(&self) -> Result<i64, $crate::store::StoreError> {
                let count: i64 = sqlx::query_scalar($crate::store::sql::COUNT_USERS)
                    .fetch_one(&self.$reader)
                    .await?;
                Ok(count)
            }
        }

    };
}

pub(super) use impl_store;
