//! `rpcnode new NAME --lang rust|js|ts|python [--dir PARENT]`: a plugin
//! project that builds and loads without edits, with one method (`hello`)
//! that reads params and uses host state.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::{Kit, Language};

/// The template files of each language: (path in the project, contents).
fn template(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Rust => &[
            ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
        ],
        Language::JavaScript => &[
            ("package.json", include_str!("../templates/js/package.json")),
            ("app.js", include_str!("../templates/js/app.js")),
        ],
        Language::TypeScript => &[
            ("package.json", include_str!("../templates/ts/package.json")),
            (
                "tsconfig.json",
                include_str!("../templates/ts/tsconfig.json"),
            ),
            ("app.ts", include_str!("../templates/ts/app.ts")),
        ],
        Language::Python => &[("app.py", include_str!("../templates/python/app.py"))],
    }
}

/// Write project `name` in `language` into `parent/name`; returns its folder.
pub fn new_plugin(
    kit: &Kit,
    name: &str,
    language: Language,
    parent: &Path,
) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = std::path::absolute(parent.join(name))
        .with_context(|| format!("resolving {}", parent.display()))?;
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    for (file, contents) in template(language) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a template file has a folder"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let contents = contents
            .replace("{{name}}", name)
            .replace("{{sdk}}", &kit.sdk(language).display().to_string());
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// Plugin names become crate, module and file names: lowercase letters,
/// digits and underscores, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!(
            "invalid plugin name {name:?}: use lowercase letters, digits and underscores, starting with a letter"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_every_language() {
        for good in ["hello", "my_plugin2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Hello", "2fast", "my-plugin", "a b", "../x", "_x"] {
            let message = check_name(bad).unwrap_err().to_string();
            assert!(
                message.starts_with("invalid plugin name"),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn an_existing_folder_is_left_alone() {
        let parent = std::env::temp_dir().join(format!("rpcnode-scaffold-{}", std::process::id()));
        std::fs::create_dir_all(parent.join("taken")).unwrap();
        let kit = Kit::checkout(Path::new("."));
        let error = new_plugin(&kit, "taken", Language::Python, &parent).unwrap_err();
        assert!(
            error.to_string().ends_with("taken already exists"),
            "{error}"
        );
        std::fs::remove_dir_all(parent).unwrap();
    }
}
