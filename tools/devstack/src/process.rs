//! One supervised child process: spawned with its output forwarded line by line under a
//! coloured label, stopped with SIGTERM (then SIGKILL after a grace period) or killed outright.
//!
//! Dropping a [`Child`] kills the process, so a failing test or a panicking supervisor leaves
//! nothing running behind it.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Where children's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSink {
    /// Our stdout, each line prefixed with the child's label (coloured when `colour`).
    Stdout {
        /// Colour the labels with ANSI escapes.
        colour: bool,
    },
    /// Nowhere (the benchmark keeps the cores for the work it measures).
    Discard,
}

impl LogSink {
    /// Stdout, coloured when it is a terminal and `NO_COLOR` is unset (<https://no-color.org>).
    pub fn terminal() -> LogSink {
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        LogSink::Stdout { colour }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Label printed before each output line, e.g. `rating-service#2`.
    pub label: String,
    /// ANSI colour code of the label (31–36, 91–96).
    pub colour: u8,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment set on top of ours.
    pub env: Vec<(String, String)>,
    /// Environment variables of ours *not* passed on (e.g. a `PORT` of the shell).
    pub env_remove: Vec<String>,
    /// Put the child in a process group of its own, so that a terminal's Ctrl-C reaches only
    /// the supervisor, which then stops children in order (services before the registry they
    /// deregister from). Tests leave it off so a test runner that kills its group kills all.
    pub own_process_group: bool,
}

/// A running (or exited, not yet reaped) child.
#[derive(Debug)]
pub struct Child {
    label: String,
    pid: u32,
    child: tokio::process::Child,
    exit: Option<ExitStatus>,
}

impl Child {
    /// Starts `spec` with output going to `sink`.
    ///
    /// # Errors
    ///
    /// The program cannot be started.
    pub fn spawn(spec: &Spec, sink: LogSink) -> anyhow::Result<Child> {
        let mut command = tokio::process::Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for key in &spec.env_remove {
            command.env_remove(key);
        }
        match sink {
            LogSink::Stdout { .. } => command.stdout(Stdio::piped()).stderr(Stdio::piped()),
            LogSink::Discard => command.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        if spec.own_process_group {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", spec.label, spec.program.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{} exited before it could be watched", spec.label))?;
        if let LogSink::Stdout { colour } = sink {
            let prefix = if colour {
                format!("\x1b[{}m{:>21}\x1b[0m | ", spec.colour, spec.label)
            } else {
                format!("{:>21} | ", spec.label)
            };
            if let Some(out) = child.stdout.take() {
                tokio::spawn(forward(out, prefix.clone()));
            }
            if let Some(err) = child.stderr.take() {
                tokio::spawn(forward(err, prefix));
            }
        }
        Ok(Child {
            label: spec.label.clone(),
            pid,
            child,
            exit: None,
        })
    }

    /// The label it was started with.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` (SIGTERM, SIGINT, …) without waiting.
    ///
    /// # Errors
    ///
    /// The process is gone or the signal cannot be sent.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(self.pid).context("pid out of range")?;
        kill(Pid::from_raw(pid), signal).with_context(|| format!("{signal} to {}", self.label))
    }

    /// SIGKILL, and reap it.
    ///
    /// # Errors
    ///
    /// The kill fails (it is then probably already gone).
    pub async fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        self.child
            .kill()
            .await
            .with_context(|| format!("killing {}", self.label))?;
        self.wait().await
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`.
    ///
    /// # Errors
    ///
    /// Neither signal can be delivered or the exit cannot be read.
    pub async fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_exit()? {
            return Ok(status);
        }
        self.signal(Signal::SIGTERM)?;
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(status) => status,
            Err(_) => {
                eprintln!(
                    "{} did not stop within {grace:?} of SIGTERM; killing it",
                    self.label
                );
                self.kill().await
            }
        }
    }

    /// Waits for it to exit.
    ///
    /// # Errors
    ///
    /// The exit status cannot be read.
    pub async fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let status = self
            .child
            .wait()
            .await
            .with_context(|| format!("waiting for {}", self.label))?;
        self.exit = Some(status);
        Ok(status)
    }

    /// Its exit status if it has exited, without waiting.
    ///
    /// # Errors
    ///
    /// The status cannot be read.
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self
                .child
                .try_wait()
                .with_context(|| format!("polling {}", self.label))?;
        }
        Ok(self.exit)
    }
}

/// Copies `stream` to stdout line by line, each line under `prefix`. A whole line is written
/// under one lock so that lines of different children never interleave.
async fn forward(stream: impl AsyncRead + Unpin, prefix: String) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded, so one endless line cannot grow without limit; the rest follows as more lines.
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let mut out = std::io::stdout().lock();
        // A closed stdout (piped into `head`) is no reason to stop the stack; drop the line.
        let _ = writeln!(out, "{prefix}{}", text.trim_end_matches(['\n', '\r']));
    }
}

/// Longest output line forwarded in one piece.
const MAX_LINE: u64 = 16 * 1024;

/// Environment variable through which a supervisor tells its children its PID (see
/// [`stop_with_parent`]).
pub const SUPERVISOR_PID_ENV: &str = "DEVSTACK_SUPERVISOR_PID";

/// Asks the kernel to SIGTERM this process when its parent dies, so that children of a
/// supervisor that was itself SIGKILLed (or a test process that aborted) deregister and exit
/// instead of running on as orphans. Linux only; elsewhere a no-op.
///
/// The signal follows the parent *thread* that spawned us; supervisors spawn from long-lived
/// runtime threads, so in practice that is the parent process.
///
/// # Errors
///
/// The kernel refuses the request.
pub fn stop_with_parent() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).context("setting PR_SET_PDEATHSIG")?;
        // The supervisor may have died before the call above: then nobody will signal us, so
        // stop now, as the signal would have made us. Its PID comes from the environment, since
        // by now our parent may already be init or a subreaper.
        let supervisor = std::env::var(SUPERVISOR_PID_ENV)
            .ok()
            .and_then(|pid| pid.parse::<i32>().ok());
        if let Some(supervisor) = supervisor
            && nix::unistd::getppid() != Pid::from_raw(supervisor)
        {
            kill(nix::unistd::getpid(), Signal::SIGTERM).context("stopping an orphan")?;
        }
    }
    Ok(())
}
