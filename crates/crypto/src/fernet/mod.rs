//! Keystone's Fernet token provider: the key repository, the msgpack payloads and the codec
//! that joins them.

pub mod codec;
pub mod keys;
pub mod payload;
