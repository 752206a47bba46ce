//! `limen kubeconfig`: the cluster, user and context entries that make kubectl run
//! `limen login` for a registered cluster, merged into kubeconfig files as kubectl itself
//! merges them: with `$KUBECONFIG` naming several files, an entry goes back to the first
//! file that defines its name, a new one to the first file that exists (the first named
//! if none does). Everything else in the files is kept; files are replaced whole (a
//! reader never sees half of one), keep their mode, and new ones are 0600.

use crate::cache::write_private;
use crate::exec::EXEC_EXTENSION;
use crate::provider::ClusterInfo;
use crate::ClientError;
use base64::Engine;
use serde_yaml::{Mapping, Value};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The user entry's keys that would make kubectl skip the plugin.
const OTHER_CREDENTIALS: [&str; 9] = [
    "token",
    "tokenFile",
    "auth-provider",
    "username",
    "password",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
];

/// What the entries say besides what the issuer tells of the cluster.
#[derive(Debug, Clone)]
pub struct EntryOptions {
    pub account: String,
    pub project: Option<String>,
    pub client_id: String,
    pub context: Option<String>,
    /// The `limen` command kubectl runs (an absolute path, so PATH does not matter).
    pub command: String,
    pub exec_api_version: &'static str,
    /// A CA file for the issuer's certificate, passed on to `limen login`.
    pub issuer_ca_file: Option<String>,
}

/// The three named entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries {
    pub cluster: (String, Mapping),
    pub user: (String, Mapping),
    pub context: (String, Mapping),
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

fn mapping(pairs: &[(&str, Value)]) -> Mapping {
    pairs.iter().map(|(k, v)| (text(k), v.clone())).collect()
}

/// The issuer's host (and port), to tell entries of several issuers apart.
fn issuer_host(issuer: &str) -> &str {
    let rest = issuer.split_once("://").map_or(issuer, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The entries for `info`.
pub fn entries(info: &ClusterInfo, o: &EntryOptions) -> Entries {
    let host = issuer_host(&info.issuer);
    let cluster_name = format!("{}@{host}", info.name);
    let user_name = match &o.project {
        Some(p) => format!("limen:{}@{host}/{p}", o.account),
        None => format!("limen:{}@{host}", o.account),
    };
    let context_name = o.context.clone().unwrap_or_else(|| info.name.clone());

    let mut config = mapping(&[
        ("issuer", text(&info.issuer)),
        ("audience", text(&info.audience)),
        ("cluster_id", text(&info.id)),
        ("client_id", text(&o.client_id)),
    ]);
    if let Some(p) = &o.project {
        config.insert(text("project"), text(p));
    }
    let mut cluster = mapping(&[("server", text(&info.api_server))]);
    if let Some(pem) = &info.ca_pem {
        let data = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
        cluster.insert(text("certificate-authority-data"), text(&data));
    }
    cluster.insert(
        text("extensions"),
        Value::Sequence(vec![Value::Mapping(mapping(&[
            ("name", text(EXEC_EXTENSION)),
            ("extension", Value::Mapping(config)),
        ]))]),
    );

    let mut args = vec![
        "login",
        "--issuer",
        &info.issuer,
        "--client-id",
        &o.client_id,
        "--account",
        &o.account,
    ];
    if let Some(p) = &o.project {
        args.extend(["--project", p]);
    }
    if let Some(ca) = &o.issuer_ca_file {
        args.extend(["--ca-file", ca]);
    }
    let exec = mapping(&[
        ("apiVersion", text(o.exec_api_version)),
        ("command", text(&o.command)),
        ("args", Value::Sequence(args.into_iter().map(text).collect())),
        ("interactiveMode", text("IfAvailable")),
        ("provideClusterInfo", Value::Bool(true)),
        (
            "installHint",
            text("limen login is Limen's kubectl credential plugin: install the limen binary (see the Limen README)."),
        ),
    ]);
    let user = mapping(&[("exec", Value::Mapping(exec))]);
    let context = mapping(&[("cluster", text(&cluster_name)), ("user", text(&user_name))]);
    Entries {
        cluster: (cluster_name, cluster),
        user: (user_name, user),
        context: (context_name, context),
    }
}

/// The files kubectl reads: `--kubeconfig`, else `$KUBECONFIG` (`:`-separated), else
/// `~/.kube/config`.
pub fn kubeconfig_files(
    explicit: Option<PathBuf>,
    env: Option<OsString>,
    home: Option<PathBuf>,
) -> Result<Vec<PathBuf>, ClientError> {
    if let Some(p) = explicit {
        return Ok(vec![p]);
    }
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        let files: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !files.is_empty() {
            return Ok(files);
        }
    }
    home.map(|h| vec![h.join(".kube").join("config")])
        .ok_or_else(|| ClientError::Usage("HOME is not set: pass --kubeconfig".into()))
}

/// The list under `key` (`clusters`, `users`, `contexts`) of a kubeconfig.
fn named_list<'a>(doc: &'a mut Mapping, key: &str) -> Result<&'a mut Vec<Value>, ClientError> {
    let slot = doc
        .entry(text(key))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if slot.is_null() {
        *slot = Value::Sequence(Vec::new());
    }
    slot.as_sequence_mut()
        .ok_or_else(|| ClientError::Usage(format!("the kubeconfig's {key} is not a list")))
}

fn defines(doc: &Mapping, key: &str, name: &str) -> bool {
    doc.get(key).and_then(Value::as_sequence).is_some_and(|l| {
        l.iter()
            .any(|e| e.get("name").and_then(Value::as_str) == Some(name))
    })
}

/// Sets entry `name` under `key` (`cluster`, `user` or `context` inside it): keys of
/// ours replace theirs, others stay; for a user, credentials that would bypass the
/// plugin go.
fn upsert(
    doc: &mut Mapping,
    key: &str,
    inner: &str,
    name: &str,
    ours: &Mapping,
) -> Result<(), ClientError> {
    let list = named_list(doc, key)?;
    let existing = list
        .iter_mut()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name));
    let Some(entry) = existing else {
        list.push(Value::Mapping(mapping(&[
            ("name", text(name)),
            (inner, Value::Mapping(ours.clone())),
        ])));
        return Ok(());
    };
    let entry = entry.as_mapping_mut().ok_or_else(|| {
        ClientError::Usage(format!(
            "the kubeconfig's {key} entry {name:?} is not a mapping"
        ))
    })?;
    let body = entry
        .entry(text(inner))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if !body.is_mapping() {
        *body = Value::Mapping(Mapping::new());
    }
    let Some(body) = body.as_mapping_mut() else {
        return Ok(());
    };
    if inner == "user" {
        for k in OTHER_CREDENTIALS {
            body.remove(k);
        }
    }
    for (k, v) in ours {
        if k == "extensions" {
            merge_extensions(body, v);
        } else {
            body.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

/// Puts our exec extension into a cluster's `extensions`, keeping the others.
fn merge_extensions(body: &mut Mapping, ours: &Value) {
    let ours = ours.as_sequence().cloned().unwrap_or_default();
    let mut list = body
        .get("extensions")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    list.retain(|e| e.get("name").and_then(Value::as_str) != Some(EXEC_EXTENSION));
    list.extend(ours);
    body.insert(text("extensions"), Value::Sequence(list));
}

fn empty_config() -> Mapping {
    mapping(&[
        ("apiVersion", text("v1")),
        ("kind", text("Config")),
        ("clusters", Value::Sequence(Vec::new())),
        ("users", Value::Sequence(Vec::new())),
        ("contexts", Value::Sequence(Vec::new())),
        ("preferences", Value::Mapping(Mapping::new())),
    ])
}

/// A kubeconfig file as read: its document (an empty config for a missing or empty
/// file) and whether it exists.
struct Loaded {
    path: PathBuf,
    doc: Mapping,
    exists: bool,
    changed: bool,
}

fn load(path: &Path) -> Result<Loaded, ClientError> {
    let file = |e| ClientError::File {
        path: path.display().to_string(),
        source: e,
    };
    let (doc, exists) = match std::fs::read_to_string(path) {
        Ok(t) if t.trim().is_empty() => (empty_config(), true),
        Ok(t) => match serde_yaml::from_str::<Value>(&t) {
            Ok(Value::Mapping(m)) => (m, true),
            Ok(Value::Null) => (empty_config(), true),
            _ => {
                return Err(ClientError::Usage(format!(
                    "{} is not a kubeconfig (YAML mapping); nothing was written",
                    path.display()
                )))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (empty_config(), false),
        Err(e) => return Err(file(e)),
    };
    Ok(Loaded {
        path: path.to_path_buf(),
        doc,
        exists,
        changed: false,
    })
}

fn current_context(doc: &Mapping) -> Option<&str> {
    doc.get("current-context")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
}

/// Merges `entries` into `files` (see the module's comment); the current context
/// becomes ours with `set_current`, or where no file names one. Returns the files
/// written.
pub fn merge_into(
    files: &[PathBuf],
    entries: &Entries,
    set_current: bool,
) -> Result<Vec<PathBuf>, ClientError> {
    let mut loaded = files
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    if loaded.is_empty() {
        return Err(ClientError::Usage("no kubeconfig file to write".into()));
    }
    let fallback = loaded.iter().position(|l| l.exists).unwrap_or(0);
    let stanzas = [
        ("clusters", "cluster", &entries.cluster),
        ("users", "user", &entries.user),
        ("contexts", "context", &entries.context),
    ];
    for (key, inner, (name, body)) in stanzas {
        let at = loaded
            .iter()
            .position(|l| defines(&l.doc, key, name))
            .unwrap_or(fallback);
        upsert(&mut loaded[at].doc, key, inner, name, body)?;
        loaded[at].changed = true;
    }
    let current = loaded
        .iter()
        .position(|l| current_context(&l.doc).is_some());
    if set_current || current.is_none() {
        let at = current.unwrap_or(fallback);
        loaded[at]
            .doc
            .insert(text("current-context"), text(&entries.context.0));
        loaded[at].changed = true;
    }
    let mut written = Vec::new();
    for l in loaded.into_iter().filter(|l| l.changed) {
        write_kubeconfig(&l.path, &l.doc)?;
        written.push(l.path);
    }
    Ok(written)
}

/// Replaces a kubeconfig file whole, keeping its mode (0600 for a new one) and writing
/// through a symlink to its target.
fn write_kubeconfig(path: &Path, doc: &Mapping) -> Result<(), ClientError> {
    let file = |e| ClientError::File {
        path: path.display().to_string(),
        source: e,
    };
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mode = std::fs::metadata(&target)
        .map(|m| m.permissions().mode() & 0o7777)
        .ok();
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(file)?;
    }
    let mut yaml = String::new();
    emit_mapping(doc, 0, &mut yaml);
    write_private(&target, yaml.as_bytes(), true)?;
    if let Some(m) = mode {
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(m)).map_err(file)?;
    }
    Ok(())
}

// kubectl reads YAML 1.1, where `y`, `no`, `on` and their kin are booleans: a context
// named `y` written plain makes kubectl refuse the whole file. So values are written as
// double-quoted (JSON) strings, and keys plain only where they cannot mean anything else.

fn plain_key(k: &str) -> bool {
    const YAML_11_WORDS: [&str; 22] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF", "true", "True", "TRUE", "false", "null", "Null",
    ];
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !YAML_11_WORDS.contains(&k)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(serde_json::Value::String(s.clone()).to_string()),
        Value::Mapping(m) if m.is_empty() => Some("{}".into()),
        Value::Sequence(l) if l.is_empty() => Some("[]".into()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

fn key(k: &Value) -> String {
    match k {
        Value::String(s) if plain_key(s) => s.clone(),
        other => scalar(other).unwrap_or_else(|| "\"\"".into()),
    }
}

fn emit_value(v: &Value, indent: usize, out: &mut String) {
    let v = match v {
        Value::Tagged(t) => &t.value,
        v => v,
    };
    if let Some(s) = scalar(v) {
        out.push(' ');
        out.push_str(&s);
        out.push('\n');
        return;
    }
    out.push('\n');
    match v {
        Value::Mapping(m) => emit_mapping(m, indent + 2, out),
        Value::Sequence(l) => emit_sequence(l, indent, out),
        _ => {}
    }
}

fn emit_mapping(m: &Mapping, indent: usize, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first key of a list item follows its "- ".
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&key(k));
        out.push(':');
        emit_value(v, indent, out);
    }
}

fn emit_sequence(l: &[Value], indent: usize, out: &mut String) {
    for item in l {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        let item = match item {
            Value::Tagged(t) => &t.value,
            v => v,
        };
        match (scalar(item), item) {
            (Some(s), _) => {
                out.push_str(&s);
                out.push('\n');
            }
            (None, Value::Mapping(m)) => emit_mapping(m, indent + 2, out),
            (None, Value::Sequence(inner)) => {
                out.push('\n');
                emit_sequence(inner, indent + 2, out);
            }
            _ => out.push('\n'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::EXEC_V1BETA1;

    fn info(name: &str) -> ClusterInfo {
        ClusterInfo {
            id: "c0ffee".into(),
            name: name.into(),
            api_server: "https://k8s.example.com:6443".into(),
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into()),
            audience: "prod".into(),
            issuer: "https://id.example.com".into(),
            login_client_id: Some("kubectl".into()),
        }
    }

    fn options() -> EntryOptions {
        EntryOptions {
            account: "alice".into(),
            project: Some("p1".into()),
            client_id: "kubectl".into(),
            context: None,
            command: "/usr/local/bin/limen".into(),
            exec_api_version: EXEC_V1BETA1,
            issuer_ca_file: None,
        }
    }

    fn read(p: &Path) -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn the_entries_run_limen_login_with_the_cluster_info() {
        let e = entries(&info("prod"), &options());
        assert_eq!(e.cluster.0, "prod@id.example.com");
        assert_eq!(e.user.0, "limen:alice@id.example.com/p1");
        assert_eq!(e.context.0, "prod");
        let exec = &e.user.1["exec"];
        assert_eq!(exec["apiVersion"], text(EXEC_V1BETA1));
        assert_eq!(exec["interactiveMode"], text("IfAvailable"));
        assert_eq!(exec["provideClusterInfo"], Value::Bool(true));
        let args: Vec<&str> = exec["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            args,
            [
                "login",
                "--issuer",
                "https://id.example.com",
                "--client-id",
                "kubectl",
                "--account",
                "alice",
                "--project",
                "p1"
            ]
        );
        let ext = &e.cluster.1["extensions"][0];
        assert_eq!(ext["name"], text(EXEC_EXTENSION));
        assert_eq!(ext["extension"]["audience"], text("prod"));
    }

    #[test]
    fn names_yaml_11_reads_as_booleans_stay_strings() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        let mut o = options();
        o.context = Some("y".into());
        merge_into(std::slice::from_ref(&path), &entries(&info("on"), &o), true).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains("current-context: \"y\"\n"), "{written}");
        assert!(written.contains("- name: \"y\"\n"), "{written}");
    }

    #[test]
    fn what_is_written_reads_back_as_it_was() {
        let doc: Value = serde_yaml::from_str(
            "apiVersion: v1\nclusters:\n- name: a\n  cluster:\n    server: 'https://x'\n    \
             extensions:\n    - name: e\n      extension: {n: 1, f: 1.5, b: true, z: null, l: [[1, 'two'], []], m: {}}\n\
             y: \"quoted key\"\n'weird key: x': \"multi\\nline \\\"quote\\\" \\u00e9\"\n",
        )
        .unwrap();
        let mut out = String::new();
        emit_mapping(doc.as_mapping().unwrap(), 0, &mut out);
        let back: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back, doc, "{out}");
        assert!(out.contains("\"y\": \"quoted key\""), "{out}");
    }

    #[test]
    fn merging_keeps_what_is_not_ours_and_replaces_what_is() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: other\npreferences: {colors: true}\n\
             clusters:\n- name: other\n  cluster: {server: 'https://other:6443', proxy-url: 'http://proxy:3128'}\n\
             - name: prod@id.example.com\n  cluster:\n    server: https://old:6443\n    tls-server-name: k8s\n    extensions:\n    - {name: mine, extension: {a: 1}}\n\
             users:\n- name: limen:alice@id.example.com/p1\n  user: {token: stale, as: someone}\n\
             contexts:\n- name: prod\n  context: {cluster: x, user: y, namespace: dev}\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        merge_into(
            std::slice::from_ref(&path),
            &entries(&info("prod"), &options()),
            false,
        )
        .unwrap();
        let doc = read(&path);
        assert_eq!(doc["current-context"], text("other"), "not asked to switch");
        assert_eq!(doc["preferences"]["colors"], Value::Bool(true));
        let clusters = doc["clusters"].as_sequence().unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!(
            clusters[0]["cluster"]["proxy-url"],
            text("http://proxy:3128")
        );
        let prod = &clusters[1]["cluster"];
        assert_eq!(prod["server"], text("https://k8s.example.com:6443"));
        assert_eq!(prod["tls-server-name"], text("k8s"));
        let ext = prod["extensions"].as_sequence().unwrap();
        assert_eq!(ext.len(), 2, "{ext:?}");
        let user = &doc["users"][0]["user"];
        assert!(
            user.get("token").is_none(),
            "a token would bypass the plugin"
        );
        assert_eq!(user["as"], text("someone"));
        assert_eq!(doc["contexts"][0]["context"]["namespace"], text("dev"));
        assert_eq!(
            doc["contexts"][0]["context"]["cluster"],
            text("prod@id.example.com")
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn with_several_files_entries_go_where_kubectl_would_put_them() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing");
        let first = tmp.path().join("first");
        let second = tmp.path().join("second");
        std::fs::write(&first, "apiVersion: v1\nkind: Config\nclusters: []\n").unwrap();
        std::fs::write(
            &second,
            "apiVersion: v1\nkind: Config\ncurrent-context: theirs\nusers:\n- name: limen:alice@id.example.com/p1\n  user: {}\n",
        )
        .unwrap();
        let files = [missing.clone(), first.clone(), second.clone()];
        let written = merge_into(&files, &entries(&info("prod"), &options()), true).unwrap();
        assert!(
            !missing.exists(),
            "a new entry goes to the first file that exists"
        );
        assert_eq!(written, [first.clone(), second.clone()]);
        let (a, b) = (read(&first), read(&second));
        assert_eq!(a["clusters"][0]["name"], text("prod@id.example.com"));
        assert_eq!(a["contexts"][0]["name"], text("prod"));
        assert!(a
            .get("users")
            .and_then(Value::as_sequence)
            .is_none_or(|u| u.is_empty()));
        assert!(
            b["users"][0]["user"]["exec"].is_mapping(),
            "the user is defined in the second file"
        );
        assert_eq!(
            b["current-context"],
            text("prod"),
            "where the current context is set"
        );
        assert!(a.get("current-context").is_none());
    }

    #[test]
    fn a_new_file_is_private_and_a_broken_one_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("kube").join("config");
        merge_into(
            std::slice::from_ref(&path),
            &entries(&info("prod"), &options()),
            false,
        )
        .unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            read(&path)["current-context"],
            text("prod"),
            "nothing was current"
        );
        let broken = tmp.path().join("broken");
        std::fs::write(&broken, "- just\n- a list\n").unwrap();
        assert!(merge_into(
            std::slice::from_ref(&broken),
            &entries(&info("prod"), &options()),
            false
        )
        .is_err());
        assert_eq!(
            std::fs::read_to_string(&broken).unwrap(),
            "- just\n- a list\n"
        );
    }

    #[test]
    fn the_files_are_those_kubectl_reads() {
        let home = Some(PathBuf::from("/home/a"));
        assert_eq!(
            kubeconfig_files(None, None, home.clone()).unwrap(),
            [PathBuf::from("/home/a/.kube/config")]
        );
        assert_eq!(
            kubeconfig_files(None, Some("/x:/y".into()), home.clone()).unwrap(),
            [PathBuf::from("/x"), PathBuf::from("/y")]
        );
        assert_eq!(
            kubeconfig_files(Some("/z".into()), Some("/x".into()), home).unwrap(),
            [PathBuf::from("/z")]
        );
    }
}
