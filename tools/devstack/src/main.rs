//! `devstack`: starts the stack (see [`devstack::up`]), or runs one component of it in this
//! process (`devstack run <component> [flags…]`, which is how the stack starts its children).

use std::ffi::OsString;

use clap::{Parser, Subcommand};
use devstack::component::Component;
use devstack::up::UpArgs;

/// The registry and every service as separate processes, with their logs, until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "devstack", version, about)]
struct Cli {
    /// Something other than starting the stack.
    #[command(subcommand)]
    command: Option<Command>,
    /// How to start the stack.
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one component in this process with its own flags, as its own binary would.
    Run {
        /// Which one.
        component: Component,
        /// Its flags (`--help` shows them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Run { component, args }) => {
            devstack::process::stop_with_parent()?;
            component.run(args).await
        }
        None => devstack::up::run(cli.up).await,
    }
}
