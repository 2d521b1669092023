//! PostgreSQL: connection parameters as libpq reads them and the backup session.

pub mod conninfo;
pub mod session;

pub use session::{ConnectionOptions, PgSession};
