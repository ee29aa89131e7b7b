//! The languages plugins are written in, and how a project says which it is.

use std::path::Path;

use anyhow::bail;

/// A language plugins are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    #[value(alias = "rs")]
    Rust,
    #[value(name = "js", alias = "javascript")]
    JavaScript,
    #[value(name = "ts", alias = "typescript")]
    TypeScript,
    #[value(alias = "py")]
    Python,
}

impl Language {
    pub const ALL: [Language; 4] = [
        Language::Rust,
        Language::JavaScript,
        Language::TypeScript,
        Language::Python,
    ];

    /// The language named on the command line: `rust`, `js`, `ts` or `python`.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match <Self as clap::ValueEnum>::from_str(name, true) {
            Ok(language) => Ok(language),
            Err(_) => bail!("unknown language {name:?}: expected rust, js, ts or python"),
        }
    }

    /// The short name used in folder names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::JavaScript => "js",
            Self::TypeScript => "ts",
            Self::Python => "python",
        }
    }

    /// The file that marks a project in this language.
    pub fn marker(self) -> &'static str {
        match self {
            Self::Rust => "Cargo.toml",
            Self::JavaScript => "app.js",
            Self::TypeScript => "app.ts",
            Self::Python => "app.py",
        }
    }

    /// The language of the project in `dir`, from its files. `app.ts` wins
    /// over `app.js`, which may be compiled from it.
    pub fn detect(dir: &Path) -> anyhow::Result<Self> {
        let order = [Self::Rust, Self::TypeScript, Self::JavaScript, Self::Python];
        match order
            .into_iter()
            .find(|language| dir.join(language.marker()).is_file())
        {
            Some(language) => Ok(language),
            None => bail!(
                "{} is not a plugin project: it has none of Cargo.toml, app.ts, app.js or app.py",
                dir.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_named_or_detected() {
        assert_eq!(Language::parse("py").unwrap(), Language::Python);
        assert_eq!(Language::parse("TypeScript").unwrap(), Language::TypeScript);
        assert_eq!(
            Language::parse("cobol").unwrap_err().to_string(),
            "unknown language \"cobol\": expected rust, js, ts or python"
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(
            Language::detect(&root.join("plugins/js/calculator")).unwrap(),
            Language::JavaScript
        );
        let error = Language::detect(&root.join("wit")).unwrap_err().to_string();
        assert!(
            error.ends_with("has none of Cargo.toml, app.ts, app.js or app.py"),
            "{error}"
        );
    }
}
