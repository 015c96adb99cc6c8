//! `bench`: runs the benchmark (see [`bench::run`]), or one component of the stack in this
//! process (`bench run <component> [flags…]`, which is how the harness starts its children).

use bench::cli::{Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Run { component, args }) => component.run(args).await,
        None => bench::run(cli.bench).await,
    }
}
