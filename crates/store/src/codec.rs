//! Conversions between model values and column values.

use limen_core::error::StoreError;
use limen_core::model::Extra;
use time::OffsetDateTime;

pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

pub fn from_micros(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .map_err(|e| StoreError::backend_cause("stored time out of range", e))
}

pub fn opt_from_micros(us: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    us.map(from_micros).transpose()
}

pub fn to_json(m: &Extra) -> String {
    serde_json::Value::Object(m.clone()).to_string()
}

pub fn from_json(s: &str) -> Result<Extra, StoreError> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Ok(Extra::new()),
        Err(e) => Err(StoreError::backend_cause("corrupt JSON column", e)),
    }
}

pub fn b(v: bool) -> i64 {
    i64::from(v)
}

pub fn tags_json(tags: &[String]) -> String {
    serde_json::Value::from(tags.to_vec()).to_string()
}

pub fn tags_from_json(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::backend_cause("corrupt tags column", e))
}
