//! Loading: parse, validate, and report every problem with file, line and column.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;

use crate::model::Config;

/// The embedded demo configuration served when no `--config` is given.
pub const DEMO_CONFIG: &str = include_str!("demo.toml");

/// One thing wrong with a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or `<demo>` for the embedded one).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A validated config plus what is needed to point at its lines later (the registry
/// reports build problems, such as a SQL statement that does not prepare, through it).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// The operator key from the environment, if any.
    pub operator_key: Option<SecretString>,
    file: String,
    source: Arc<str>,
}

impl LoadedConfig {
    /// The embedded demo configuration.
    ///
    /// # Errors
    /// Only if the embedded file were broken, which a unit test rules out.
    pub fn demo() -> Result<Self, Problems> {
        Self::from_str("<demo>", DEMO_CONFIG)
    }

    /// Read and validate a file.
    ///
    /// # Errors
    /// The file cannot be read, or has problems.
    pub fn from_file(path: &Path) -> Result<Self, Problems> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                file: file.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read the file: {e}"),
            }])
        })?;
        Self::from_str(&file, &text)
    }

    /// Parse and validate `text`, naming it `file` in problems.
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_str(file: &str, text: &str) -> Result<Self, Problems> {
        let mut loaded = Self {
            config: Config::default(),
            operator_key: crate::env::operator_key(),
            file: file.to_owned(),
            source: Arc::from(text),
        };
        match toml::from_str::<Config>(text) {
            Ok(config) => loaded.config = config,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                return Err(Problems(vec![loaded.problem(span, e.message().to_owned())]));
            }
        }
        let problems = crate::validate::validate(&loaded);
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(Problems(problems))
        }
    }

    /// The file name used in problems.
    #[must_use]
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The configuration's text.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A problem located at byte `span` of the source.
    #[must_use]
    pub fn problem(&self, span: Range<usize>, message: String) -> Problem {
        let (line, column) = line_col(&self.source, span.start);
        Problem {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Whether `name` is a valid tool name.
#[must_use]
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid() {
        let loaded = LoadedConfig::demo().unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.config.tools.len() >= 5);
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = LoadedConfig::from_str("a.toml", "[server]\nlisten = \n").err();
        let p = &err.unwrap_or_else(|| panic!("expected an error")).0[0];
        assert_eq!((p.file.as_str(), p.line), ("a.toml", 2));
    }

    #[test]
    fn every_semantic_problem_is_reported_with_its_line() {
        let text = r#"
[[tools]]
name = "execute"
kind = "builtin"
builtin = "echo"

[[tools]]
name = "q"
kind = "sql_query"
source = "nowhere"

[[keys]]
name = "ci"
hash = "plain-text-key"
scopes = ["echo"]
"#;
        let err = LoadedConfig::from_str("b.toml", text).err();
        let problems = err.unwrap_or_else(|| panic!("expected problems")).0;
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![14, 3, 10], "{problems:?}");
        assert!(problems[1].message.contains("reserved"));
        assert!(problems[2].message.contains("unknown source"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = LoadedConfig::from_str("c.toml", "[server]\nlisen = \"x\"\n").err();
        let p = &err.unwrap_or_else(|| panic!("expected an error")).0[0];
        assert_eq!(p.line, 2);
        assert!(p.message.contains("lisen"), "{}", p.message);
    }
}
