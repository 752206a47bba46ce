//! The token formats a node issues and accepts (`[token] provider` and `accept`): one
//! format is issued, any accepted one validates. This is how a cloud moves from Fernet to
//! JWS (or back) without downtime: first every node accepts both, then the issuing format
//! changes, and tokens issued before the switch stay valid until they expire.

use crate::fernet::codec::FernetCodec;
use crate::jws::{looks_like_jws, JwsCodec};
use limen_core::config::TokenFormat;
use limen_core::token::{ReceiptPayload, TokenCodec, TokenError, TokenPayload};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

pub struct TokenFormats {
    /// From the node's configuration.
    configured: Selection,
    /// The selection in force: the configured one, or a cloud-wide override from the store
    /// (`limen token-format set`), swapped in by the server while it runs.
    current: RwLock<Selection>,
    /// Always present: MFA receipts are Fernet in Keystone whatever the token provider.
    fernet: FernetCodec,
    jws: Option<JwsCodec>,
    /// Counts changes of `current`.
    selection_generation: AtomicU64,
}

impl TokenFormats {
    /// `accept` always includes `issue`. A JWS codec is needed when JWS is issued or
    /// accepted; the caller checks that before (see [`TokenFormats::needs_jws`]).
    pub fn new(
        issue: TokenFormat,
        accept: &[TokenFormat],
        fernet: FernetCodec,
        jws: Option<JwsCodec>,
    ) -> Self {
        let configured = Selection::new(issue, accept);
        TokenFormats {
            current: RwLock::new(configured.clone()),
            configured,
            fernet,
            jws,
            selection_generation: AtomicU64::new(0),
        }
    }

    /// Overrides the configured formats (`Some`) or returns to them (`None`).
    pub fn set_override(&self, over: Option<Selection>) {
        let next = over.unwrap_or_else(|| self.configured.clone());
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        if *slot != next {
            *slot = next;
            self.selection_generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The formats in force.
    pub fn current(&self) -> Selection {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn jws_codec(&self) -> Option<&JwsCodec> {
        self.jws.as_ref()
    }

    pub fn needs_jws(issue: TokenFormat, accept: &[TokenFormat]) -> bool {
        issue == TokenFormat::Jws || accept.contains(&TokenFormat::Jws)
    }

    fn jws(&self) -> Result<&JwsCodec, TokenError> {
        self.jws
            .as_ref()
            .ok_or_else(|| TokenError::NoKeys("no JWS keys are loaded".into()))
    }
}

/// The format issued and the formats accepted (the issued one always among them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub issue: TokenFormat,
    pub accept: Vec<TokenFormat>,
}

impl Selection {
    pub fn new(issue: TokenFormat, accept: &[TokenFormat]) -> Self {
        let mut all = vec![issue];
        for f in accept {
            if !all.contains(f) {
                all.push(*f);
            }
        }
        Selection { issue, accept: all }
    }

    pub fn accepts(&self, f: TokenFormat) -> bool {
        self.accept.contains(&f)
    }
}

impl TokenCodec for TokenFormats {
    fn key_generation(&self) -> u64 {
        self.fernet.key_generation()
            + self.jws.as_ref().map_or(0, JwsCodec::key_generation)
            + self.selection_generation.load(Ordering::SeqCst)
    }

    fn encode(&self, p: &TokenPayload) -> Result<String, TokenError> {
        match self.current().issue {
            TokenFormat::Fernet => self.fernet.encode(p),
            TokenFormat::Jws => self.jws()?.encode(p),
        }
    }

    fn decode(&self, token: &str) -> Result<TokenPayload, TokenError> {
        // Fernet tokens are dot-free base64url; a JWT has three dotted parts.
        let format = if looks_like_jws(token) {
            TokenFormat::Jws
        } else {
            TokenFormat::Fernet
        };
        if !self.current().accepts(format) {
            return Err(TokenError::Invalid(format!(
                "{format:?} tokens are not accepted here"
            )));
        }
        match format {
            TokenFormat::Fernet => self.fernet.decode(token),
            TokenFormat::Jws => self.jws()?.decode(token),
        }
    }

    fn encode_receipt(&self, r: &ReceiptPayload) -> Result<String, TokenError> {
        self.fernet.encode_receipt(r)
    }

    fn decode_receipt(&self, receipt: &str) -> Result<ReceiptPayload, TokenError> {
        self.fernet.decode_receipt(receipt)
    }
}
