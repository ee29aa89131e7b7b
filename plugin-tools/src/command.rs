//! The plugin project commands of the `rpcnode` binary: `rpcnode new` and
//! `rpcnode build`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::kit::default_tools_dir;
use crate::{Kit, Language, build, scaffold, watch};

#[derive(Debug, Parser)]
#[command(
    name = "rpcnode",
    version,
    about = "Start and build rpcnode plugin projects."
)]
struct Tools {
    #[command(subcommand)]
    command: ToolCommand,
}

#[derive(Debug, Subcommand)]
enum ToolCommand {
    /// Start a plugin project in PARENT/NAME that builds and loads without edits.
    New {
        /// The plugin's name: lowercase letters, digits and underscores.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: Language,
        /// The folder to create the project in.
        #[arg(long, value_name = "PARENT", default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        tools: ToolsDir,
    },
    /// Build the plugin project in DIR into FOLDER/NAME.wasm, NAME being DIR's
    /// folder name; the JavaScript and Python tools are installed on first use.
    Build {
        /// The project: a folder with Cargo.toml, app.ts, app.js or app.py.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The plugins folder to write the component into.
        #[arg(long, value_name = "FOLDER", default_value = "plugins")]
        out: PathBuf,
        /// Keep running and build again after every change to the sources.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        tools: ToolsDir,
    },
}

#[derive(Debug, Args)]
struct ToolsDir {
    /// Where the JavaScript and Python tools and the SDK are kept
    /// [default: $XDG_CACHE_HOME/rpcnode/tools, else ~/.cache/rpcnode/tools].
    #[arg(long, env = "RPCNODE_TOOLS_DIR", value_name = "DIR")]
    tools_dir: Option<PathBuf>,
}

impl ToolsDir {
    fn kit(&self) -> anyhow::Result<Kit> {
        let tools = match &self.tools_dir {
            Some(dir) => dir.clone(),
            None => default_tools_dir()?,
        };
        Kit::embedded(&tools)
    }
}

/// Whether the first argument names one of these commands.
pub fn is_tool_command(first: Option<&OsStr>) -> bool {
    matches!(first.and_then(OsStr::to_str), Some("new" | "build"))
}

/// Run the command in `args` (the program name first).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let tools = Tools::parse_from(args);
    match run(tools.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: ToolCommand) -> anyhow::Result<()> {
    match command {
        ToolCommand::New {
            name,
            lang,
            dir,
            tools,
        } => {
            let project = scaffold::new_plugin(&tools.kit()?, &name, lang, &dir)?;
            eprintln!(
                "created {} plugin {name} in {}\nbuild it with: rpcnode build {} --out plugins",
                lang.name(),
                project.display(),
                project.display()
            );
            Ok(())
        }
        ToolCommand::Build {
            dir,
            out,
            watch,
            tools,
        } => {
            let kit = tools.kit()?;
            let dir = std::path::absolute(&dir)
                .with_context(|| format!("resolving {}", dir.display()))?;
            let out = std::path::absolute(out.join(format!("{}.wasm", folder_name(&dir)?)))
                .context("resolving the output folder")?;
            if watch {
                return watch::watch(&kit, &dir, &out);
            }
            build(&kit, &dir, &out)?;
            eprintln!("built {}", out.display());
            Ok(())
        }
    }
}

/// The name of the folder `dir` (`.` included), which names the component.
pub fn folder_name(dir: &Path) -> anyhow::Result<String> {
    let absolute =
        std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let name = absolute
        .components()
        .next_back()
        .with_context(|| format!("{} has no folder name", dir.display()))?;
    Ok(name.as_os_str().to_string_lossy().into_owned())
}
