//! The client-go exec credential protocol (`client.authentication.k8s.io` v1 and
//! v1beta1): what kubectl tells the plugin in `KUBERNETES_EXEC_INFO`, and the
//! `ExecCredential` the plugin prints on stdout, in the same apiVersion.

use crate::ClientError;
use serde_json::{json, Value};

pub const EXEC_V1: &str = "client.authentication.k8s.io/v1";
pub const EXEC_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// The name of the cluster extension whose value kubectl passes as `spec.cluster.config`.
pub const EXEC_EXTENSION: &str = "client.authentication.k8s.io/exec";

/// What kubectl said about the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecInfo {
    /// The apiVersion to answer in.
    pub api_version: &'static str,
    /// `spec.interactive`: whether the plugin may read stdin (absent before kubectl 1.22).
    pub interactive: Option<bool>,
    /// `spec.cluster.server`, with `provideClusterInfo`.
    pub server: Option<String>,
    /// `spec.cluster.config`: the cluster's `client.authentication.k8s.io/exec` extension,
    /// which `limen kubeconfig` fills with the issuer, audience, cluster and client ids.
    pub config: Value,
}

impl ExecInfo {
    /// Reads `KUBERNETES_EXEC_INFO`.
    pub fn parse(text: &str) -> Result<ExecInfo, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("KUBERNETES_EXEC_INFO {why}"));
        let v: Value = serde_json::from_str(text).map_err(|_| bad("is not JSON"))?;
        if v["kind"] != "ExecCredential" {
            return Err(bad("is not an ExecCredential"));
        }
        let api_version = match v["apiVersion"].as_str() {
            Some(EXEC_V1) => EXEC_V1,
            Some(EXEC_V1BETA1) => EXEC_V1BETA1,
            Some(other) => {
                return Err(ClientError::Usage(format!(
                    "the exec credential apiVersion {other:?} is not supported: use {EXEC_V1} \
                     or {EXEC_V1BETA1} in the kubeconfig"
                )))
            }
            None => return Err(bad("has no apiVersion")),
        };
        let spec = &v["spec"];
        let cluster = &spec["cluster"];
        Ok(ExecInfo {
            api_version,
            interactive: spec["interactive"].as_bool(),
            server: cluster["server"].as_str().map(str::to_string),
            config: cluster["config"].clone(),
        })
    }

    /// A string field of the cluster's extension.
    pub fn config_text(&self, key: &str) -> Option<String> {
        self.config[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// The `ExecCredential` printed on stdout: the token and when kubectl should ask again.
pub fn exec_credential(api_version: &str, token: &str, expires_at: i64) -> String {
    let expiry = time::OffsetDateTime::from_unix_timestamp(expires_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    let mut status = json!({ "token": token });
    if let Some(e) = expiry {
        status["expirationTimestamp"] = json!(e);
    }
    json!({"apiVersion": api_version, "kind": "ExecCredential", "status": status}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_kubectl_120_and_133_send() {
        let old = ExecInfo::parse(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{}}"#,
        )
        .unwrap();
        assert_eq!(old.api_version, EXEC_V1BETA1);
        assert_eq!(old.interactive, None);
        assert!(old.config.is_null());
        let new = ExecInfo::parse(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",
               "spec":{"interactive":false,"cluster":{"server":"https://k8s:6443",
               "certificate-authority-data":"LS0t","config":{"audience":"prod","issuer":"https://id"}}}}"#,
        )
        .unwrap();
        assert_eq!(new.api_version, EXEC_V1);
        assert_eq!(new.interactive, Some(false));
        assert_eq!(new.server.as_deref(), Some("https://k8s:6443"));
        assert_eq!(new.config_text("audience").as_deref(), Some("prod"));
        assert_eq!(new.config_text("client_id"), None);
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        for bad in [
            "",
            "{",
            r#"{"kind":"Pod","apiVersion":"client.authentication.k8s.io/v1"}"#,
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
            r#"{"kind":"ExecCredential"}"#,
        ] {
            assert!(ExecInfo::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_in_the_asked_version_with_an_rfc3339_expiry() {
        let out: Value = serde_json::from_str(&exec_credential(EXEC_V1BETA1, "t0k", 0)).unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": EXEC_V1BETA1, "kind": "ExecCredential",
                   "status": {"token": "t0k", "expirationTimestamp": "1970-01-01T00:00:00Z"}})
        );
    }
}
