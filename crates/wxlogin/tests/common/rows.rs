//! The database's own rows, read beside the running product: any column by SQL, the columns the catalogue names,
//! and which of them hold given keys. What a test compares an answer with, rather than with what it expects.

use super::product::Product;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

impl Product {
    /// Where `needle` occurs in any column of any table of the database, as `table.column`: the tables and
    /// columns come from the database's own catalogue.
    pub async fn rows_holding(&self, needle: &[u8]) -> Vec<String> {
        let catalogue = match &self.database_url {
            Some(_) => {
                "SELECT table_name::text || '.' || column_name::text || '.' || data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND data_type IN ('bytea', 'text', 'character varying') \
                 ORDER BY 1"
            }
            None => {
                "SELECT m.name || '.' || c.name FROM sqlite_master m, pragma_table_info(m.name) c \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1"
            }
        };
        let columns: Vec<String> = match &self.database_url {
            Some(url) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                sqlx::query_scalar(catalogue)
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
            }
            None => {
                let pool = self.sqlite().await;
                let all = sqlx::query_scalar(catalogue)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                all
            }
        };
        assert!(columns.len() > 20, "{columns:?}");
        let mut found = Vec::new();
        for column in columns {
            let mut parts = column.split('.');
            let (table, name, kind) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
            let n: i64 = match &self.database_url {
                Some(url) => {
                    // Text as its UTF-8 bytes, bytea as it is.
                    let bytes = match kind {
                        Some("bytea") => format!("\"{name}\""),
                        _ => format!("convert_to(\"{name}\", 'UTF8')"),
                    };
                    let sql = format!(
                        "SELECT COUNT(*) FROM \"{table}\" WHERE position($1::bytea IN {bytes}) > 0"
                    );
                    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                        .await
                        .unwrap();
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(needle)
                        .fetch_one(&mut c)
                        .await
                        .unwrap()
                }
                None => {
                    let sql = format!(
                        "SELECT COUNT(*) FROM \"{table}\" WHERE instr(CAST(\"{name}\" AS BLOB), $1) > 0"
                    );
                    let pool = self.sqlite().await;
                    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(needle)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    pool.close().await;
                    n
                }
            };
            if n > 0 {
                found.push(format!("{table}.{name}"));
            }
        }
        found
    }

    /// Every row of a one-column query, from the database itself (SQLite or PostgreSQL).
    pub async fn column<T>(&self, sql: &str) -> Vec<T>
    where
        T: Send + Unpin,
        (T,): for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow>,
    {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.database_url {
            Some(url) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                sqlx::query_as::<_, (T,)>(sql)
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(v,)| v)
                    .collect()
            }
            None => {
                let pool = self.sqlite().await;
                let all = sqlx::query_as::<_, (T,)>(sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                all.into_iter().map(|(v,)| v).collect()
            }
        }
    }

    /// Every `table.column` of the database whose column is called `name`, from its own catalogue.
    pub async fn columns_named(&self, name: &str) -> Vec<String> {
        let sql = match &self.database_url {
            Some(_) => format!(
                "SELECT table_name::text || '.' || column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_name = '{name}' ORDER BY 1"
            ),
            None => format!(
                "SELECT m.name || '.' || c.name FROM sqlite_master m, pragma_table_info(m.name) c \
                 WHERE m.type = 'table' AND c.name = '{name}' ORDER BY 1"
            ),
        };
        self.column(&sql).await
    }

    /// Which of `columns` (`table.column`, integer) hold any of `keys`: the integer ids [`Product::rows_holding`]
    /// cannot search (it reads bytes and text).
    pub async fn rows_keyed(&self, columns: &[String], keys: &[i64]) -> Vec<String> {
        assert!(!keys.is_empty(), "no key to look for");
        let list = keys
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut found = Vec::new();
        for column in columns {
            let (table, name) = column.split_once('.').unwrap();
            let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{name}\" IN ({list})");
            if self.count(&sql).await > 0 {
                found.push(column.clone());
            }
        }
        found
    }

    /// `/auth/verify` (forward auth) with this access token, on this instance: its status.
    pub async fn verify(&self, token: &str) -> u16 {
        self.http
            .get(format!("{}/auth/verify", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}
