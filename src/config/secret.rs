//! Secrets and `${...}` references: `${VAR}` reads the environment, `${file:/path}` reads a
//! file (Docker and systemd credentials). A secret never prints its value.

use std::fmt;

/// Where `${...}` values come from; tests pass a fixed map instead of the process environment.
pub trait Environment {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// The file's contents, or why it could not be read.
    fn read_file(&self, path: &str) -> Result<String, String>;
    /// Whether breakerd can keep its state in `dir` (a directory it can write, or one it can
    /// create), or why not. Looks at the real file system unless a test says otherwise.
    fn state_dir(&self, dir: &std::path::Path) -> Result<(), String> {
        super::file::usable_state_dir(dir)
    }
}

/// The process environment and file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &str) -> Result<String, String> {
        let bytes = super::file::read_regular(std::path::Path::new(path), super::MAX_SECRET_BYTES)
            .map_err(|error| error.to_string())?;
        String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
    }
}

/// Why a `${...}` reference could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// The variable is not set (or is empty).
    Unset(String),
    /// The file could not be read.
    File { path: String, reason: String },
    /// The reference is not closed or names nothing usable.
    Malformed(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Unset(name) => write!(f, "environment variable {name} is not set"),
            ExpandError::File { path, reason } => {
                write!(f, "cannot read secret file {path}: {reason}")
            }
            ExpandError::Malformed(why) => write!(f, "{why} (write ${{VAR}} or ${{file:/path}})"),
        }
    }
}

/// Replaces every `${VAR}` and `${file:/path}` in `text`; `$$` stands for a literal `$`.
pub(crate) fn expand(text: &str, environment: &dyn Environment) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
            continue;
        }
        let Some(inner) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let close = if inner.starts_with("file:") {
            matching_close(inner)
        } else {
            inner.find('}')
        };
        let Some(close) = close else {
            return Err(ExpandError::Malformed(
                "\"${\" is not closed by \"}\"".to_string(),
            ));
        };
        let reference = &inner[..close];
        out.push_str(&resolve(reference, environment)?);
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `}` that closes a `${file:...}` whose path may hold `${VAR}` references.
fn matching_close(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut depth = 0usize;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'$' if bytes.get(index + 1) == Some(&b'{') => {
                depth += 1;
                index += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(index),
            b'}' => depth -= 1,
            _ => {}
        }
        index += 1;
    }
    None
}

fn resolve(reference: &str, environment: &dyn Environment) -> Result<String, ExpandError> {
    if let Some(path) = reference.strip_prefix("file:") {
        // The path may name variables (`${file:${CREDENTIALS_DIRECTORY}/key}`), not files.
        if path.contains("${file:") {
            return Err(ExpandError::Malformed(
                "a ${file:...} path cannot read another file".to_string(),
            ));
        }
        let path = &expand(path, environment)?;
        if path.is_empty() {
            return Err(ExpandError::Malformed(
                "\"${file:}\" names no file".to_string(),
            ));
        }
        let contents = environment
            .read_file(path)
            .map_err(|reason| ExpandError::File {
                path: path.to_string(),
                reason,
            })?;
        return Ok(contents.trim_end_matches(['\n', '\r']).to_string());
    }
    let valid = reference
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(ExpandError::Malformed(format!(
            "\"${{{reference}}}\" is not a variable name"
        )));
    }
    match environment.var(reference) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ExpandError::Unset(reference.to_string())),
    }
}

/// A test environment: a fixed set of variables and files.
#[cfg(test)]
pub(crate) mod fixed {
    use std::collections::BTreeMap;

    use super::Environment;

    #[derive(Default)]
    pub(crate) struct FixedEnvironment {
        pub(crate) vars: BTreeMap<String, String>,
        pub(crate) files: BTreeMap<String, String>,
    }

    impl FixedEnvironment {
        pub(crate) fn with_var(mut self, name: &str, value: &str) -> Self {
            self.vars.insert(name.to_string(), value.to_string());
            self
        }

        pub(crate) fn with_file(mut self, path: &str, contents: &str) -> Self {
            self.files.insert(path.to_string(), contents.to_string());
            self
        }
    }

    impl Environment for FixedEnvironment {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }

        fn read_file(&self, path: &str) -> Result<String, String> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| "No such file or directory".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixed::FixedEnvironment;
    use super::*;

    #[test]
    fn references_expand_from_variables_and_files() {
        let env = FixedEnvironment::default()
            .with_var("TOKEN", "s3cret")
            .with_file("/run/secrets/key", "from-file\n");
        assert_eq!(expand("${TOKEN}", &env), Ok("s3cret".to_string()));
        assert_eq!(
            expand("Bearer ${TOKEN}!", &env),
            Ok("Bearer s3cret!".to_string())
        );
        assert_eq!(
            expand("${file:/run/secrets/key}", &env),
            Ok("from-file".to_string())
        );
        assert_eq!(
            expand("cost $$5 or $5", &env),
            Ok("cost $5 or $5".to_string())
        );
        assert_eq!(expand("plain", &env), Ok("plain".to_string()));
        // systemd's LoadCredential=: the directory comes from the environment.
        let env = env.with_var("CREDENTIALS_DIRECTORY", "/run/secrets");
        assert_eq!(
            expand("${file:${CREDENTIALS_DIRECTORY}/key} and ${TOKEN}", &env),
            Ok("from-file and s3cret".to_string())
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let env = FixedEnvironment::default().with_var("EMPTY", "");
        assert_eq!(
            expand("${MISSING}", &env),
            Err(ExpandError::Unset("MISSING".into()))
        );
        assert_eq!(
            expand("${EMPTY}", &env),
            Err(ExpandError::Unset("EMPTY".into()))
        );
        assert_eq!(
            expand("${file:/nope}", &env).unwrap_err().to_string(),
            "cannot read secret file /nope: No such file or directory"
        );
        assert_eq!(
            expand("${OPEN", &env).unwrap_err().to_string(),
            "\"${\" is not closed by \"}\" (write ${VAR} or ${file:/path})"
        );
        assert_eq!(
            expand("${file:${UNSET_DIR}/key}", &env),
            Err(ExpandError::Unset("UNSET_DIR".into()))
        );
        assert_eq!(
            expand("${file:${file:/a}}", &env).unwrap_err().to_string(),
            "a ${file:...} path cannot read another file (write ${VAR} or ${file:/path})"
        );
        assert_eq!(
            expand("${1BAD}", &env).unwrap_err().to_string(),
            "\"${1BAD}\" is not a variable name (write ${VAR} or ${file:/path})"
        );
    }
}
