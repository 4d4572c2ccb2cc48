//! `orgaccess completion bash|zsh|fish`: a shell completion script for the
//! whole command line (clap_complete), to source from the shell's startup file.

use clap::Args;
use clap_complete::Shell;

use super::{EXIT_OK, emit};

#[derive(Args, Clone, Debug)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells a script is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Prints the script completing `command` (the binary's whole clap command).
pub fn run(args: CompletionArgs, command: &mut clap::Command) -> i32 {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, command, "orgaccess", &mut script);
    emit(&String::from_utf8_lossy(&script));
    EXIT_OK
}
