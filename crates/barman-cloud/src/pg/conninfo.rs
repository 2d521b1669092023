//! libpq connection parameters.
